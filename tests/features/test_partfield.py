"""PartField's saved-file reader: per-face and per-vertex files, count validation, names."""

import numpy as np
import pytest
import trimesh

from geocorr.features.part_descriptor import PartDescriptor, face_to_vertex_features
from geocorr.features.partfield import (
    PARTFIELD_DIM,
    PartField,
    PartFieldFiles,
    load_partfield_features,
)


@pytest.fixture()
def mesh():
    m = trimesh.creation.box(extents=(2.0, 1.0, 0.5))
    return np.asarray(m.vertices), np.asarray(m.faces)  # 8 vertices, 12 faces


def test_per_face_file_is_area_averaged(tmp_path, mesh):
    v, f = mesh
    x = np.random.default_rng(0).normal(size=(len(f), PARTFIELD_DIM)).astype(np.float16)
    (tmp_path / "car").mkdir()
    np.save(tmp_path / "car" / "part_feat_car_0001_0_batch.npy", x)
    files = PartFieldFiles(tmp_path)
    out = files.read("car/car_0001", v, f)
    assert out.shape == (len(v), PARTFIELD_DIM) and out.dtype == np.float32
    np.testing.assert_allclose(out, face_to_vertex_features(v, f, x.astype(np.float32)),
                               rtol=1e-6)
    desc = files.for_mesh("car/car_0001")
    assert isinstance(desc, PartDescriptor)
    np.testing.assert_array_equal(desc.describe(v, f), out)
    assert "part_feat_car_0001_0_batch.npy" in desc.cache_key()


def test_per_vertex_file_is_returned_as_is(tmp_path, mesh):
    v, f = mesh
    x = np.arange(len(v) * 4, dtype=np.float32).reshape(len(v), 4)
    np.save(tmp_path / "part_feat_m_0.npy", x)  # point-cloud-mode name is accepted too
    out = PartFieldFiles(tmp_path).read("m", v, f)
    np.testing.assert_array_equal(out, x)


def test_count_mismatch_names_the_file(tmp_path, mesh):
    v, f = mesh
    p = tmp_path / "part_feat_bad_0_batch.npy"
    np.save(p, np.zeros((5, 3), np.float32))
    with pytest.raises(ValueError, match=r"part_feat_bad_0_batch\.npy.*12 faces.*8 vertices"):
        load_partfield_features(p, v, f)
    with pytest.raises(ValueError, match="per='face'"):
        load_partfield_features(p, v, f, per="face")
    np.save(p, np.zeros((len(v), 3, 1), np.float32))
    with pytest.raises(ValueError, match="2-D"):
        load_partfield_features(p, v, f)
    np.save(p, np.full((len(f), 3), np.nan, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        load_partfield_features(p, v, f)


def test_missing_file_lists_both_names(tmp_path, mesh):
    with pytest.raises(FileNotFoundError, match=r"_0_batch\.npy.*_0\.npy"):
        PartFieldFiles(tmp_path).read("nope", *mesh)


def test_in_process_adapter_explains_missing_repo(tmp_path, mesh):
    pf = PartField(tmp_path / "no_repo", tmp_path / "model.ckpt", device="cpu")
    with pytest.raises(FileNotFoundError, match="nv-tlabs/PartField"):
        pf.describe(*mesh)
    assert pf.cache_key().startswith("partfield:")

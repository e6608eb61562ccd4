"""PartField's in-process adapter end to end against the API stand-in (tests/fakes/partfield).

The stand-in's encoder returns coordinate ramps and its triplane transformer
is one learned linear map per plane, so the part feature at a normalised point
``p`` is exactly ``A p``, ``A`` (448, 3) read off the checkpoint. The adapter
must normalise the mesh as PartField does (bbox centre, ``1.8 / max extent``),
split 64 SDF + 448 part channels, sample in-face points or vertices, average
per face and carry faces onto vertices by area.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from geocorr.features.part_descriptor import PartDescriptor, face_to_vertex_features
from geocorr.features.partfield import PARTFIELD_DIM, PartField, PartFieldSettings

torch = pytest.importorskip("torch")
pytest.importorskip("yaml")


@pytest.fixture()
def mesh():
    m = trimesh.creation.box(extents=(2.0, 1.0, 0.5))
    m = m.subdivide()
    m.apply_translation([3.0, -1.0, 2.0])
    return np.asarray(m.vertices), np.asarray(m.faces)


def _normalised(v):
    lo, hi = v.min(0), v.max(0)
    return (v - 0.5 * (lo + hi)) * (1.8 / (hi - lo).max())


@pytest.fixture()
def partfield_cpu(stand_in, tmp_path, monkeypatch):
    """Stand-in repo + a Lightning-style checkpoint with seeded random weights; A (448, 3)."""
    repo = stand_in("partfield")
    monkeypatch.syspath_prepend(str(repo))
    from partfield.config.defaults import _C
    from partfield.model_trainer_pvcnn_only_demo import Model

    cfg = _C.clone()
    cfg.merge_from_list(["pvcnn.device", "cpu"])
    torch.manual_seed(3)
    model = Model(cfg)
    ckpt = tmp_path / "model_objaverse.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": {"cfg": cfg},
                "epoch": 50}, ckpt)
    W = model.triplane_transformer.weight.detach().double().numpy()  # (3, 512, 2)
    # plane 0 holds (x, y), plane 1 (y, z), plane 2 (x, z)
    A = np.stack([W[0, :, 0] + W[2, :, 0], W[0, :, 1] + W[1, :, 0], W[1, :, 1] + W[2, :, 1]],
                 axis=1)[64:]
    config = tmp_path / "demo_cpu.yaml"
    config.write_text((repo / "configs/final/demo.yaml").read_text()
                      + "pvcnn:\n  device: cpu\n")
    return repo, ckpt, config, A


def test_per_vertex_features_are_the_field_at_normalised_vertices(partfield_cpu, mesh):
    repo, ckpt, config, A = partfield_cpu
    v, f = mesh
    pf = PartField(repo, ckpt, config=config, device="cpu",
                   settings=PartFieldSettings(per="vertex", n_surface_points=2000,
                                              n_sample_each=7))
    assert isinstance(pf, PartDescriptor)
    out = pf.describe(v, f)
    assert out.shape == (len(v), PARTFIELD_DIM) == (len(v), A.shape[0])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, _normalised(v) @ A.T, rtol=1e-4, atol=1e-4)


def test_per_face_features_average_in_face_samples(partfield_cpu, mesh):
    repo, ckpt, config, A = partfield_cpu
    v, f = mesh
    pf = PartField(repo, ckpt, config=config, device="cpu",
                   settings=PartFieldSettings(per="face", n_point_per_face=400,
                                              n_surface_points=2000, n_sample_each=1000))
    out = pf.describe(v, f)
    # a linear field averaged over uniform samples of a triangle -> its centroid's value
    centroid = _normalised(v)[f].mean(axis=1)
    expected = face_to_vertex_features(v, f, (centroid @ A.T).astype(np.float32))
    scale = np.abs(expected).max()
    assert np.abs(out - expected).max() < 0.03 * scale
    # seeded: the same call gives the same features
    np.testing.assert_array_equal(pf.describe(v, f), out)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only machine's error")
def test_cuda_only_build_fails_clearly_on_cpu(partfield_cpu, tmp_path, mesh):
    repo, ckpt, _, _ = partfield_cpu
    config = tmp_path / "demo_cuda.yaml"           # the repository's own choice: "cuda"
    config.write_text((repo / "configs/final/demo.yaml").read_text())
    with pytest.raises(ValueError, match="PartField could not build its model.*GPU"):
        PartField(repo, ckpt, config=config, device="cpu").describe(*mesh)
    with pytest.raises(ValueError, match="CUDA is not available"):
        PartField(repo, ckpt, config=config, device="cuda").describe(*mesh)


def test_wrong_checkpoint_is_refused(partfield_cpu, tmp_path, mesh):
    repo, _, config, _ = partfield_cpu
    bad = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"pvcnn.something_else": torch.zeros(2)}}, bad)
    with pytest.raises(RuntimeError, match="Missing key"):
        PartField(repo, bad, config=config, device="cpu").describe(*mesh)

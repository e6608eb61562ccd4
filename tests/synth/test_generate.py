import json
from pathlib import Path

import numpy as np
import pytest
import trimesh

from geocorr.data.spair import SPairDataset
from geocorr.data.synth import generate as gen
from geocorr.data.synth.generate import SynthSettings, generate_dataset, split_instances
from geocorr.data.synth.groundtruth import load_groundtruth, score_reconstruction
from geocorr.data.synth.scene import SceneSettings
from geocorr.data.synth.simulator import apply_stage1_corrections
from geocorr.geometry.camera import load_camera
from geocorr.geometry.raster import rasterize

SETTINGS = SynthSettings(seed=3, categories=("car",), images_per_category=8,
                         pairs_per_split=(6, 4, 4), scene=SceneSettings(size=96))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "ds"
    summary = generate_dataset(out, SETTINGS, progress=False)
    return out, summary


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_split_instances():
    assert split_instances(20, (0.6, 0.15, 0.25)) == ["trn"] * 12 + ["val"] * 3 + ["test"] * 5
    names = split_instances(4, (0.6, 0.15, 0.25))
    assert len(names) == 4 and set(names) == {"trn", "val", "test"}


def test_layout_and_minimal_spair_reader(dataset):
    root, summary = dataset
    assert summary.num_images == 8
    for sub in ("JPEGImages/car", "ImageAnnotation/car", "Segmentation/car", "GroundTruth/car",
                "Reconstructions/car", "Layout/large", "Meta"):
        assert (root / sub).is_dir(), sub
    assert not list(root.parent.glob(".ds.tmp-*"))
    meta = json.loads((root / "Meta/categories.json").read_text())
    names = meta["car"]["keypoint_names"]
    split_of = {}
    for split in ("trn", "val", "test"):
        stems = (root / "Layout/large" / f"{split}.txt").read_text().split()
        assert len(stems) == summary.num_pairs[split]
        assert sorted(p.stem for p in (root / "PairAnnotation" / split).glob("*.json")) == \
            sorted(stems)
        for stem in stems:
            pair = json.loads((root / "PairAnnotation" / split / f"{stem}.json").read_text())
            assert isinstance(pair["pair_id"], int) and stem.startswith(f"{pair['pair_id']:06d}-")
            assert stem.endswith(":car") and pair["category"] == "car"
            for side in ("src", "trg"):
                assert len(pair[f"{side}_bndbox"]) == 4
                assert all(isinstance(v, int) for v in pair[f"{side}_bndbox"])
                assert len(pair[f"{side}_imsize"]) == 3
                im = json.loads((root / "ImageAnnotation/car" /
                                 pair[f"{side}_imname"].replace(".jpg", ".json")).read_text())
                assert split_of.setdefault(im["filename"], split) == split  # one split each
                for kid, xy in zip(pair["kps_ids"], pair[f"{side}_kps"], strict=True):
                    assert im["kps"][str(int(kid))] == xy
            assert len(pair["src_kps"]) == len(pair["trg_kps"]) == len(pair["kps_ids"]) >= 1
            for flag in ("viewpoint_variation", "scale_variation", "truncation", "occlusion",
                         "mirror"):
                assert isinstance(pair[flag], int)
    for p in (root / "ImageAnnotation/car").glob("*.json"):
        im = json.loads(p.read_text())
        assert set(im["kps"]) == {str(i) for i in range(len(names))}
        assert 0 <= im["azimuth_id"] < 8 and im["truncated"] in (0, 1)
        assert (root / "JPEGImages/car" / im["filename"]).is_file()
    # the project's SPair reader reads it unchanged
    ds = SPairDataset(root)
    pairs = ds.pairs("trn")
    assert len(pairs) == summary.num_pairs["trn"] and ds.categories() == ("car",)


def test_keypoints_reproject_onto_their_vertices(dataset):
    root, _ = dataset
    for p in sorted((root / "ImageAnnotation/car").glob("*.json"))[:4]:
        im = json.loads(p.read_text())
        gt = load_groundtruth(root, "car", p.stem)
        uv, _ = gt.camera.project(gt.vertices[gt.keypoint_vertices])
        for kid, xy in im["kps"].items():
            if xy is not None:
                np.testing.assert_array_equal(xy, np.rint(uv[int(kid)]).astype(int))
        # dense maps agree with the mask
        from PIL import Image

        mask = np.asarray(Image.open(root / "Segmentation/car" / f"{p.stem}.png")) > 0
        np.testing.assert_array_equal(mask, gt.part_map >= 0)
        assert im["image_width"] == gt.camera.width and im["image_height"] == gt.camera.height


def test_reconstruction_files_and_true_corrections(dataset):
    root, _ = dataset
    ks = set()
    for stem in ("car_0000", "car_0001", "car_0005"):
        gt = load_groundtruth(root, "car", stem)
        mesh = trimesh.load(root / "Reconstructions/car" / f"{stem}.ply", process=False)
        cam = load_camera(root / "Reconstructions/car" / f"{stem}.json")
        v, c = apply_stage1_corrections(mesh.vertices, cam, gt.sim_true_scale,
                                        gt.sim_true_translation, gt.sim_true_k)
        np.testing.assert_allclose(c.R, gt.camera.R, atol=1e-6)
        fixed = rasterize(v, mesh.faces, c).mask
        truth = gt.part_map >= 0
        assert (fixed & truth).sum() / (fixed | truth).sum() > 0.8
        good = score_reconstruction(gt, v, mesh.faces, c)
        assert good.rotation_error_deg < 1e-3 and good.mask_iou > 0.8 and good.chamfer < 0.03
        raw = score_reconstruction(gt, mesh.vertices, mesh.faces, cam)
        # uncorrected: the yaw error is the simulator's quarter turns, the overlay is worse
        turn = (raw.yaw_error_deg - 90.0 * gt.sim_true_k + 180.0) % 360.0 - 180.0
        assert abs(turn) < 1e-3
        ks.add(gt.sim_true_k)
        assert raw.mask_iou < good.mask_iou + 0.02
    assert ks != {0}  # the sample covers a yaw-flipped reconstruction


def test_determinism_same_seed_same_bytes(dataset, tmp_path):
    root, _ = dataset
    again = tmp_path / "again"
    generate_dataset(again, SETTINGS, progress=False)
    a, b = _files(root), _files(again)
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
    # a different seed changes the images
    assert a["JPEGImages/car/car_0000.jpg"] != _other_seed_image(tmp_path)


def _other_seed_image(tmp_path):
    out = tmp_path / "other"
    from dataclasses import replace

    gen.render_image(str(out), "car", 0, replace(SETTINGS, seed=4))
    return (out / "JPEGImages/car/car_0000.jpg").read_bytes()


def test_order_does_not_matter(dataset, tmp_path):
    """Images rendered alone, in reverse order, give the same bytes (one generator each)."""
    root, _ = dataset
    for index in (5, 2):
        gen.render_image(str(tmp_path), "car", index, SETTINGS)
    for p in tmp_path.rglob("*"):
        if p.is_file():
            assert p.read_bytes() == (root / p.relative_to(tmp_path)).read_bytes(), p


@pytest.mark.slow
def test_determinism_across_workers(dataset, tmp_path):
    root, _ = dataset
    again = tmp_path / "again"
    generate_dataset(again, SETTINGS, progress=False, workers=2)
    a, b = _files(root), _files(again)
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []


def test_refuses_non_empty_output_and_cleans_up_on_crash(tmp_path, monkeypatch):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    small = SynthSettings(categories=("car",), images_per_category=2, pairs_per_split=(1, 1, 1),
                          scene=SceneSettings(size=64))
    with pytest.raises(ValueError, match="not empty"):
        generate_dataset(out, small, progress=False)

    def boom(*args):
        raise RuntimeError("crash")

    monkeypatch.setattr(gen, "_write_pairs", boom)
    with pytest.raises(RuntimeError):
        generate_dataset(out, small, progress=False, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    assert (out / "keep.txt").read_text() == "x"
    monkeypatch.undo()
    generate_dataset(out, small, progress=False, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "JPEGImages").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_settings_validation(tmp_path):
    with pytest.raises(ValueError, match="unknown"):
        generate_dataset(tmp_path / "x", SynthSettings(categories=("spaceship",)))
    with pytest.raises(ValueError, match="images_per_category"):
        generate_dataset(tmp_path / "x", SynthSettings(images_per_category=0))
    assert not (tmp_path / "x").exists()


def test_occluded_image_flags_and_hides(tmp_path):
    from dataclasses import replace

    settings = replace(SETTINGS, scene=SceneSettings(size=96, occluder_prob=1.0,
                                                     occluder_cover=(0.3, 0.3)))
    rec = gen.render_image(str(tmp_path), "car", 1, settings)
    assert rec.occluded == 1
    gt = load_groundtruth(tmp_path, "car", rec.stem)
    full = rasterize(gt.vertices, gt.faces, gt.camera).mask
    assert (full & (gt.part_map < 0)).sum() > 0.02 * full.sum()  # object pixels hidden


def test_pairs_stay_within_an_instance_split(tmp_path):
    from dataclasses import replace

    from geocorr.data.synth.writer import ImageRecord

    def record(i):
        return ImageRecord(stem=f"car_{i:04d}", category="car", instance_id=i // 2, width=10,
                           height=10, bndbox=np.array([0, 0, 9, 9]),
                           kps=np.zeros((3, 2), np.int64), visible=np.ones(3, bool),
                           azimuth_deg=0.0, azimuth_id=0, pose="Frontal", truncated=0,
                           occluded=0, flipped=False)

    settings = replace(SETTINGS, views_per_instance=2, pairs_per_split=(50, 50, 50))
    records = [record(i) for i in range(12)]  # 6 instances, 2 views each -> 4/1/1 instances
    counts = gen._write_pairs(tmp_path, ("car",), records, settings)
    assert counts == {"trn": 50, "val": 2, "test": 2}  # trn capped (8 * 7 = 56 possible)
    for split in ("trn", "val", "test"):
        insts = set()
        for stem in (tmp_path / "Layout/large" / f"{split}.txt").read_text().split():
            _, src, trg = stem.split(":")[0].split("-")
            insts |= {int(src[-4:]) // 2, int(trg[-4:]) // 2}
        want = {"trn": {0, 1, 2, 3}, "val": {4}, "test": {5}}[split]
        assert insts == want


def test_preview_contact_sheet(dataset, tmp_path):
    from PIL import Image

    from geocorr.data.synth.preview import contact_sheet, write_preview

    root, _ = dataset
    sheet = contact_sheet(root, per_category=3, cell=64)
    assert sheet.shape == (64, 3 * 64, 3) and sheet.dtype == np.uint8
    assert (sheet[..., 0] > 200).sum() > 0  # outlines and labels drawn
    path = write_preview(root, tmp_path / "p.png", per_category=2, cell=48)
    assert Image.open(path).size == (96, 48)
    with pytest.raises(FileNotFoundError, match="JPEGImages"):
        contact_sheet(tmp_path)

"""Stage 1 end to end on a tiny fake dataset, the cache layout, resume, and the CLI commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from PIL import Image
from typer.testing import CliRunner

from geocorr.cli import app
from geocorr.geometry.camera import Camera, load_camera, look_at, save_camera
from geocorr.reconstruct.canonical import CanonSettings
from geocorr.reconstruct.losses import mask_iou
from geocorr.reconstruct.pipeline import (
    Stage1Settings,
    dataset_images,
    load_cached,
    run_stage1,
)
from geocorr.reconstruct.reconstructor import simulated_reconstructor
from geocorr.reconstruct.refine import RefineSettings, render_mask
from geocorr.reconstruct.segmenter import DatasetMasks
from geocorr.reconstruct.template import TemplateSettings
from geocorr.reconstruct.views import ViewSettings, rotation_z
from geocorr.reconstruct.yaw_vote import VoteSettings

FLIPS = [0, 2, 0]  # simulated yaw errors; stage 1 must answer (-k) % 4


def _car(seed):
    rng = np.random.default_rng(seed)
    L = 2.0 + 0.1 * rng.standard_normal()
    body = trimesh.creation.box([L, 0.9, 0.4])
    body.apply_translation([0, 0, 0.2])
    cabin = trimesh.creation.box([0.8, 0.8, 0.4])
    cabin.apply_translation([-0.35 * L / 2, 0, 0.6])
    nose = trimesh.creation.box([0.3, 0.5, 0.15])
    nose.apply_translation([L / 2 + 0.15, 0, 0.1])
    return trimesh.util.concatenate([body, cabin, nose])


def _true_pose(i):
    az = np.radians(30 + 50 * i)
    return look_at(6 * np.array([np.cos(az), np.sin(az), 0.4]), [0, 0, 0.3])


def _make_dataset(root, frame_noise=None):
    """Three cars; ``frame_noise[i]``: rotation vector (degrees) of car i's mesh frame error."""
    from geocorr.reconstruct.canonical import rotation_from_rotvec

    K = np.array([[120.0, 0, 63.5], [0, 120, 47.5], [0, 0, 1]])
    stems = []
    for i, k_err in enumerate(FLIPS):
        stem = f"car_{i:04d}"
        stems.append(stem)
        mesh = _car(i)
        R, t = _true_pose(i)
        cam = Camera(K, R, t, 128, 96)
        mask = render_mask(mesh.vertices, mesh.faces, cam)
        for sub, arr in (("JPEGImages", np.repeat(mask[..., None] * 200, 3, axis=2)),
                         ("Segmentation", mask * 255)):
            (root / sub / "car").mkdir(parents=True, exist_ok=True)
            ext = "jpg" if sub == "JPEGImages" else "png"
            Image.fromarray(arr.astype(np.uint8)).save(root / sub / "car" / f"{stem}.{ext}")
        Rz = np.round(rotation_z(90.0 * k_err))
        if frame_noise is not None:  # the mesh's own frame off by a small rotation too
            Rz = rotation_from_rotvec(frame_noise[i]) @ Rz
        Y = np.asarray(mesh.vertices) @ Rz.T  # yawed reconstruction + matching camera
        pred = Camera(K, R @ Rz.T, t, 128, 96).with_object_transform(1.15, [0.1, 0.0, 0.05])
        (root / "Reconstructions" / "car").mkdir(parents=True, exist_ok=True)
        trimesh.Trimesh(Y, mesh.faces).export(root / "Reconstructions" / "car" / f"{stem}.ply")
        save_camera(pred, root / "Reconstructions" / "car" / f"{stem}.json")
    (root / "Layout" / "large").mkdir(parents=True)
    (root / "Layout" / "large" / "test.txt").write_text(
        f"000000-{stems[0]}-{stems[1]}:car\n000001-{stems[1]}-{stems[2]}:car\n")
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return _make_dataset(tmp_path_factory.mktemp("ds"))


SETTINGS = Stage1Settings(
    refine=RefineSettings(max_side=48, dt_steps=8, iou_steps=4, polish_side=128),
    vote=VoteSettings(views=ViewSettings(size=48)),
    template=TemplateSettings(num_azimuths=36, points=300),
)


def test_dataset_images(dataset, tmp_path):
    assert dataset_images(dataset, "test") == [("car", "car_0000"), ("car", "car_0001"),
                                               ("car", "car_0002")]
    assert len(dataset_images(dataset, "all")) == 3
    with pytest.raises(FileNotFoundError, match="val.txt"):
        dataset_images(dataset, "val")
    bad = tmp_path / "Layout" / "large"
    bad.mkdir(parents=True)
    (bad / "test.txt").write_text("oops\n")
    with pytest.raises(ValueError, match="test.txt:1"):
        dataset_images(tmp_path, "test")


def test_stage1_end_to_end_and_resume(dataset, tmp_path):
    out = tmp_path / "cache"
    images = dataset_images(dataset, "test")
    recs = run_stage1(dataset, images, DatasetMasks(dataset), simulated_reconstructor(dataset),
                      out, SETTINGS, progress=False)
    assert [r["k"] for r in recs] == [(-k) % 4 for k in FLIPS]
    assert [r["direct_k"] for r in recs] == [(-k) % 4 for k in FLIPS]
    ref = json.loads((out / "car" / "reference.json").read_text())
    assert ref["reference"] in [s for _, s in images]
    for (cat, stem), rec in zip(images, recs, strict=True):
        assert rec["refine"]["iou_after"] > 0.9 and not rec["failed"]
        assert rec["refine"]["iou_after"] >= rec["refine"]["iou_before"]
        assert rec["frame"]["ok"] and rec["frame"]["closest_axis"] == "+Z"  # Z-up meshes
        cached = load_cached(out, cat, stem)
        # the final camera renders the final mesh onto the mask
        iou = mask_iou(render_mask(cached.vertices, cached.faces, cached.camera), cached.mask)
        assert iou == pytest.approx(rec["refine"]["iou_after"], abs=1e-6)
    # after the yaw correction every camera has the true view rotation again
    for i, (cat, stem) in enumerate(images):
        np.testing.assert_allclose(load_camera(out / cat / stem / "camera.json").R,
                                   _true_pose(i)[0], atol=1e-9)
    # resume: nothing is recomputed
    stamp = (out / "car" / "car_0000" / "record.json").stat().st_mtime_ns
    run_stage1(dataset, images, DatasetMasks(dataset), simulated_reconstructor(dataset), out,
               SETTINGS, progress=False)
    assert (out / "car" / "car_0000" / "record.json").stat().st_mtime_ns == stamp
    with pytest.raises(FileNotFoundError, match="record.json"):
        load_cached(out, "car", "car_9999")


def test_stage1_undoes_a_small_frame_error(tmp_path):
    # car 1's reconstruction is flipped by 180 degrees AND its frame is off by 14 degrees
    # of yaw and 4 of tilt: the vote undoes the flip, the continuous step the rest
    from geocorr.reconstruct.canonical import rotation_angle_deg

    noise = [(0.0, 0.0, 0.0), (4.0, 0.0, 14.0), (0.0, 0.0, 0.0)]
    ds = _make_dataset(tmp_path / "ds", noise)
    images = dataset_images(ds, "test")
    recs = run_stage1(ds, images, DatasetMasks(ds), simulated_reconstructor(ds),
                      tmp_path / "c", SETTINGS, progress=False)
    assert [r["k"] for r in recs] == [(-k) % 4 for k in FLIPS]
    for i, (cat, stem) in enumerate(images):
        rec = recs[i]
        assert rec["symmetry"]["order"] == 1 and rec["yaw_symmetry"] == 1
        cam = load_camera(tmp_path / "c" / cat / stem / "camera.json")
        # the final camera has the true view rotation again, to within 1.5 degrees
        assert rotation_angle_deg(cam.R @ _true_pose(i)[0].T) < 1.5
        cached = load_cached(tmp_path / "c", cat, stem)
        iou = mask_iou(render_mask(cached.vertices, cached.faces, cached.camera), cached.mask)
        assert iou == pytest.approx(rec["refine"]["iou_after"], abs=1e-6)
        G = np.asarray(rec["rotation"])
        np.testing.assert_allclose(G @ G.T, np.eye(3), atol=1e-9)
    c = recs[1]["canonical"]
    assert c["angle_deg"] == pytest.approx(14.6, abs=1.5) and c["tilt_deg"] > 2.0
    assert c["residual"] < c["residual_before"] and c["confidence"] > 0.1
    assert recs[0]["canonical"]["angle_deg"] < 1.5 and "align" in recs[0]["timings"]
    # without the continuous step the 14-degree error stays
    off = Stage1Settings(**{**SETTINGS.__dict__,
                            "canon": CanonSettings(align=False)})
    again = run_stage1(ds, images[1:2], DatasetMasks(ds), simulated_reconstructor(ds),
                       tmp_path / "off", off, progress=False)
    cam = load_camera(tmp_path / "off" / "car" / "car_0001" / "camera.json")
    assert again[0]["k"] == 2 and again[0]["canonical"] is None
    assert rotation_angle_deg(cam.R @ _true_pose(1)[0].T) > 13.0


def test_reference_pool_outvotes_a_flipped_subset(dataset, tmp_path):
    # processing only the flipped car: alone it is its own (flipped) reference; pooled
    # with the dataset's other cars (2 canonical of 3) the flip is found
    only = [("car", "car_0001")]
    seg, rec = DatasetMasks(dataset), simulated_reconstructor(dataset)
    settings = Stage1Settings(**{**SETTINGS.__dict__, "reference_pool": "images"})
    alone = run_stage1(dataset, only, seg, rec, tmp_path / "a", settings, progress=False)
    assert alone[0]["k"] == 0  # wrong: the demo's failure mode
    pooled = run_stage1(dataset, only, seg, rec, tmp_path / "b", SETTINGS, progress=False)
    assert pooled[0]["k"] == 2 and pooled[0]["direct_k"] == 2
    assert pooled[0]["reference"]["margin"] == 1 and pooled[0]["yaw_symmetry"] == 1
    assert alone[0]["reference"] == {"stem": "car_0001", "counts": [1, 0, 0, 0], "margin": 1,
                                     "symmetry": 1}
    ref = json.loads((tmp_path / "b" / "car" / "reference.json").read_text())
    assert ref["pool"] == ["car_0001", "car_0000", "car_0002"]
    assert sorted(ref["counts"]) == [0, 0, 1, 2]
    assert ref["margin"] == 1 and ref["symmetry"] == 1
    assert sorted(p.name for p in (tmp_path / "b" / "car").iterdir()) == ["car_0001",
                                                                           "reference.json"]
    # a pool-only image without a reconstruction is left out, not fatal
    import shutil

    ds = tmp_path / "ds"
    shutil.copytree(dataset, ds)
    (ds / "Reconstructions" / "car" / "car_0002.ply").unlink()
    again = run_stage1(ds, only, DatasetMasks(ds), simulated_reconstructor(ds), tmp_path / "d",
                       SETTINGS, progress=False)
    ref = json.loads((tmp_path / "d" / "car" / "reference.json").read_text())
    assert ref["pool"] == ["car_0001", "car_0000"] and list(ref["pool_skipped"]) == ["car_0002"]
    assert "car_0002.ply" in ref["pool_skipped"]["car_0002"] and again[0]["k"] in (0, 2)
    with pytest.raises(ValueError, match="reference_pool"):
        run_stage1(dataset, only, seg, rec, tmp_path / "c",
                   Stage1Settings(reference_pool="all"), progress=False)


def test_cli_refine(dataset, tmp_path):
    runner = CliRunner()
    rec = dataset / "Reconstructions" / "car"
    args = ["refine", "--mesh", str(rec / "car_0000.ply"), "--camera", str(rec / "car_0000.json"),
            "--mask", str(dataset / "Segmentation" / "car" / "car_0000.png"),
            "--out", str(tmp_path / "o.json"), "--max-side", "48", "--dt-steps", "8",
            "--iou-steps", "4"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    o = json.loads((tmp_path / "o.json").read_text())
    assert o["iou_after"] > 0.9 > o["iou_before"] and "K" in o["camera"]
    assert o["rotation_status"] in ("accepted", "rejected") and len(o["rotvec_deg"]) == 3
    res = runner.invoke(app, args + ["--no-rotation"])
    assert res.exit_code == 0, res.output
    o = json.loads((tmp_path / "o.json").read_text())
    assert o["rotation_status"] == "off" and o["rotation_deg"] == 0.0
    args[args.index("--mask") + 1] = str(tmp_path / "missing.png")
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "missing.png" in res.output


def test_cli_refine_reads_rgba_masks_by_the_rule(dataset, tmp_path):
    """RGBA with an opaque alpha (colour is the mask) and a cut-out (alpha is the mask) both
    fit the object, not the whole image (alpha was once maxed in with the colour)."""
    rec = dataset / "Reconstructions" / "car"
    src = dataset / "Segmentation" / "car" / "car_0000.png"
    m = np.asarray(Image.open(src)) > 0
    opaque = np.zeros((*m.shape, 4), np.uint8)
    opaque[m, :3] = 255
    opaque[..., 3] = 255
    cutout = np.full((*m.shape, 4), 180, np.uint8)
    cutout[..., 3] = np.where(m, 255, 0)
    ious = []
    for name, arr in (("ref", None), ("opaque", opaque), ("cutout", cutout)):
        path = src if arr is None else tmp_path / f"{name}.png"
        if arr is not None:
            Image.fromarray(arr, "RGBA").save(path)
        res = CliRunner().invoke(app, [
            "refine", "--mesh", str(rec / "car_0000.ply"), "--camera", str(rec / "car_0000.json"),
            "--mask", str(path), "--out", str(tmp_path / f"{name}.json"), "--max-side", "48",
            "--dt-steps", "2", "--iou-steps", "1"])
        assert res.exit_code == 0, res.output
        ious.append(json.loads((tmp_path / f"{name}.json").read_text())["iou_before"])
    assert ious[0] < 0.9
    assert ious[1] == pytest.approx(ious[0]) and ious[2] == pytest.approx(ious[0])


def test_cli_reconstruct_warns_on_meshes_that_are_not_z_up(dataset, tmp_path):
    """files:DIR meshes written Y-up (glTF) with matching cameras render the same images, so
    nothing failed; the camera's up direction now gives them away. (Z-up ones pass: the
    records of test_stage1_end_to_end_and_resume.)"""
    rec = dataset / "Reconstructions" / "car"
    for name, perm in (("yup", [1, 2, 0]),):
        folder = tmp_path / name / "car"
        folder.mkdir(parents=True)
        for stem in ("car_0000", "car_0001", "car_0002"):
            mesh = trimesh.load(rec / f"{stem}.ply", process=False)
            trimesh.Trimesh(np.asarray(mesh.vertices)[:, perm], mesh.faces,
                            process=False).export(folder / f"{stem}.ply")
            cam = load_camera(rec / f"{stem}.json")
            save_camera(Camera(cam.K, cam.R[:, perm], cam.t, cam.width, cam.height),
                        folder / f"{stem}.json")
    res = CliRunner().invoke(app, [
        "reconstruct", "--dataset", str(dataset), "--split", "test", "--out",
        str(tmp_path / "c_yup"), "--meshes", f"files:{tmp_path / 'yup'}", "--skip-yaw",
        "--max-side", "32", "--quiet"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "warning: 3 of 3 meshes do not look Z-up" in text
    assert "closest to its +Y axis" in text and "V[:, [2, 0, 1]]" in text
    record = json.loads((tmp_path / "c_yup" / "car" / "car_0000" / "record.json").read_text())
    assert record["frame"]["ok"] is False and record["frame"]["closest_axis"] == "+Y"


def test_cli_reconstruct_errors(dataset, tmp_path):
    res = CliRunner().invoke(app, ["reconstruct", "--dataset", str(dataset), "--out",
                                   str(tmp_path / "c"), "--meshes", "bogus"])
    assert res.exit_code == 2 and "--meshes" in res.output


def test_cli_reconstruct_reference_pool_is_checked(dataset, tmp_path):
    res = CliRunner().invoke(app, ["reconstruct", "--dataset", str(dataset), "--out",
                                   str(tmp_path / "c"), "--reference-pool", "everything"])
    assert res.exit_code == 2 and "reference_pool" in res.output

"""The error levels of the simulated SAM 3D / SAM 3 outputs (issue 12)."""

import hashlib
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synth_helpers import car, view

from geocorr.data.synth.errors import MaskErrors, ReconstructionErrors, error_preset
from geocorr.data.synth.generate import (
    SynthSettings,
    generate_dataset,
    read_error_level,
    with_error_level,
)
from geocorr.data.synth.groundtruth import load_groundtruth, load_sim_errors
from geocorr.data.synth.mask_errors import predict_mask
from geocorr.data.synth.scene import SceneSettings
from geocorr.data.synth.shape_errors import draw_shape_errors
from geocorr.data.synth.shapes import make_shape
from geocorr.data.synth.simulator import (
    SimulatorSettings,
    draw_camera_errors,
    draw_yaw_flip,
    rotation_error_deg,
    simulate_reconstruction,
)

REF = json.loads((Path(__file__).parent / "data" / "oracle_sha256.json").read_text())
SMALL = SynthSettings(seed=5, categories=("car", "dog"), images_per_category=3,
                      pairs_per_split=(2, 1, 1), scene=SceneSettings(size=96, occluder_prob=0.5))


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def realistic(tmp_path_factory):
    out = tmp_path_factory.mktemp("real") / "ds"
    generate_dataset(out, with_error_level(SMALL, "realistic"), progress=False)
    return out


def test_oracle_reproduces_the_files_written_before_the_error_levels(tmp_path):
    out = tmp_path / "ds"
    generate_dataset(out, with_error_level(SMALL, "oracle"), progress=False)
    got = _digests(out)
    old = {k: v for k, v in got.items()
           if not k.startswith("PredictedMasks/") and not k.endswith(".errors.json")}
    assert old == REF["files"]
    # the oracle's predicted masks are the true ones; its error record is all zeros
    for k in REF["files"]:
        if k.startswith("Segmentation/"):
            assert got["PredictedMasks/" + k[len("Segmentation/"):]] == REF["files"][k]
    rec = load_sim_errors(out, "car", "car_0001")
    assert rec["level"] == "oracle" and rec["mask"]["iou"] == 1.0
    assert rec["predicted_rotation_error_deg"] < 1e-6
    assert read_error_level(out) == ("oracle", 1.0)


def test_realistic_is_deterministic_per_seed_and_keeps_the_images(realistic, tmp_path):
    again = tmp_path / "again"
    generate_dataset(again, replace(with_error_level(SMALL, "realistic"), categories=("car",),
                                    pairs_per_split=(0, 0, 0)), progress=False)
    cars = {k: v for k, v in _digests(realistic).items() if "/car/" in k}
    assert len(cars) == 3 * 8 and cars == {k: v for k, v in _digests(again).items()
                                           if "/car/" in k}
    other = tmp_path / "other"
    generate_dataset(other, replace(with_error_level(SMALL, "realistic"), seed=6,
                                    categories=("car",), images_per_category=1,
                                    pairs_per_split=(0, 0, 0)), progress=False)
    a, b = _digests(realistic), _digests(other)
    assert a["Reconstructions/car/car_0000.ply"] != b["Reconstructions/car/car_0000.ply"]
    # images, annotations and ground-truth meshes do not depend on the error level
    for k, v in REF["files"].items():
        if k.startswith(("JPEGImages/", "ImageAnnotation/", "Segmentation/", "PairAnnotation/")):
            assert a[k] == v, k
    assert read_error_level(realistic) == ("realistic", 1.0)
    settings = json.loads((realistic / "Meta/settings.json").read_text())
    assert settings["error_level"] == "realistic" and settings["masks"]["jitter_px"] == 1.5


def test_realistic_files_carry_their_errors(realistic):
    for cat, stem in (("car", "car_0000"), ("car", "car_0002"), ("dog", "dog_0001")):
        rec = load_sim_errors(realistic, cat, stem)
        gt = load_groundtruth(realistic, cat, stem)
        cam = json.loads((realistic / "Reconstructions" / cat / f"{stem}.json").read_text())
        measured = rotation_error_deg(gt.camera.R, np.asarray(cam["R"]))
        assert measured == pytest.approx(rec["predicted_rotation_error_deg"], abs=1e-6)
        assert measured > 0.1  # no longer exact
        K = np.asarray(cam["K"])
        assert K[0, 0] / gt.camera.K[0, 0] == pytest.approx(rec["focal_factor"], rel=1e-9)
        true = np.asarray(Image.open(realistic / "Segmentation" / cat / f"{stem}.png")) > 0
        pred = np.asarray(Image.open(realistic / "PredictedMasks" / cat / f"{stem}.png")) > 0
        iou = (true & pred).sum() / (true | pred).sum()
        assert iou == pytest.approx(rec["mask"]["iou"]) and 0.5 < iou < 1.0


def test_camera_error_terms_at_their_documented_magnitudes():
    err = ReconstructionErrors()
    cam = view(car(), 40, size=384)
    rng = np.random.default_rng(0)
    recs = [draw_camera_errors(err, cam, rng)[3] for _ in range(400)]
    rot = np.array([r["camera_rotation_error_deg"] for r in recs])
    good = rot[rot < 15.0]
    # isotropic N(0, 5 deg) per axis: Maxwell magnitude, mean 2 sqrt(2/pi) 5 = 8.0 deg
    assert np.mean(good) == pytest.approx(8.0, abs=1.0)
    outliers = np.mean(rot >= 15.0)
    assert outliers == pytest.approx(0.2 + 0.8 * 0.03, abs=0.06)  # plus Maxwell's tail
    assert rot.max() <= 45.0 + 1e-9
    tilt = np.array([r["tilt_rotvec_deg"] for r in recs])
    # about a horizontal axis, angle N(0, 3 deg): |angle| averages 3 sqrt(2/pi)
    assert np.allclose(tilt[:, 2], 0)
    assert np.mean(np.linalg.norm(tilt, axis=1)) == pytest.approx(3.0 * math.sqrt(2 / math.pi),
                                                                  rel=0.15)
    focal = np.log([r["focal_factor"] for r in recs])
    inlier = np.abs(np.abs(focal) - math.log(1.2)) > 1e-9
    inlier &= np.abs(np.abs(focal) - abs(math.log(0.8))) > 1e-9
    assert np.std(focal[inlier]) == pytest.approx(0.06, rel=0.15)
    assert np.mean(~inlier) == pytest.approx(0.05, abs=0.03)
    pp = np.array([r["principal_point_offset_px"] for r in recs])
    assert np.std(pp) == pytest.approx(0.01 * 384, rel=0.15)


def test_yaw_flip_rates_per_category():
    err = ReconstructionErrors()
    assert err.flip_probability("bus") == 0.27 and err.flip_probability("dog") == 0.10
    assert err.flip_probability("unknown") == 0.03
    rng = np.random.default_rng(1)
    w = np.asarray(err.flip_weights) / sum(err.flip_weights)
    ks = np.array([draw_yaw_flip(rng, err.flip_probability("bus"), w) for _ in range(3000)])
    assert np.mean(ks != 0) == pytest.approx(0.27, abs=0.03)
    share = np.bincount(ks[ks != 0], minlength=4)[1:] / np.sum(ks != 0)
    np.testing.assert_allclose(share, w, atol=0.06)
    hard = error_preset("hard").reconstruction
    assert hard.flip_probability("bus") == 0.6 and hard.flip_probability("dog") == 0.3


def test_shape_error_terms_at_their_documented_magnitudes():
    err = ReconstructionErrors()
    dog = make_shape("dog", 0, 0)
    rng = np.random.default_rng(2)
    draws = [draw_shape_errors("dog", dog.vertices, dog.vertex_part, tuple(dog.part_names),
                               np.array([5.0, 1.0, 1.0]), err, rng) for _ in range(60)]
    root = int(np.argmax(np.bincount(dog.vertex_part)))
    scales = np.log(np.concatenate([np.delete(d.part_scale, root) for d in draws]))
    assert np.std(scales) == pytest.approx(0.08, rel=0.15)
    assert np.std(np.log([d.axis_scale for d in draws])) == pytest.approx(0.05, rel=0.2)
    assert set(draws[0].articulation) == {"leg_front_left", "leg_front_right", "leg_hind_left",
                                          "leg_hind_right", "tail", "head"}
    # signed angle about a random axis: |angle| has mean sigma sqrt(2/pi)
    angles = np.degrees([np.linalg.norm(r) for d in draws for r in d.articulation.values()])
    assert np.mean(angles) == pytest.approx(12.0 * math.sqrt(2 / math.pi), rel=0.15)
    assert np.mean([d.hidden_mirror for d in draws]) == pytest.approx(0.7, abs=0.15)
    assert all(d.hidden_warp == 0.12 for d in draws)
    assert np.mean([d.fused for d in draws]) == pytest.approx(0.3, abs=0.13)
    assert np.mean([len(d.cuts) > 0 for d in draws]) == pytest.approx(0.15, abs=0.1)
    names = dog.part_names
    small = {names.index(n) for n in ("eye_left", "eye_right")}
    dropped = [p in d.dropped for d in draws for p in small]
    assert np.mean(dropped) == pytest.approx(0.3, abs=0.12)
    never = {names.index(n) for n in ("body", "leg_hind_left", "tail")}
    assert not any(p in d.dropped for d in draws for p in never)
    # the hidden side is behind the object as seen from the camera
    np.testing.assert_allclose(draws[0].view_normal, [1, 0, 0], atol=0.2)


def _disk(radius: float, size: int = 384) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return (yy - size / 2) ** 2 + (xx - size / 2) ** 2 <= radius**2


def test_mask_error_terms_at_their_documented_magnitudes():
    base = MaskErrors()
    off = replace(base, jitter_px=0.0, bias_px=0.0, thin_drop_prob=0.0, hole_prob=0.0,
                  leak_prob=0.0)
    disk = _disk(100.0)
    rng = np.random.default_rng(3)
    # bias: the disk's radius moves by N(0, bias_px)
    radii = [math.sqrt(predict_mask(disk, None, rng, replace(off, bias_px=1.0)).mask.sum()
                       / math.pi) for _ in range(30)]
    assert np.std(np.array(radii) - 100.0) == pytest.approx(1.0, rel=0.3)
    # jitter: the boundary moves by N(0, jitter_px): |displacement| averages 0.8 jitter_px
    moved = []
    for _ in range(6):
        pred = predict_mask(disk, None, rng, replace(off, jitter_px=1.5)).mask
        moved.append((pred ^ disk).sum() / (2 * math.pi * 100.0))
    assert np.mean(moved) == pytest.approx(1.5 * math.sqrt(2 / math.pi), rel=0.25)
    # thin structures (1 px lines) each dropped with probability 0.3
    lines = disk.copy()
    for i in range(40):
        lines[20 + 8 * i, 300:380] = True
    kept = []
    for _ in range(4):
        pred = predict_mask(lines, None, rng, replace(off, thin_drop_prob=0.3)).mask
        kept += [bool(pred[20 + 8 * i, 340]) for i in range(40) if not disk[20 + 8 * i, 340]]
    assert 1 - np.mean(kept) == pytest.approx(0.3, abs=0.1)
    # holes: probability hole_prob, inside the mask
    holes = [predict_mask(disk, None, rng, replace(off, hole_prob=0.5)).holes for _ in range(40)]
    assert np.mean(np.array(holes) > 0) == pytest.approx(0.5, abs=0.2)
    # leakage into an adjacent occluder only
    occluder = np.zeros_like(disk)
    occluder[150:230, 290:384] = True
    occluder &= ~disk
    far = np.zeros_like(disk)
    far[0:20, 0:20] = True
    leaks = [predict_mask(disk, occluder, rng, replace(off, leak_prob=0.5)) for _ in range(40)]
    assert np.mean([r.leaked_px > 0 for r in leaks]) == pytest.approx(0.5, abs=0.2)
    grown = leaks[int(np.argmax([r.leaked_px for r in leaks]))].mask & ~disk
    assert grown.any() and (grown <= occluder).all()
    assert all(predict_mask(disk, far, rng, replace(off, leak_prob=1.0)).leaked_px == 0
               for _ in range(3))
    # the oracle and an empty mask are returned unchanged
    assert predict_mask(disk, occluder, rng, None).iou == 1.0


def test_realistic_reconstruction_errs_in_rotation_shape_and_intrinsics():
    shape = car()
    cam = view(shape, 130, size=128)
    settings = SimulatorSettings(errors=ReconstructionErrors())
    sim = simulate_reconstruction(shape.vertices, shape.faces, cam, True,
                                  np.random.default_rng(0), settings, category="car",
                                  vertex_part=shape.vertex_part,
                                  part_names=tuple(shape.part_names),
                                  error_rng=np.random.default_rng(1))
    e = sim.errors
    assert e["predicted_rotation_error_deg"] == pytest.approx(
        rotation_error_deg(cam.R, sim.camera.R))
    assert e["predicted_rotation_error_deg"] > 0.5
    assert not np.allclose(sim.camera.K, cam.K)
    assert e["components"] >= 1 and set(e["shape"]) >= {"part_scale", "hidden_mirror"}
    with pytest.raises(ValueError, match="error_rng"):
        simulate_reconstruction(shape.vertices, shape.faces, cam, True,
                                np.random.default_rng(0), settings)


def test_presets_and_scale():
    assert error_preset("oracle").reconstruction is None and error_preset("oracle").masks is None
    real, hard = error_preset("realistic"), error_preset("hard")
    assert hard.reconstruction.rotation_sigma_deg == 2 * real.reconstruction.rotation_sigma_deg
    assert hard.masks.jitter_px == 2 * real.masks.jitter_px
    half = error_preset("realistic", 0.5)
    assert half.reconstruction.flip_probability("bus") == pytest.approx(0.135)
    assert half.scale_sigma == pytest.approx(0.075)
    with pytest.raises(ValueError, match="error level"):
        error_preset("medium")
    with pytest.raises(ValueError, match="oracle"):
        error_preset("oracle", 2.0)
    with pytest.raises(ValueError, match="thin_drop_prob"):
        MaskErrors(thin_drop_prob=1.5)
    with pytest.raises(ValueError, match="rotation_outlier_deg"):
        ReconstructionErrors(rotation_outlier_deg=(50.0, 10.0))
    # a focal outlier of 1 would make fx = 0 (and above 1 negative): refused, at any scale
    with pytest.raises(ValueError, match="focal_outlier"):
        error_preset("realistic", 5.0)


def test_pipeline_reads_predicted_masks_by_default(realistic, tmp_path):
    from geocorr.cli.reconstruct import _segmenter
    from geocorr.features.cache import dataset_mask_for
    from geocorr.reconstruct.pipeline import Stage1Settings, load_cached, run_stage1
    from geocorr.reconstruct.reconstructor import simulated_reconstructor
    from geocorr.reconstruct.refine import RefineSettings
    from geocorr.reconstruct.segmenter import DatasetMasks, PredictedMasks, default_segmenter

    cat, stem = "car", "car_0001"
    true = np.asarray(Image.open(realistic / "Segmentation" / cat / f"{stem}.png")) > 0
    pred = np.asarray(Image.open(realistic / "PredictedMasks" / cat / f"{stem}.png")) > 0
    assert (true != pred).any()
    seg = default_segmenter(realistic)
    assert isinstance(seg, PredictedMasks) and seg.name == "predicted"
    assert isinstance(_segmenter("auto", realistic, "", "cpu"), PredictedMasks)
    image = np.zeros(true.shape + (3,), np.uint8)
    np.testing.assert_array_equal(seg.segment(image, cat, stem), pred)
    np.testing.assert_array_equal(dataset_mask_for(realistic)(f"{stem}.jpg", cat), pred)
    # stage 1 refines against the predicted mask and caches it
    settings = Stage1Settings(refine=RefineSettings(max_side=32), skip_yaw=True)
    rec = run_stage1(realistic, [(cat, stem)], seg, simulated_reconstructor(realistic),
                     tmp_path / "s1", settings, progress=False)[0]
    assert rec["mask_source"] == "predicted"
    np.testing.assert_array_equal(load_cached(tmp_path / "s1", cat, stem).mask, pred)
    # SPair-like folders (no PredictedMasks/) keep their own masks
    spair = tmp_path / "spair"
    (spair / "Segmentation").mkdir(parents=True)
    assert type(default_segmenter(spair)) is DatasetMasks
    assert type(_segmenter("auto", spair, "", "cpu")) is DatasetMasks
    with pytest.raises(ValueError, match="PredictedMasks"):
        _segmenter("predicted", spair, "", "cpu")


def test_synth_cli_error_levels(tmp_path):
    from typer.testing import CliRunner

    from geocorr.cli import app

    out = tmp_path / "ds"
    args = ["synth", "--out", str(out), "--seed", "2", "--categories", "car",
            "--images-per-category", "2", "--pairs-per-split", "1", "--size", "64",
            "--occluder-prob", "0", "--quiet", "--sim-errors", "realistic", "--sim-scale", "0.5",
            "--sim-flip-prob-elongated", "1.0"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "100% of reconstructions yaw-flipped" in res.output
    assert read_error_level(out) == ("realistic", 0.5)
    settings = json.loads((out / "Meta/settings.json").read_text())
    assert settings["simulator"]["errors"]["rotation_sigma_deg"] == 2.5
    assert (out / "PredictedMasks/car/car_0000.png").is_file()
    res = CliRunner().invoke(app, args[:-4] + ["--sim-errors", "medium", "--overwrite"])
    assert res.exit_code == 2 and "oracle, realistic, hard" in res.output


def test_rotation_error_modulo_yaw_and_components():
    from geocorr.data.synth.simulator import count_components, yaw_rotation
    from geocorr.geometry.rotation import rotvec_matrix

    tilt = rotvec_matrix([math.radians(10.0), 0.0, 0.0])
    for k in range(4):
        R = yaw_rotation(k)
        assert rotation_error_deg(np.eye(3), R) == pytest.approx(0.0, abs=1e-6)
        assert rotation_error_deg(np.eye(3), R, modulo_yaw=False) == pytest.approx(
            [0.0, 90.0, 180.0, 90.0][k], abs=1e-6)
        assert rotation_error_deg(np.eye(3), tilt @ R) == pytest.approx(10.0, abs=1e-6)
    tri = np.array([[0, 1, 2], [3, 4, 5], [4, 5, 6]])
    assert count_components(tri, 8) == 2 and count_components(np.zeros((0, 3)), 3) == 0

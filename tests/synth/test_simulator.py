import numpy as np
import pytest
from scipy.spatial import cKDTree
from synth_helpers import car, view

from geocorr.data.synth.simulator import (
    SimulatorSettings,
    apply_stage1_corrections,
    simulate_reconstruction,
    yaw_rotation,
)
from geocorr.geometry.raster import rasterize


def test_yaw_rotation():
    np.testing.assert_array_equal(yaw_rotation(1) @ [1, 0, 0], [0, 1, 0])
    np.testing.assert_array_equal(yaw_rotation(2) @ [1, 0, 0], [-1, 0, 0])
    np.testing.assert_array_equal(yaw_rotation(-1), yaw_rotation(3))
    for k in range(4):
        np.testing.assert_array_equal(yaw_rotation(k) @ yaw_rotation(-k), np.eye(3))


def test_yaw_step_keeps_the_image():
    shape = car()
    cam = view(shape, 30)
    uv0, _ = cam.project(shape.vertices)
    for k in range(4):
        v, c = apply_stage1_corrections(shape.vertices, cam, 1.0, np.zeros(3), k)
        uv, _ = c.project(v)
        np.testing.assert_allclose(uv, uv0, atol=1e-9)


def _chamfer(a, b):
    return 0.5 * (cKDTree(b).query(a)[0].mean() + cKDTree(a).query(b)[0].mean())


@pytest.mark.parametrize("flip", [0.0, 1.0])
def test_true_corrections_bring_mesh_onto_groundtruth(flip):
    shape = car()
    cam = view(shape, 130, size=128)
    diag = float(np.linalg.norm(np.ptp(shape.vertices, axis=0)))
    settings = SimulatorSettings(flip_prob=flip, flip_prob_elongated=flip)
    for seed in range(2):
        sim = simulate_reconstruction(shape.vertices, shape.faces, cam, True,
                                      np.random.default_rng(seed), settings)
        assert (sim.yaw_error_k != 0) == (flip == 1.0)
        assert sim.true_k == (-sim.yaw_error_k) % 4
        assert 2000 <= len(sim.vertices) <= 8000
        assert np.linalg.norm(np.ptp(sim.vertices, axis=0)) == pytest.approx(1.0, abs=0.02)
        corrected = sim.corrected_vertices()
        # re-meshed: vertices differ from the ground truth's
        assert np.median(cKDTree(shape.vertices).query(corrected)[0]) > 1e-3 * diag
        assert _chamfer(corrected, shape.vertices) < 0.02 * diag
        # the corrected camera is the ground-truth rotation and reprojects like it
        v2, c2 = apply_stage1_corrections(sim.vertices, sim.camera, sim.true_scale,
                                          sim.true_translation, sim.true_k)
        np.testing.assert_allclose(c2.R, cam.R, atol=1e-9)
        uv_a, _ = c2.project(v2)
        uv_b, _ = cam.project(sim.gt_scale * v2 + sim.gt_offset)
        np.testing.assert_allclose(uv_a, uv_b, atol=1e-6)


def test_predicted_camera_is_roughly_right_but_off():
    shape = car()
    cam = view(shape, 200, size=128)
    gt_mask = rasterize(shape.vertices, shape.faces, cam).mask
    ious_pred, ious_fixed = [], []
    for seed in range(3):
        sim = simulate_reconstruction(shape.vertices, shape.faces, cam, False,
                                      np.random.default_rng(seed), SimulatorSettings())
        pred = rasterize(sim.vertices, sim.faces, sim.camera).mask
        v2, c2 = apply_stage1_corrections(sim.vertices, sim.camera, sim.true_scale,
                                          sim.true_translation, sim.true_k)
        fixed = rasterize(v2, sim.faces, c2).mask
        ious_pred.append((pred & gt_mask).sum() / (pred | gt_mask).sum())
        ious_fixed.append((fixed & gt_mask).sum() / (fixed | gt_mask).sum())
    assert min(ious_fixed) > 0.85
    assert np.mean(ious_pred) < np.mean(ious_fixed)


def test_settings_validation():
    with pytest.raises(ValueError, match="flip_prob"):
        SimulatorSettings(flip_prob=1.5).validate()
    with pytest.raises(ValueError, match="scale_clip"):
        SimulatorSettings(scale_clip=(1.2, 2.0)).validate()

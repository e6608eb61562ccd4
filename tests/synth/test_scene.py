import math

import numpy as np
import pytest

from geocorr.data.synth.scene import (
    SceneSettings,
    azimuth_bin,
    orbit_camera,
    pose_name,
    sample_scene,
)


def _box_vertices():
    return np.array([[x, y, z] for x in (-2, 2) for y in (-1, 1) for z in (-0.7, 0.7)], float)


@pytest.mark.parametrize("az, want", [(0, [1, 0, 0]), (90, [0, 1, 0]), (180, [-1, 0, 0]),
                                      (270, [0, -1, 0])])
def test_azimuth_convention(az, want):
    K = np.array([[100, 0, 50], [0, 100, 50], [0, 0, 1.0]])
    cam = orbit_camera(np.zeros(3), az, 0.0, 5.0, K, 100, 100)
    np.testing.assert_allclose(cam.center, 5 * np.array(want, float), atol=1e-9)
    # The object's up (+Z) projects upwards in the image (smaller v).
    uv, _ = cam.project(np.array([[0, 0, 0], [0, 0, 1.0]]))
    assert uv[1, 1] < uv[0, 1]


def test_elevation_puts_camera_above():
    K = np.array([[100, 0, 50], [0, 100, 50], [0, 0, 1.0]])
    cam = orbit_camera(np.zeros(3), 30, 30.0, 4.0, K, 100, 100)
    assert cam.center[2] == pytest.approx(4 * math.sin(math.radians(30)))


@pytest.mark.parametrize("az, bin_", [(0, 0), (22.4, 0), (22.6, 1), (90, 2), (180, 4), (270, 6),
                                      (337.4, 7), (337.6, 0), (359.9, 0), (-10, 0)])
def test_azimuth_bin(az, bin_):
    assert azimuth_bin(az) == bin_


def test_pose_name():
    assert [pose_name(a) for a in (0, 90, 180, 270, 350)] == \
        ["Frontal", "Left", "Rear", "Right", "Frontal"]


def test_sample_scene_fill_and_determinism():
    v = _box_vertices()
    settings = SceneSettings(size=200, truncation_prob=0.0, fill_range=(0.5, 0.5))
    for seed in range(5):
        a = sample_scene(v, np.random.default_rng(seed), settings)
        b = sample_scene(v, np.random.default_rng(seed), settings)
        np.testing.assert_array_equal(a.camera.K, b.camera.K)
        np.testing.assert_array_equal(a.camera.t, b.camera.t)
        cam = a.camera
        assert max(cam.width, cam.height) == 200
        uv, z = cam.project(v)
        assert (z > 0).all()
        fill = max(np.ptp(uv[:, 0]) / cam.width, np.ptp(uv[:, 1]) / cam.height)
        assert fill == pytest.approx(0.5, rel=0.15)  # off-axis perspective
        # not truncated: the whole box is inside the image
        assert uv.min() >= -0.5 and (uv[:, 0] < cam.width).all() and (uv[:, 1] < cam.height).all()
        assert 0 <= a.azimuth_deg < 360 and 0 <= a.elevation_deg <= 35
        assert np.linalg.norm(a.light_dir) == pytest.approx(1.0)


def test_sample_scene_truncation_pushes_object_out():
    v = _box_vertices()
    settings = SceneSettings(size=200, truncation_prob=1.0, truncation_range=(0.25, 0.3))
    for seed in range(5):
        cam = sample_scene(v, np.random.default_rng(seed), settings).camera
        uv, _ = cam.project(v)
        outside = ((uv[:, 0] < -0.5) | (uv[:, 0] > cam.width - 0.5) | (uv[:, 1] < -0.5)
                   | (uv[:, 1] > cam.height - 0.5))
        assert outside.any()


def test_scene_settings_validation():
    with pytest.raises(ValueError, match="fill_range"):
        sample_scene(_box_vertices(), np.random.default_rng(0), SceneSettings(fill_range=(0, 2)))
    with pytest.raises(ValueError, match="vertices"):
        sample_scene(np.zeros((3, 2)), np.random.default_rng(0))

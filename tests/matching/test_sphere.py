"""DIY-SC spherical filter: angles on a sphere centred at the origin are great-circle angles."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from geocorr.geometry.camera import Camera, look_at
from geocorr.matching.sphere import SphereSettings, sphere_directions, verify_sphere
from geocorr.matching.verify import build_mesh_index


def _camera(eye=(4.0, 0.0, 0.0), size=64):
    R, t = look_at(np.array(eye), np.zeros(3))
    f = 1.5 * size
    K = np.array([[f, 0, (size - 1) / 2], [0, f, (size - 1) / 2], [0, 0, 1.0]])
    return Camera(K, R, t, size, size)


def test_directions_normalise_axes():
    d = sphere_directions(np.array([[2.0, 0, 0], [0, 1, 0], [2, 1, 0], [0, 0, 0]]),
                          np.zeros(3), np.array([4.0, 2.0, 2.0]))
    np.testing.assert_allclose(d, [[1, 0, 0], [0, 1, 0], [np.sqrt(.5), np.sqrt(.5), 0],
                                   [1, 0, 0]])


def test_angles_and_threshold():
    m = trimesh.creation.icosphere(subdivisions=3)
    v = np.asarray(m.vertices)
    idx = build_mesh_index(v, m.faces, v)
    cam = _camera()
    rng = np.random.default_rng(0)
    uv_s, uv_t = rng.uniform(20, 44, (200, 2)), rng.uniform(20, 44, (200, 2))
    uv_t[0] = [0, 0]
    res = verify_sphere(idx, idx, cam, cam, uv_s, uv_t, SphereSettings(theta=0.2))
    assert res.n_missed == 1 and not res.kept[0] and np.isnan(res.errors[0])
    ps = idx.caster.cast_pixels(cam, uv_s).points[1:]
    pt = idx.caster.cast_pixels(cam, uv_t).points[1:]
    # the icosphere's bbox is centred at 0 and nearly a cube: directions ~ point / |point|
    cos = np.sum(ps * pt, 1) / np.linalg.norm(ps, axis=1) / np.linalg.norm(pt, axis=1)
    np.testing.assert_allclose(res.errors[1:], np.arccos(np.clip(cos, -1, 1)), atol=2e-3)
    np.testing.assert_array_equal(res.kept[1:], res.errors[1:] < 0.2)
    assert 0 < res.kept.sum() < 199


def test_bad_theta():
    with pytest.raises(ValueError, match="theta"):
        SphereSettings(theta=0)

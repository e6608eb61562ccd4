"""Non-rigid registration cross-mesh map of the geodesic filter (analytic deformations)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from geocorr.geometry.camera import Camera, look_at
from geocorr.matching.verify import (
    RegistrationSettings,
    VerifySettings,
    build_mesh_index,
    register_meshes,
    verify_geodesic,
)


def _blob():
    m = trimesh.creation.icosphere(subdivisions=3)
    v = np.asarray(m.vertices) * np.array([2.0, 1.0, 0.6])
    return v, np.asarray(m.faces)


def _bend(v):
    """A smooth, non-affine deformation (the 'front' swells, the top bends)."""
    out = v.copy()
    out[:, 2] += 0.25 * (v[:, 0] / 2.0) ** 2
    out[:, 1] *= 1.0 + 0.3 * np.clip(v[:, 0] / 2.0, 0, None)
    return out


def _diag(v):
    return float(np.linalg.norm(np.ptp(v, axis=0)))


def test_affine_target_is_recovered():
    v, _ = _blob()
    A = np.array([[1.3, 0.1, 0.0], [0.0, 0.8, 0.05], [0.0, 0.0, 1.1]])
    b = np.array([0.3, -0.2, 0.1])
    y = v @ A.T + b
    reg = register_meshes(v, y, RegistrationSettings(iterations=0))
    err = np.linalg.norm(reg(v) - y, axis=1) / _diag(y)
    assert np.median(err) < 0.01 and err.max() < 0.05


def test_nonrigid_beats_bbox_and_affine():
    v, _ = _blob()
    y = _bend(v)
    idx_true = np.arange(len(v))
    bbox = register_meshes(v, y, RegistrationSettings(affine_iterations=0, iterations=0))
    aff = register_meshes(v, y, RegistrationSettings(iterations=0))
    full = register_meshes(v, y)

    def vertex_error(reg):
        from scipy.spatial import cKDTree

        j = cKDTree(y).query(reg(v))[1]
        return np.mean(np.linalg.norm(y[j] - y[idx_true], axis=1)) / _diag(y)

    e_bbox, e_aff, e_full = vertex_error(bbox), vertex_error(aff), vertex_error(full)
    # measured: bbox 0.011, affine 0.0064, full 0.0 (every vertex back on itself)
    assert e_full < 0.002
    assert e_full < 0.5 * e_aff and e_aff < e_bbox


def test_registration_is_deterministic_and_checks_input():
    v, _ = _blob()
    y = _bend(v)
    a, b = register_meshes(v, y), register_meshes(v, y)
    np.testing.assert_array_equal(a(v), b(v))
    with pytest.raises(ValueError, match="source"):
        register_meshes(np.zeros((3, 3)), y)
    with pytest.raises(ValueError, match="cross_map"):
        VerifySettings(cross_map="magic")


def test_verify_with_registration_keeps_true_matches_of_a_deformed_copy():
    v, f = _blob()
    y = _bend(v)
    size = 64
    R, t = look_at(np.array([0.0, -6.0, 1.0]), np.zeros(3))
    K = np.array([[1.2 * size, 0, (size - 1) / 2], [0, 1.2 * size, (size - 1) / 2], [0, 0, 1]])
    cam = Camera(K, R, t, size, size)
    # true matches: project visible source vertices, and their deformed copies
    src = build_mesh_index(v, f, v)
    trg = build_mesh_index(y, f, y)
    uv_s, _ = cam.project(v)
    uv_t, _ = cam.project(y)
    hits_s = src.caster.cast_pixels(cam, uv_s)
    hits_t = trg.caster.cast_pixels(cam, uv_t)
    vis = (hits_s.hit & hits_t.hit
           & (np.linalg.norm(hits_s.points - v, axis=1) < 0.05)
           & (np.linalg.norm(hits_t.points - y, axis=1) < 0.05))
    assert vis.sum() > 50
    rng = np.random.default_rng(0)
    wrong = rng.permutation(np.flatnonzero(vis))
    s = VerifySettings(delta=0.05, cross_map="registration")
    good = verify_geodesic(src, trg, cam, cam, uv_s[vis], uv_t[vis], s)
    bad = verify_geodesic(src, trg, cam, cam, uv_s[vis], uv_t[wrong], s)
    assert good.hit.all()
    assert good.kept.mean() > 0.9
    assert np.median(good.errors) < 0.02
    assert good.kept.mean() > bad.kept.mean() + 0.5

"""Tests for geocorr.geometry.raycast: analytic hits on a sphere, a cube and a triangle."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
import trimesh

from geocorr.geometry.camera import Camera, look_at
from geocorr.geometry.raycast import RayCaster, cast_rays, dominant_vertex


@pytest.fixture(scope="module")
def sphere():
    return trimesh.creation.icosphere(5)   # 20480 faces, facets within 3e-4 of r = 1


@pytest.fixture(scope="module")
def sphere_caster(sphere):
    return RayCaster(sphere.vertices, sphere.faces)


def test_embree_backend_is_used(sphere_caster):
    assert sphere_caster.engine == "embree"
    assert type(sphere_caster._intersector).__module__ == "trimesh.ray.ray_pyembree"


def test_sphere_hits_distances_and_misses(sphere, sphere_caster):
    rng = np.random.default_rng(0)
    n = 2000
    # rays aimed at random points of the inner half-radius ball: all hit
    origins = rng.normal(size=(n, 3))
    origins *= 5.0 / np.linalg.norm(origins, axis=1, keepdims=True)
    targets = rng.uniform(-0.5, 0.5, size=(n, 3))
    dirs = targets - origins
    hits = sphere_caster.cast(origins, dirs)
    assert hits.hit.all()
    assert np.all(hits.face >= 0)
    # analytic first intersection with the unit sphere
    d = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    b = np.einsum("ij,ij->i", origins, d)
    t_true = -b - np.sqrt(b * b - (np.einsum("ij,ij->i", origins, origins) - 1.0))
    # faceting: chord depth of a level-5 icosphere is < 4e-4; grazing rays stretch it
    np.testing.assert_allclose(np.linalg.norm(hits.points, axis=1), 1.0, atol=4e-4)
    assert np.median(np.abs(hits.distance - t_true)) < 3e-4
    # points lie on their ray and on their face, reconstructable from barycentrics
    np.testing.assert_allclose(hits.points, origins + hits.distance[:, None] * d, atol=1e-12)
    tri = sphere.vertices[sphere.faces[hits.face]]
    np.testing.assert_allclose(np.einsum("nk,nkd->nd", hits.bary, tri), hits.points, atol=1e-9)
    assert np.all(hits.bary >= 0)
    np.testing.assert_allclose(hits.bary.sum(axis=1), 1.0)
    # rays pointing away from the sphere miss
    away = sphere_caster.cast(origins, -dirs)
    assert not away.hit.any()
    assert np.all(away.face == -1)
    assert np.isnan(away.points).all() and np.isnan(away.bary).all()
    assert np.isinf(away.distance).all()


def test_cube_faces_hit(sphere):
    box = trimesh.creation.box(extents=(2, 2, 2))
    caster = RayCaster(box.vertices, box.faces)
    rng = np.random.default_rng(1)
    normals = box.face_normals
    for axis in range(3):
        for sign in (-1.0, 1.0):
            n = 50
            origins = rng.uniform(-0.9, 0.9, size=(n, 3))
            origins[:, axis] = 5.0 * sign
            dirs = np.zeros((n, 3))
            dirs[:, axis] = -sign
            hits = caster.cast(origins, dirs)
            assert hits.hit.all()
            expected = np.zeros(3)
            expected[axis] = sign
            np.testing.assert_allclose(normals[hits.face], np.tile(expected, (n, 1)), atol=1e-12)
            np.testing.assert_allclose(hits.distance, 4.0, atol=1e-12)
            want = origins.copy()
            want[:, axis] = sign
            np.testing.assert_allclose(hits.points, want, atol=1e-12)


def test_inside_cube_hits_the_wall_ahead():
    box = trimesh.creation.box(extents=(2, 2, 2))
    hits = cast_rays(box.vertices, box.faces, [[0.25, 0, 0]], [[3.0, 0, 0]])
    assert hits.hit[0]
    assert hits.distance[0] == pytest.approx(0.75, abs=1e-12)
    np.testing.assert_allclose(box.face_normals[hits.face[0]], [1, 0, 0], atol=1e-12)


def test_triangle_barycentrics_and_dominant_vertex():
    v = np.array([[0, 0, 0], [2, 0, 0], [0, 2, 0.0]])
    f = np.array([[0, 1, 2]])
    caster = RayCaster(v, f)
    want = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    points = want @ v
    origins = points + [0, 0, 3.0]
    hits = caster.cast(np.vstack([origins, [[5, 5, 3]]]), np.tile([0, 0, -1.0], (4, 1)))
    np.testing.assert_array_equal(hits.hit, [True, True, True, False])
    np.testing.assert_allclose(hits.bary[:3], want, atol=1e-12)
    np.testing.assert_allclose(hits.distance[:3], 3.0, atol=1e-12)
    np.testing.assert_array_equal(dominant_vertex(f, hits), [0, 2, 1, -1])


def test_python_engine_matches_embree(sphere, sphere_caster):
    rng = np.random.default_rng(2)
    origins = np.tile([0, 0, 4.0], (300, 1))
    dirs = np.column_stack([rng.uniform(-0.3, 0.3, (300, 2)), -np.ones(300)])
    fast = sphere_caster.cast(origins, dirs)
    sub = trimesh.creation.icosphere(3)
    slow = RayCaster(sub.vertices, sub.faces, engine="python").cast(origins, dirs)
    ref = RayCaster(sub.vertices, sub.faces, engine="embree").cast(origins, dirs)
    assert slow.hit.sum() == ref.hit.sum() > 50
    np.testing.assert_array_equal(slow.hit, ref.hit)
    np.testing.assert_allclose(slow.points[slow.hit], ref.points[ref.hit], atol=1e-9)
    assert fast.hit.sum() >= ref.hit.sum() - 3


def test_fallback_warns_without_embreex(monkeypatch):
    monkeypatch.setitem(sys.modules, "trimesh.ray.ray_pyembree", None)
    box = trimesh.creation.box()
    with pytest.warns(RuntimeWarning, match="embreex"):
        caster = RayCaster(box.vertices, box.faces)
    assert caster.engine == "python"
    hits = caster.cast([[0, 0, 5.0]], [[0, 0, -1.0]])
    assert hits.distance[0] == pytest.approx(4.5)
    with pytest.raises(ImportError, match="embreex"):
        RayCaster(box.vertices, box.faces, engine="embree")


def test_cast_pixels_centre_ray(sphere_caster):
    R, t = look_at(np.array([0.0, -5.0, 0.0]), np.zeros(3))
    K = np.array([[100.0, 0, 32], [0, 100.0, 32], [0, 0, 1]])
    cam = Camera(K, R, t, 65, 65)
    hits = sphere_caster.cast_pixels(cam, np.array([[32.0, 32.0], [0.0, 0.0]]))
    assert hits.hit[0]
    assert hits.distance[0] == pytest.approx(4.0, abs=4e-4)
    np.testing.assert_allclose(hits.points[0], [0, -1, 0], atol=4e-4)
    # corner pixel looks 0.32 rad off-axis: tan = 0.32 > 1/sqrt(24), misses
    assert not hits.hit[1]


def test_empty_and_bad_input(sphere_caster):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hits = sphere_caster.cast(np.zeros((0, 3)), np.zeros((0, 3)))
    assert len(hits) == 0 and hits.points.shape == (0, 3) and hits.face.dtype == np.int64
    assert len(sphere_caster.cast_pixels(None, np.zeros((0, 2)))) == 0
    assert len(dominant_vertex(np.zeros((0, 3), dtype=int), hits)) == 0
    with pytest.raises(ValueError, match="directions"):
        sphere_caster.cast(np.zeros((1, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        sphere_caster.cast(np.zeros((2, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="faces"):
        RayCaster(np.zeros((3, 3)), np.zeros((0, 3), dtype=int))

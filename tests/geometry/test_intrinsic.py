"""Tests for geocorr.geometry.intrinsic: analytic flips, Delaunay property, invariants."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial import ConvexHull

from geocorr.geometry.intrinsic import (
    DELAUNAY_TOL,
    corner_cotangents,
    intrinsic_delaunay,
    planar_layout,
)


def _rhombus():
    """Flat rhombus split along its long diagonal (0-1): both opposite angles obtuse."""
    v = np.array([[0, 0, 0], [2, 0, 0], [1, 0.3, 0], [1, -0.3, 0]], dtype=float)
    f = np.array([[0, 1, 2], [1, 0, 3]])
    return v, f


def _stretched_random_sphere(n: int, seed: int):
    """Hull of random points on the unit sphere, then stretched: obtuse slivers."""
    p = np.random.default_rng(seed).normal(size=(n, 3))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    return p * [1.8, 1.0, 0.7], ConvexHull(p).simplices


def _areas(v, f):
    return 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]),
                                axis=1)


def test_rhombus_flips_to_the_short_diagonal():
    v, f = _rhombus()
    tri = intrinsic_delaunay(v, f)
    assert tri.n_flips == 1
    assert {frozenset(x) for x in tri.faces.tolist()} == {frozenset({2, 3, 0}),
                                                          frozenset({2, 3, 1})}
    # the new edge 2-3 is the short diagonal, length 0.6; the boundary keeps its lengths
    lengths = sorted(np.round(tri.edge_lengths(), 12))
    side = np.hypot(1.0, 0.3)
    np.testing.assert_allclose(lengths, [0.6, side, side, side, side])
    # angles opposite the new edge: 2 atan(0.3) at 0 and 1, cot = (1 - 0.09) / 0.6 each
    diag = int(np.argmin(tri.edge_lengths()))
    assert tri.cotan_sums()[diag] == pytest.approx(2 * 0.91 / 0.6, rel=1e-12)
    # the layout reproduces the lengths
    p = planar_layout(tri.lengths)
    for c in range(3):
        np.testing.assert_allclose(np.linalg.norm(p[:, (c + 1) % 3] - p[:, (c + 2) % 3], axis=1),
                                   tri.lengths[:, c], rtol=1e-12)


def test_delaunay_mesh_is_untouched():
    s = trimesh.creation.icosphere(3)
    v, f = np.asarray(s.vertices), np.asarray(s.faces)
    tri = intrinsic_delaunay(v, f)
    assert tri.n_flips == 0
    np.testing.assert_array_equal(tri.faces, f)
    want = np.linalg.norm(v[f[:, [1, 2, 0]]] - v[f[:, [2, 0, 1]]], axis=2)
    np.testing.assert_allclose(tri.lengths, want, rtol=1e-14)


def test_irregular_mesh_becomes_delaunay_and_keeps_its_surface():
    v, f = _stretched_random_sphere(1500, seed=4)
    tri = intrinsic_delaunay(v, f)
    assert tri.n_flips > 100
    assert len(tri.faces) == len(f)
    assert tri.edges.max() + 1 == 3 * len(f) // 2              # closed: E = 3F / 2
    assert np.all(np.bincount(tri.edges.ravel()) == 2)
    # before: many negative cotangent weights; after: none beyond the tolerance
    cot_before = corner_cotangents(np.linalg.norm(
        v[f[:, [1, 2, 0]]] - v[f[:, [2, 0, 1]]], axis=2))
    assert (cot_before < 0).sum() > 100
    assert tri.cotan_sums().min() >= -DELAUNAY_TOL
    # intrinsic flips keep the total area and use every vertex
    p = planar_layout(tri.lengths)
    area_after = 0.5 * np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])[:, 2].sum()
    assert area_after == pytest.approx(_areas(v, f).sum(), rel=1e-10)
    assert np.array_equal(np.unique(tri.faces), np.arange(len(v)))
    assert np.all(tri.faces[:, 0] != tri.faces[:, 1])


def test_winding_does_not_change_the_result():
    v, f = _stretched_random_sphere(400, seed=5)
    flipped = f.copy()
    flipped[::3] = flipped[::3, ::-1]
    a, b = intrinsic_delaunay(v, f), intrinsic_delaunay(v, flipped)
    assert a.n_flips == b.n_flips
    np.testing.assert_allclose(np.sort(a.edge_lengths()), np.sort(b.edge_lengths()),
                               rtol=1e-12)


def test_non_manifold_edge_is_never_flipped():
    # three triangles on the edge 0-1, each with an obtuse angle opposite it
    v = np.array([[0, 0, 0], [2, 0, 0], [1, 0.2, 0], [1, -0.1, 0.17], [1, -0.1, -0.17]])
    f = np.array([[0, 1, 2], [0, 1, 3], [0, 1, 4]])
    tri = intrinsic_delaunay(v, f)
    assert tri.n_flips == 0
    np.testing.assert_array_equal(tri.faces, f)


def test_mollification_restores_the_triangle_inequality_margin():
    # a needle: 0-1-2 almost collinear (a single face, so nothing can flip)
    v = np.array([[0, 0, 0], [1, 0, 0], [0.5, 1e-7, 0]])
    f = np.array([[0, 1, 2]])
    raw = intrinsic_delaunay(v, f, mollify=0.0).lengths[0]
    np.testing.assert_allclose(raw, [np.hypot(0.5, 1e-7), np.hypot(0.5, 1e-7), 1.0])
    mol = intrinsic_delaunay(v, f, mollify=1e-3).lengths[0]
    # margin 2 * hypot(0.5, 1e-7) - 1 is below delta = 1e-3 * mean, so every edge
    # grows by delta - margin, which makes the smallest margin exactly delta
    eps = 1e-3 * raw.mean() - (2 * np.hypot(0.5, 1e-7) - 1.0)
    np.testing.assert_allclose(mol, raw + eps, rtol=1e-12)
    assert mol[0] + mol[1] - mol[2] == pytest.approx(1e-3 * raw.mean(), rel=1e-9)
    # a healthy triangle is left alone
    ok = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0.0]])
    np.testing.assert_array_equal(intrinsic_delaunay(ok, f).lengths,
                                  intrinsic_delaunay(ok, f, mollify=0.0).lengths)


def test_bad_input():
    v, f = _rhombus()
    with pytest.raises(ValueError, match="repeats a vertex"):
        intrinsic_delaunay(v, np.array([[0, 0, 1]]))
    with pytest.raises(ValueError, match="out of range"):
        intrinsic_delaunay(v, np.array([[0, 1, 9]]))
    with pytest.raises(ValueError, match="mollify"):
        intrinsic_delaunay(v, f, mollify=-1.0)
    with pytest.raises(ValueError, match="faces"):
        intrinsic_delaunay(v, np.zeros((0, 3), dtype=int))


def test_clustered_non_manifold_mesh_flips_cleanly():
    # vertex clustering (what verification does to big meshes) leaves non-manifold
    # edges and fans of slivers; the flips must keep every triangle valid
    from geocorr.features.geometric import cluster_vertices
    from geocorr.geometry.geodesic import GeodesicSolver

    s = trimesh.creation.icosphere(4)
    rng = np.random.default_rng(3)
    v = np.asarray(s.vertices) * rng.uniform(0.9, 1.1, size=(len(s.vertices), 1)) * [2, 1, 1]
    cv, cf, _ = cluster_vertices(v, np.asarray(s.faces), 400)
    counts = np.unique(np.sort(np.concatenate([cf[:, [0, 1]], cf[:, [1, 2]], cf[:, [2, 0]]]),
                               axis=1), axis=0, return_counts=True)[1]
    tri = intrinsic_delaunay(cv, cf)
    assert tri.n_flips > 0
    assert np.all(np.isfinite(tri.lengths)) and np.all(tri.lengths > 0)
    # interior (two-face) edges are Delaunay, except where the two faces share all three
    # vertices (flips made two edges between the same pair; flipping would make a loop,
    # which the data model skips); boundary and non-manifold edges are left as they were
    interior = np.bincount(tri.edges.ravel()) == 2
    assert interior.sum() == (counts == 2).sum()
    bad = np.flatnonzero(interior & (tri.cotan_sums() < -DELAUNAY_TOL))
    assert len(bad) < 0.01 * interior.sum()
    for e in bad:
        f1, f2 = np.nonzero(tri.edges == e)[0]
        assert set(tri.faces[f1]) == set(tri.faces[f2])
    d = GeodesicSolver(cv, cf).distances([0, 7])
    assert np.all(np.isfinite(d)) and d.min() >= 0 and d[0, 0] == 0

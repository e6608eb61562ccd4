"""Tests for geocorr.geometry.geodesic: great circles, symmetry, the bridge rule."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from scipy.spatial import ConvexHull, Delaunay

from geocorr.geometry.geodesic import GeodesicSolver, HeatSettings, geodesic_distances


def _sphere(level: int):
    s = trimesh.creation.icosphere(level)
    return np.asarray(s.vertices, dtype=np.float64), np.asarray(s.faces, dtype=np.int64)


def _great_circle(v: np.ndarray, sources: np.ndarray) -> np.ndarray:
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    return np.arccos(np.clip(unit[sources] @ unit.T, -1.0, 1.0))


@pytest.fixture(scope="module")
def sphere3():
    return _sphere(3)   # 642 vertices


def test_heat_great_circle_within_2_percent():
    v, f = _sphere(4)   # 2562 vertices
    sources = np.array([0, 100, 2000])
    d = geodesic_distances(v, f, sources)           # engine None -> heat
    gt = _great_circle(v, sources)
    assert d.shape == (3, len(v))
    np.testing.assert_array_equal(d[np.arange(3), sources], 0.0)
    # within 2% of the geodesic diameter (pi) everywhere; median relative error < 2%
    assert np.abs(d - gt).max() < 0.02 * np.pi
    far = gt > 0.3
    assert np.median(np.abs(d - gt)[far] / gt[far]) < 0.02


def test_exact_great_circle_within_half_percent(sphere3):
    v, f = sphere3
    sources = np.array([0, 321])
    d = GeodesicSolver(v, f, engine="exact").distances(sources)
    gt = _great_circle(v, sources)
    assert np.abs(d - gt).max() < 0.005 * np.pi
    # exact polyhedral distance to a vertex neighbour is the edge length
    e = f[np.any(f == 0, axis=1)][0]
    nb = e[e != 0][0]
    assert d[0, nb] == pytest.approx(np.linalg.norm(v[0] - v[nb]), rel=1e-9)


def test_pairwise_symmetric_and_matches_reference(sphere3):
    v, f = sphere3
    solver = GeodesicSolver(v, f)
    rng = np.random.default_rng(0)
    a = rng.integers(0, len(v), 200)
    b = rng.integers(0, len(v), 200)
    d_ab = solver.pairwise(a, b)
    np.testing.assert_allclose(d_ab, solver.pairwise(b, a), rtol=0, atol=1e-12)
    # slow reference: full rows in both directions
    ref = 0.5 * (solver.distances(a)[np.arange(200), b] + solver.distances(b)[np.arange(200), a])
    np.testing.assert_allclose(d_ab, ref, atol=1e-12)
    assert np.all(d_ab[a == b] == 0)
    # the raw heat rows are not symmetric; pairwise fixes that
    rows = solver.distances(a[:20])
    back = solver.distances(b[:20])
    assert np.abs(rows[np.arange(20), b[:20]] - back[np.arange(20), a[:20]]).max() > 0


def test_all_pairs_symmetric_cached_and_consistent(sphere3):
    v, f = sphere3
    solver = GeodesicSolver(v, f)
    full = solver.all_pairs()
    assert full.shape == (len(v), len(v)) and full.dtype == np.float32
    np.testing.assert_array_equal(full, full.T)
    np.testing.assert_array_equal(np.diag(full), 0.0)
    rows = solver.distances(np.arange(len(v)))
    np.testing.assert_allclose(full, 0.5 * (rows + rows.T), atol=1e-5)
    assert solver.all_pairs() is full
    a, b = np.array([1, 5, 9]), np.array([600, 3, 9])
    np.testing.assert_allclose(solver.pairwise(a, b), full[a, b])


def _two_spheres(gap: float):
    v, f = _sphere(2)
    v2 = np.vstack([v, v + [2.0 + gap, 0.3, 0.1]])
    f2 = np.vstack([f, f + len(v)])
    return v, f, v2, f2


def test_disconnected_bridge_rule():
    v, f, v2, f2 = _two_spheres(gap=0.5)
    n = len(v)
    solver = GeodesicSolver(v2, f2, engine="exact")
    assert solver.n_components == 2
    ((pa, pb, length),) = solver.bridges
    pa, pb = (pa, pb) if pa < n else (pb, pa)
    # the bridge is the closest vertex pair, found by brute force
    gaps = np.linalg.norm(v2[:n, None] - v2[None, n:], axis=2)
    assert length == pytest.approx(gaps.min())
    assert np.linalg.norm(v2[pa] - v2[pb]) == pytest.approx(length)
    single = GeodesicSolver(v, f, engine="exact")
    d = solver.distances(np.array([0, n + 7]))
    assert np.isfinite(d).all()
    want_0 = single.distances([0])[0, pa] + length + single.distances([pb - n])[0]
    np.testing.assert_allclose(d[0, n:], want_0, atol=1e-9)
    np.testing.assert_allclose(d[0, :n], single.distances([0])[0], atol=1e-12)
    want_1 = single.distances([7])[0, pb - n] + length + single.distances([pa])[0]
    np.testing.assert_allclose(d[1, :n], want_1, atol=1e-9)


def test_three_components_path_through_the_middle():
    v, f = _sphere(1)
    n = len(v)
    vv = np.vstack([v, v + [3.0, 0, 0], v + [6.0, 0, 0]])
    ff = np.vstack([f, f + n, f + 2 * n])
    solver = GeodesicSolver(vv, ff, engine="exact")
    assert solver.n_components == 3 and len(solver.bridges) == 2
    one = GeodesicSolver(v, f, engine="exact")
    # bridges: 0-1 and 1-2 (the 0-2 gap is longer)
    ends = {tuple(sorted((p // n, q // n))): (p, q, w) for p, q, w in solver.bridges}
    assert set(ends) == {(0, 1), (1, 2)}
    p01, q01, w01 = ends[(0, 1)]
    p12, q12, w12 = ends[(1, 2)]
    a01, b01 = sorted((p01, q01))       # a01 on sphere 0, b01 on sphere 1
    a12, b12 = sorted((p12, q12))       # a12 on sphere 1, b12 on sphere 2
    src = 3
    want = (one.distances([src])[0, a01] + w01
            + one.distances([b01 - n])[0, a12 - n] + w12
            + one.distances([b12 - 2 * n])[0])
    np.testing.assert_allclose(solver.distances([src])[0, 2 * n:], want, atol=1e-9)


def test_isolated_vertex_hangs_off_nearest(sphere3):
    v, f = sphere3
    vv = np.vstack([v, [[0, 0, 1.5]]])
    solver = GeodesicSolver(vv, f, engine="exact")
    iso = len(v)
    w = int(np.argmin(np.linalg.norm(v - [0, 0, 1.5], axis=1)))
    base = GeodesicSolver(v, f, engine="exact").distances([w])[0]
    offset = np.linalg.norm(v[w] - vv[iso])
    d = solver.distances([iso])[0]
    assert d[iso] == 0
    np.testing.assert_allclose(d[:iso], base + offset, atol=1e-12)
    np.testing.assert_allclose(solver.distances([5])[0, iso],
                               solver.distances([5])[0, w] + offset, atol=1e-12)


def test_zero_area_faces_do_not_produce_nan(sphere3):
    v, f = sphere3
    # a sliver of zero area on an existing edge midpoint, a face with a repeated index
    mid = 0.5 * (v[f[0, 0]] + v[f[0, 1]])
    vv = np.vstack([v, mid])
    ff = np.vstack([f, [[f[0, 0], f[0, 1], len(v)]], [[1, 1, 2]]])
    for engine in ("heat", "exact"):
        d = GeodesicSolver(vv, ff, engine=engine).distances([0, 10])
        assert np.isfinite(d).all()
        clean = GeodesicSolver(v, f, engine=engine).distances([0, 10])
        np.testing.assert_allclose(d[:, : len(v)], clean, atol=1e-12)


def test_bad_input():
    v, f = _sphere(0)
    with pytest.raises(ValueError, match="engine"):
        GeodesicSolver(v, f, engine="fast")
    with pytest.raises(ValueError, match="sources"):
        GeodesicSolver(v, f).distances(np.array([0, 99]))
    with pytest.raises(ValueError, match="same length"):
        GeodesicSolver(v, f).pairwise(np.array([0, 1]), np.array([2]))
    with pytest.raises(ValueError, match="non-degenerate"):
        GeodesicSolver(np.zeros((3, 3)), np.array([[0, 1, 2]]))
    assert GeodesicSolver(v, f).distances(np.zeros(0, dtype=int)).shape == (0, len(v))


def _bumpy(level: int, seed: int = 0):
    """Icosphere with radial noise: irregular triangles, some obtuse angles."""
    v, f = _sphere(level)
    rng = np.random.default_rng(seed)
    return v * rng.uniform(0.85, 1.15, size=(len(v), 1)), f


def _dense_heat_reference(v: np.ndarray, f: np.ndarray, source: int) -> np.ndarray:
    """Crane et al.'s heat method written out with loops and dense solves (slow, obvious)."""
    n = len(v)
    lap = np.zeros((n, n))                  # Delta (negative semi-definite)
    mass = np.zeros(n)
    edge_lengths = {}
    cot = np.zeros((len(f), 3))
    for fi, tri in enumerate(f):
        for k in range(3):
            i, j, o = tri[k], tri[(k + 1) % 3], tri[(k + 2) % 3]
            a, b = v[i] - v[o], v[j] - v[o]
            cot[fi, (k + 2) % 3] = a @ b / np.linalg.norm(np.cross(a, b))
            lap[i, j] += 0.5 * cot[fi, (k + 2) % 3]
            lap[j, i] += 0.5 * cot[fi, (k + 2) % 3]
            edge_lengths[tuple(sorted((i, j)))] = np.linalg.norm(v[i] - v[j])
        area = 0.5 * np.linalg.norm(np.cross(v[tri[1]] - v[tri[0]], v[tri[2]] - v[tri[0]]))
        mass[tri] += area / 3
    lap -= np.diag(lap.sum(axis=1))
    t = np.mean(list(edge_lengths.values())) ** 2
    delta = np.zeros(n)
    delta[source] = 1.0
    u = np.linalg.solve(np.diag(mass) - t * lap, delta)
    div = np.zeros(n)
    for fi, tri in enumerate(f):
        p = v[tri]
        normal = np.cross(p[1] - p[0], p[2] - p[0])
        area2 = np.linalg.norm(normal)
        normal /= area2
        grad = sum(u[tri[k]] * np.cross(normal, p[(k + 2) % 3] - p[(k + 1) % 3])
                   for k in range(3)) / area2
        x = -grad / np.linalg.norm(grad)
        for k in range(3):
            i = tri[k]
            e1 = p[(k + 1) % 3] - p[k]      # edges leaving vertex i, each paired with the
            e2 = p[(k + 2) % 3] - p[k]      # cotangent of the angle opposite it
            div[i] += 0.5 * (cot[fi, (k + 2) % 3] * (e1 @ x) + cot[fi, (k + 1) % 3] * (e2 @ x))
    phi = np.linalg.lstsq(lap, div, rcond=None)[0]
    return phi - phi[source]


def test_heat_matches_dense_reference():
    v, f = _bumpy(1)                        # 42 vertices, irregular
    solver = GeodesicSolver(v, f, heat=HeatSettings(intrinsic_delaunay=False))
    for source in (0, 17, 41):
        np.testing.assert_allclose(solver.distances([source])[0],
                                   _dense_heat_reference(v, f, source), atol=1e-9)


@pytest.mark.parametrize("intrinsic", [True, False])
def test_heat_matches_potpourri3d(intrinsic):
    pp3d = pytest.importorskip("potpourri3d")
    v, f = _bumpy(3, seed=1)
    ours = GeodesicSolver(v, f, heat=HeatSettings(intrinsic_delaunay=intrinsic)).distances(
        np.array([0, 300]))
    # use_robust=True is geometry-central's intrinsic Delaunay (mollified) triangulation
    ref = pp3d.MeshHeatMethodDistanceSolver(v, f, use_robust=intrinsic)
    theirs = np.stack([ref.compute_distance(0), ref.compute_distance(300)])
    # geometry-central regularises its Poisson solve with 1e-6 * I; we pin a vertex
    assert np.abs(ours - theirs).max() < 1e-3 * theirs.max()


def test_intrinsic_delaunay_changes_nothing_on_a_delaunay_mesh(sphere3):
    v, f = sphere3                              # an icosphere is Delaunay: no flip
    plain = GeodesicSolver(v, f, heat=HeatSettings(intrinsic_delaunay=False))
    np.testing.assert_allclose(GeodesicSolver(v, f).distances([0, 400]),
                               plain.distances([0, 400]), atol=1e-10)


def _irregular_ellipsoid(n: int = 2500, seed: int = 1):
    """Convex hull of uniformly random points on the unit sphere (triangles of very
    uneven size), stretched to an ellipsoid with semi-axes 1.8, 1, 0.7: the stretch makes
    many triangles obtuse (non-Delaunay), like an unevenly scanned surface."""
    p = np.random.default_rng(seed).normal(size=(n, 3))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    return p * [1.8, 1.0, 0.7], ConvexHull(p).simplices


def _median_relative_error(d: np.ndarray, exact: np.ndarray) -> float:
    # vertices within 5 % of the largest exact distance of the source are left out:
    # near the source both distances are tiny and the ratio is noise
    far = exact > 0.05 * exact.max(axis=1, keepdims=True)
    return float(np.median(np.abs(d - exact)[far] / exact[far]))


def test_heat_on_irregular_mesh_within_3_percent_of_exact():
    v, f = _irregular_ellipsoid()
    sources = np.random.default_rng(0).choice(len(v), 5, replace=False)
    exact = GeodesicSolver(v, f, engine="exact").distances(sources)
    err = _median_relative_error(GeodesicSolver(v, f).distances(sources), exact)
    assert err <= 0.03                              # 1.5 % measured
    # the heat method on the mesh's own triangles (geocorr's engine before the
    # intrinsic Delaunay triangulation) is 4x worse here: 6.0 % measured
    plain = GeodesicSolver(v, f, heat=HeatSettings(intrinsic_delaunay=False))
    assert _median_relative_error(plain.distances(sources), exact) > 0.05


def test_heat_on_stretched_planar_mesh_matches_euclidean_distance():
    # a flat convex domain: the exact geodesic is the straight segment. Delaunay
    # triangles of random points in the unit square (29 points per side on the
    # boundary), stretched 4x along x: obtuse, with a boundary that is never flipped
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 30)[:-1]
    border = np.concatenate([np.stack([t, 0 * t], 1), np.stack([1 + 0 * t, t], 1),
                             np.stack([1 - t, 1 + 0 * t], 1), np.stack([0 * t, 1 - t], 1)])
    p = np.vstack([border, rng.uniform(0, 1, (2000, 2))])
    f = Delaunay(p).simplices
    v = np.column_stack([4.0 * p[:, 0], p[:, 1], np.zeros(len(p))])
    sources = rng.choice(len(v), 5, replace=False)
    straight = np.linalg.norm(v[sources][:, None] - v[None], axis=2)
    assert _median_relative_error(GeodesicSolver(v, f).distances(sources), straight) < 0.03
    plain = GeodesicSolver(v, f, heat=HeatSettings(intrinsic_delaunay=False))
    assert _median_relative_error(plain.distances(sources), straight) > 0.3   # 62 % before


def test_bridge_rule_holds_for_the_heat_engine_on_irregular_components():
    v, f = _irregular_ellipsoid(400, seed=2)
    n = len(v)
    v2 = np.vstack([v, v + [4.5, 0.2, 0.0]])
    f2 = np.vstack([f, f + n])
    solver = GeodesicSolver(v2, f2)
    single = GeodesicSolver(v, f)
    ((pa, pb, length),) = solver.bridges
    pa, pb = (pa, pb) if pa < n else (pb, pa)
    d = solver.distances(np.array([3]))[0]
    np.testing.assert_allclose(d[:n], single.distances([3])[0], atol=1e-12)
    want = single.distances([3])[0, pa] + length + single.distances([pb - n])[0]
    np.testing.assert_allclose(d[n:], want, atol=1e-12)


def test_heat_settings_are_checked():
    with pytest.raises(ValueError, match="time_scale"):
        HeatSettings(time_scale=0.0)
    with pytest.raises(ValueError, match="HeatSettings"):
        GeodesicSolver(*_sphere(0), heat={"intrinsic_delaunay": False})
    # a larger time step smooths more: distances change, the source stays at 0
    v, f = _sphere(2)
    d1 = GeodesicSolver(v, f).distances([0])
    d2 = GeodesicSolver(v, f, heat=HeatSettings(time_scale=4.0)).distances([0])
    assert d2[0, 0] == 0 and np.abs(d1 - d2).max() > 1e-3


def test_block_boundaries_do_not_change_rows(sphere3):
    v, f = sphere3
    solver = GeodesicSolver(v, f)
    many = solver.distances(np.arange(300))          # 300 > BLOCK sources
    np.testing.assert_allclose(many[[0, 255, 256, 299]],
                               solver.distances(np.array([0, 255, 256, 299])), atol=1e-12)


def test_face_winding_does_not_matter(sphere3):
    v, f = sphere3
    flipped = f.copy()
    flipped[::2] = flipped[::2, ::-1]
    np.testing.assert_allclose(GeodesicSolver(v, flipped).distances([3, 400]),
                               GeodesicSolver(v, f).distances([3, 400]), atol=1e-10)


def test_unwelded_seams_are_welded(sphere3):
    v, f = sphere3
    # split the sphere into two unwelded halves along z = 0 (like a UV seam)
    upper = v[f].mean(axis=1)[:, 2] > 0
    dup = v.copy()
    f2 = f.copy()
    f2[~upper] += len(v)                       # lower faces use a duplicate vertex set
    vv = np.vstack([v, dup])
    solver = GeodesicSolver(vv, f2)
    assert solver.n_components == 1
    ref = GeodesicSolver(v, f).distances([0, 400])
    d = solver.distances([0, 400, 400 + len(v)])
    np.testing.assert_allclose(d[:2, : len(v)], ref, atol=1e-10)
    np.testing.assert_allclose(d[:2, len(v):], ref, atol=1e-10)
    np.testing.assert_allclose(d[2], d[1], atol=1e-10)


def _scattered_tetrahedra(n: int, seed: int):
    rng = np.random.default_rng(seed)
    base = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]]) * 0.05
    tet = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    centres = rng.uniform(-1, 1, size=(n, 3))
    v = (base[None] + centres[:, None]).reshape(-1, 3)
    f = (tet[None] + 4 * np.arange(n)[:, None, None]).reshape(-1, 3)
    return v, f


def test_boruvka_tree_equals_dense_tree(monkeypatch):
    import geocorr.geometry.geodesic as geo

    v, f = _scattered_tetrahedra(90, seed=3)
    dense = GeodesicSolver(v, f, engine="exact")
    monkeypatch.setattr(geo, "DENSE_TREE_MAX", 4)
    fast = GeodesicSolver(v, f, engine="exact")
    assert dense.n_components == fast.n_components == 90
    assert len(fast.bridges) == 89
    key = sorted((min(p, q), max(p, q), round(w, 12)) for p, q, w in dense.bridges)
    assert sorted((min(p, q), max(p, q), round(w, 12)) for p, q, w in fast.bridges) == key
    np.testing.assert_allclose(fast.distances([0, 50]), dense.distances([0, 50]), atol=1e-12)
    assert np.isfinite(fast.all_pairs()).all()


def test_duplicate_faces_are_ignored(sphere3):
    v, f = sphere3
    doubled = np.vstack([f, f[:50, ::-1]])
    np.testing.assert_allclose(GeodesicSolver(v, doubled).distances([7]),
                               GeodesicSolver(v, f).distances([7]), atol=1e-12)


def test_all_pairs_refuses_huge_meshes(monkeypatch, sphere3):
    import geocorr.geometry.geodesic as geo

    monkeypatch.setattr(geo, "ALL_PAIRS_MAX_VERTICES", 100)
    with pytest.raises(ValueError, match="decimate"):
        GeodesicSolver(*sphere3).all_pairs()

"""The fragment rule of GeodesicSolver: distances on a mesh cut into many pieces.

Analytic answers: on a flat sheet the geodesic is the straight line, whatever
pieces the sheet is cut into.
"""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from geocorr.data.synth.fragment import fragment_mesh
from geocorr.geometry.fragments import FragmentSettings, bridge_radius, is_fragmented, mesh_edges
from geocorr.geometry.geodesic import GeodesicSolver

TREE_ONLY = FragmentSettings(max_main_share=0.0)


def _sheet(n: int = 41):
    """Unit square in the z = 0 plane, ``n x n`` vertices, right triangles."""
    x, y = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n))
    v = np.stack([x.ravel(), y.ravel(), np.zeros(n * n)], axis=1)
    i = np.arange(n - 1)[:, None] * n + np.arange(n - 1)[None, :]
    i = i.ravel()
    f = np.concatenate([np.stack([i, i + 1, i + n + 1], 1), np.stack([i, i + n + 1, i + n], 1)])
    return v, f


def _pairs(v, rng, count, lo=0.2):
    a = rng.integers(0, len(v), 4 * count)
    b = rng.integers(0, len(v), 4 * count)
    far = np.linalg.norm(v[a] - v[b], axis=1) > lo
    return a[far][:count], b[far][:count]


@pytest.fixture(scope="module")
def cut_sheet():
    v, f = _sheet()
    # in-plane offsets only would hide the cracks from a 3D chord; gap 0.3 in 3D
    return v, f, fragment_mesh(v, f, pieces=300, gap=0.3, seed=0)


def test_cut_sheet_is_fragmented_and_graph_follows_the_plane(cut_sheet):
    v, f, cut = cut_sheet
    solver = GeodesicSolver(cut.vertices, cut.faces)
    assert solver.n_components == cut.n_pieces == 300
    assert solver.fragmented
    a, b = _pairs(cut.vertices, np.random.default_rng(0), 300)
    straight = np.linalg.norm(v[cut.origin[a]] - v[cut.origin[b]], axis=1)
    ratio = solver.pairwise(a, b) / straight
    # chords of up to 2 edges follow a line within a few per cent; the cracks add
    # at most ~2 x 0.3 edge lengths per crossing (1/40 side each)
    assert 0.97 < np.median(ratio) < 1.06
    assert ratio.min() > 0.93 and ratio.max() < 1.2


def test_spanning_tree_alone_wanders_on_the_cut_sheet(cut_sheet):
    """What the fragment rule fixes: one bridge per piece, paths around the sheet."""
    v, f, cut = cut_sheet
    tree = GeodesicSolver(cut.vertices, cut.faces, fragments=TREE_ONLY)
    assert not tree.fragmented
    a, b = _pairs(cut.vertices, np.random.default_rng(0), 60)
    straight = np.linalg.norm(v[cut.origin[a]] - v[cut.origin[b]], axis=1)
    assert np.median(tree.pairwise(a, b) / straight) > 1.5


def test_one_piece_is_unchanged():
    s = trimesh.creation.icosphere(3)
    v, f = np.asarray(s.vertices), np.asarray(s.faces)
    default = GeodesicSolver(v, f)
    assert not default.fragmented and default.bridge_radius == 0.0
    np.testing.assert_array_equal(default.distances([0, 5]),
                                  GeodesicSolver(v, f, fragments=TREE_ONLY).distances([0, 5]))


def test_gap_zero_welds_back_to_the_original():
    s = trimesh.creation.icosphere(2)
    v, f = np.asarray(s.vertices), np.asarray(s.faces)
    cut = fragment_mesh(v, f, pieces=40, gap=0.0, seed=3)
    solver = GeodesicSolver(cut.vertices, cut.faces)
    assert solver.n_components == 1 and not solver.fragmented
    ref = GeodesicSolver(v, f).all_pairs()
    got = solver.all_pairs()
    np.testing.assert_allclose(got, ref[np.ix_(cut.origin, cut.origin)], atol=1e-5)


def test_debris_and_few_pieces_keep_the_tree_rule():
    s = trimesh.creation.icosphere(2)
    v, f = np.asarray(s.vertices), np.asarray(s.faces)
    tet = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    small = 0.02 * np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]])
    # one body + 10 tiny tetrahedra: largest share > 0.9
    vv = np.vstack([v] + [small + [2 + 0.1 * k, 0, 0] for k in range(10)])
    ff = np.vstack([f] + [tet + len(v) + 4 * k for k in range(10)])
    debris = GeodesicSolver(vv, ff)
    assert debris.n_components == 11 and not debris.fragmented
    # four equal spheres: below min_components
    four = GeodesicSolver(np.vstack([v + [3.0 * k, 0, 0] for k in range(4)]),
                          np.vstack([f + len(v) * k for k in range(4)]))
    assert four.n_components == 4 and not four.fragmented
    assert is_fragmented(np.ones(8), FragmentSettings())
    assert not is_fragmented(np.ones(7), FragmentSettings())


def test_bridge_radius_follows_sampling_and_is_capped():
    v, f = _sheet(41)                       # edges 1/40 and diagonals sqrt(2)/40
    e = mesh_edges(f)
    assert bridge_radius(v, e, FragmentSettings(radius=2.0)) == pytest.approx(2 / 40)
    capped = FragmentSettings(radius=2.0, max_radius=0.01)
    assert bridge_radius(v, e, capped) == pytest.approx(0.01 * np.sqrt(2))


def test_contracted_distances_follow_the_plane(cut_sheet):
    from geocorr.features.geometric import cluster_vertices

    v, f, cut = cut_sheet
    solver = GeodesicSolver(cut.vertices, cut.faces)
    cv, cf, node = cluster_vertices(cut.vertices, cut.faces, 400)
    d = solver.contracted_all_pairs(node, cv)
    assert d.shape == (len(cv), len(cv)) and np.isfinite(d).all()
    np.testing.assert_array_equal(d, d.T)
    straight = np.linalg.norm(cv[:, None] - cv[None], axis=2)
    far = straight > 0.2
    ratio = d[far] / straight[far]
    assert 0.97 < np.median(ratio) < 1.08 and ratio.max() < 1.25
    with pytest.raises(ValueError, match="labels"):
        solver.contracted_all_pairs(node[:-1], cv)
    with pytest.raises(ValueError, match="does not apply"):
        GeodesicSolver(v, f).contracted_all_pairs(np.arange(len(v)), v)


def test_isolated_vertices_and_exact_engine_on_a_fragmented_mesh(cut_sheet):
    v, f, cut = cut_sheet
    vv = np.vstack([cut.vertices, [[0.5, 0.5, 0.3]]])
    solver = GeodesicSolver(vv, cut.faces, engine="exact")    # graph: pygeodesic never runs
    assert solver.fragmented
    d = solver.distances([len(cut.vertices)])[0]
    assert np.isfinite(d).all() and d[-1] == 0.0
    w = int(np.argmin(np.linalg.norm(cut.vertices - [0.5, 0.5, 0.3], axis=1)))
    assert d[w] == pytest.approx(np.linalg.norm(cut.vertices[w] - [0.5, 0.5, 0.3]))


def test_settings_are_checked():
    with pytest.raises(ValueError, match="max_main_share"):
        FragmentSettings(max_main_share=1.5)
    with pytest.raises(ValueError, match="radius"):
        FragmentSettings(radius=0.0)
    with pytest.raises(ValueError, match="min_components"):
        FragmentSettings(min_components=1)
    v, f = _sheet(5)
    with pytest.raises(ValueError, match="fragments"):
        GeodesicSolver(v, f, fragments={"radius": 2})


def test_fragment_mesh_pieces_and_origin():
    v, f = _sheet(21)
    cut = fragment_mesh(v, f, pieces=50, gap=0.5, seed=1)
    assert cut.n_pieces == 50 and len(np.unique(cut.piece)) == 50
    np.testing.assert_array_equal(cut.faces.shape, f.shape)
    # each face keeps its corners (moved by its piece's offset, 0.5 edge lengths)
    moved = np.linalg.norm(cut.vertices - v[cut.origin], axis=1)
    np.testing.assert_allclose(moved, 0.5 / 20, rtol=1e-9)
    np.testing.assert_array_equal(cut.origin[cut.faces], f)
    again = fragment_mesh(v, f, pieces=50, gap=0.5, seed=1)
    np.testing.assert_array_equal(again.vertices, cut.vertices)
    with pytest.raises(ValueError, match="pieces"):
        fragment_mesh(v, f, pieces=0)
    with pytest.raises(ValueError, match="gap"):
        fragment_mesh(v, f, pieces=10, gap=-1.0)

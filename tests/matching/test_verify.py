"""Geodesic bicyclic verification on an icosphere (analytic great-circle answers)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from geocorr.geometry.camera import Camera, look_at
from geocorr.geometry.geodesic import GeodesicSolver
from geocorr.matching.verify import (
    VerifySettings,
    build_mesh_index,
    descriptor_nn,
    lift_pixels,
    verify_geodesic,
)

DESCRIPTOR = VerifySettings(cross_map="descriptor")


def _sphere():
    m = trimesh.creation.icosphere(subdivisions=3)
    return np.asarray(m.vertices), np.asarray(m.faces)


def _camera(eye=(4.0, 0.0, 0.0), size=64):
    R, t = look_at(np.array(eye), np.zeros(3))
    f = 1.5 * size
    K = np.array([[f, 0, (size - 1) / 2], [0, f, (size - 1) / 2], [0, 0, 1.0]])
    return Camera(K, R, t, size, size)


@pytest.fixture(scope="module")
def sphere_index():
    v, f = _sphere()
    return build_mesh_index(v, f, v)  # descriptor = position: NN across copies = same vertex


def _pixels(rng, n):
    return rng.uniform(22, 42, size=(n, 2))


def test_identical_matches_have_zero_error(sphere_index):
    cam = _camera()
    uv = _pixels(np.random.default_rng(0), 200)
    res = verify_geodesic(sphere_index, sphere_index, cam, cam, uv, uv, DESCRIPTOR)
    assert res.hit.all() and res.n_missed == 0
    np.testing.assert_array_equal(res.v_hat_t, res.v_s)
    np.testing.assert_allclose(res.errors, 0.0, atol=1e-6)
    assert res.kept.all()


def test_error_is_great_circle_over_diagonal(sphere_index):
    cam = _camera()
    rng = np.random.default_rng(1)
    uv_s, uv_t = _pixels(rng, 300), _pixels(rng, 300)
    res = verify_geodesic(sphere_index, sphere_index, cam, cam, uv_s, uv_t,
                          VerifySettings(delta=0.1, cross_map="descriptor"))
    v = sphere_index.vertices
    vs, vt = res.v_s, res.v_t
    cos = np.sum(v[vs] * v[vt], axis=1) / (np.linalg.norm(v[vs], axis=1)
                                           * np.linalg.norm(v[vt], axis=1))
    expected = np.arccos(np.clip(cos, -1, 1)) / (2 * np.sqrt(3))
    # heat method: ~1% of the diameter; icosphere radius ~1 with chords
    np.testing.assert_allclose(res.errors, expected, atol=0.01 * np.pi / (2 * np.sqrt(3)) + 2e-3)
    np.testing.assert_array_equal(res.kept, res.errors < 0.1)
    assert 0 < res.kept.sum() < len(res.kept)


def test_misses_are_dropped_and_counted(sphere_index):
    cam = _camera()
    uv = np.array([[32.0, 32.0], [0.0, 0.0], [32.0, 31.0], [63.0, 0.0]])
    trg = np.array([[32.0, 32.0], [32.0, 32.0], [0.0, 63.0], [32.0, 32.0]])
    res = verify_geodesic(sphere_index, sphere_index, cam, cam, uv, trg)
    np.testing.assert_array_equal(res.hit, [True, False, False, False])
    assert res.n_missed == 3
    assert np.isnan(res.errors[1:]).all() and not res.kept[1:].any()
    assert res.v_s[1] == -1 and res.v_t[2] == -1


def _reference(src, trg, cam_s, cam_t, uv_s, uv_t, delta):
    """Slow obvious version: one candidate at a time, a fresh pairwise solve each."""
    gs = GeodesicSolver(src.vertices, src.faces)
    gt = GeodesicSolver(trg.vertices, trg.faces)
    out = []
    for p, q in zip(uv_s, uv_t, strict=True):
        _, a = lift_pixels(src, cam_s, p[None])
        _, b = lift_pixels(trg, cam_t, q[None])
        if a[0] < 0 or b[0] < 0:
            out.append(np.nan)
            continue
        ht = int(np.argmax(trg.descriptors @ src.descriptors[a[0]]))
        hs = int(np.argmax(src.descriptors @ trg.descriptors[b[0]]))
        e = 0.5 * (gt.pairwise(np.array([ht]), b)[0] / trg.diagonal
                   + gs.pairwise(np.array([hs]), a)[0] / src.diagonal)
        out.append(e)
    return np.array(out)


def test_matches_slow_reference_with_random_descriptors():
    v, f = _sphere()
    rng = np.random.default_rng(3)
    v2 = v * np.array([1.5, 1.0, 0.8])          # a different target mesh
    src = build_mesh_index(v, f, rng.normal(size=(len(v), 8)))
    trg = build_mesh_index(v2, f, rng.normal(size=(len(v), 8)))
    cam_s, cam_t = _camera(), _camera((0.0, 5.0, 1.0))
    uv_s, uv_t = rng.uniform(10, 54, (40, 2)), rng.uniform(10, 54, (40, 2))
    res = verify_geodesic(src, trg, cam_s, cam_t, uv_s, uv_t, DESCRIPTOR)
    ref = _reference(src, trg, cam_s, cam_t, uv_s, uv_t, 0.05)
    np.testing.assert_array_equal(np.isnan(res.errors), np.isnan(ref))
    np.testing.assert_allclose(res.errors, ref, rtol=1e-5, atol=1e-6)


def test_clustered_geodesics_close_to_full():
    v, f = _sphere()
    full = build_mesh_index(v, f, v)
    coarse = build_mesh_index(v, f, v, VerifySettings(max_geodesic_vertices=200))
    assert coarse.geodesic.shape[0] <= 200 and len(coarse.node) == len(v)
    rng = np.random.default_rng(4)
    a, b = rng.integers(0, len(v), 500), rng.integers(0, len(v), 500)
    d_full, d_coarse = full.geodesic_pairs(a, b), coarse.geodesic_pairs(a, b)
    cell = 2 * np.sqrt(3) / np.sqrt(200)          # clustering grid cell (diag / sqrt(max))
    assert np.abs(d_full - d_coarse).max() < 2 * cell  # each end moves by < one cell
    assert np.abs(d_full - d_coarse).mean() < 0.1


def test_descriptor_nn_blocks_agree():
    rng = np.random.default_rng(5)
    q = rng.normal(size=(50, 4)).astype(np.float32)
    db = rng.normal(size=(30, 4)).astype(np.float32)
    np.testing.assert_array_equal(descriptor_nn(q, db, block=7), np.argmax(q @ db.T, axis=1))


def test_bad_inputs():
    v, f = _sphere()
    with pytest.raises(ValueError, match="descriptors"):
        build_mesh_index(v, f, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="delta"):
        VerifySettings(delta=0)
    idx = build_mesh_index(v, f, v)
    with pytest.raises(ValueError, match="differ"):
        verify_geodesic(idx, idx, _camera(), _camera(), np.zeros((3, 2)), np.zeros((2, 2)))


def _precision_recall(kept, correct):
    return (kept & correct).sum() / max(kept.sum(), 1), (kept & correct).sum() / correct.sum()


def test_fragmented_copy_keeps_recall_at_equal_precision():
    """The same sphere cut into 300 pieces: on the same lifted vertices, the filter's
    recall stays within 2x of the uncut sphere's at equal precision (the spanning
    tree alone loses it). The lifts are the uncut run's, read on the first copy of
    each vertex, so the geodesic distance is the only difference."""
    from geocorr.data.synth.fragment import fragment_mesh
    from geocorr.geometry.geodesic import FragmentSettings

    v, f = _sphere()
    cut = fragment_mesh(v, f, pieces=300, gap=0.3, seed=0)
    first = np.full(len(v), -1)
    first[cut.origin[::-1]] = np.arange(len(cut.origin))[::-1]
    cam = _camera(size=128)
    rng = np.random.default_rng(7)
    uv_s = rng.uniform(34, 94, size=(400, 2))
    uv_t = uv_s + rng.uniform(-20, 20, size=(400, 2))
    s = VerifySettings(delta=0.05, cross_map="descriptor")
    uncut = build_mesh_index(v, f, v)   # descriptor = position: v_hat = the other lift
    ref = verify_geodesic(uncut, uncut, cam, cam, uv_s, uv_t, s)
    a, b = ref.v_s[ref.hit], ref.v_t[ref.hit]
    # truth: great circle between the lifted vertices, in bbox diagonals
    cos = np.sum(v[a] * v[b], 1) / (np.linalg.norm(v[a], axis=1) * np.linalg.norm(v[b], axis=1))
    correct = np.arccos(np.clip(cos, -1, 1)) / uncut.diagonal < s.delta
    assert 80 < correct.sum() < 320                         # both kinds of candidates
    p_ref, r_ref = _precision_recall(ref.kept[ref.hit], correct)
    assert p_ref > 0.95 and r_ref > 0.9

    def recall_at_precision(index):
        e = index.geodesic_pairs(first[a], first[b]) / index.diagonal
        best = 0.0
        for delta in np.linspace(0.01, 0.1, 37):
            prec, rec = _precision_recall(e < delta, correct)
            if (e < delta).any() and prec >= p_ref - 1e-9:
                best = max(best, rec)
        return best

    desc = v[cut.origin]              # the uncut sphere's descriptors, carried over
    fixed = build_mesh_index(cut.vertices, cut.faces, desc, s)
    tree = build_mesh_index(cut.vertices, cut.faces, desc,
                            VerifySettings(delta=0.05, cross_map="descriptor",
                                           fragments=FragmentSettings(max_main_share=0.0)))
    assert recall_at_precision(fixed) >= 0.5 * r_ref
    assert recall_at_precision(tree) < 0.5 * r_ref         # what the fragment rule fixes


def test_fragmented_copy_through_vertex_clustering():
    """Above max_geodesic_vertices the contracted fragment graph keeps the
    clustered distances close to the uncut ones (clustering alone cuts holes)."""
    from geocorr.data.synth.fragment import fragment_mesh

    s_ = trimesh.creation.icosphere(subdivisions=4)
    v, f = np.asarray(s_.vertices), np.asarray(s_.faces)
    cut = fragment_mesh(v, f, pieces=400, gap=0.3, seed=1)
    settings = VerifySettings(max_geodesic_vertices=800)
    index = build_mesh_index(cut.vertices, cut.faces, v[cut.origin], settings)
    assert index.geodesic.shape[0] <= 800 and np.isfinite(index.geodesic).all()
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, len(cut.vertices), 400), rng.integers(0, len(cut.vertices), 400)
    p, q = v[cut.origin[a]], v[cut.origin[b]]
    great = np.arccos(np.clip(np.sum(p * q, 1) / (np.linalg.norm(p, axis=1)
                                                  * np.linalg.norm(q, axis=1)), -1, 1))
    far = great > 0.5
    ratio = index.geodesic_pairs(a, b)[far] / great[far]
    assert 0.95 < np.median(ratio) < 1.1 and np.percentile(ratio, 95) < 1.25

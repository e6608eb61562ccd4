"""match_pair on hand-made grids: known NN chains, tolerance in pixels, stride, restriction."""

import numpy as np
import pytest

from geocorr.features.base import FeatureMap
from geocorr.geometry.image_transform import resize_and_pad
from geocorr.matching.candidates import candidate_cells, grid_foreground
from geocorr.matching.pair import MatchSettings, match_pair

# A 40x40 image on a 40-px canvas, 4x4 grid: cells are 10 px, centres at 4.5, 14.5, 24.5, 34.5.
TR = resize_and_pad(40, 40, 40)


def _fm(feat, name="x"):
    return FeatureMap(np.asarray(feat, np.float32), TR, name)


def _onehot_grid():
    f = np.zeros((16, 4, 4), np.float32)
    for k in range(16):
        f[k, k // 4, k % 4] = 1.0
    return f


def test_permuted_target_gives_exact_mutual_matches():
    src = _onehot_grid()
    trg = src[:, ::-1, :]  # target = source flipped upside down
    m = match_pair(_fm(src), _fm(trg.copy()), settings=MatchSettings(tau=0.0))
    assert len(m) == 16 and m.kept["cyclic"].all() and m.kept["mutual"].all()
    np.testing.assert_allclose(m.trg_uv[:, 0], m.src_uv[:, 0])
    np.testing.assert_allclose(m.trg_uv[:, 1], 39.0 - m.src_uv[:, 1])
    np.testing.assert_allclose(m.similarity, 1.0, rtol=1e-6)
    assert m.provenance["settings"]["tau"] == 0.0


def test_one_cell_cycle_is_kept_only_with_enough_tolerance():
    # Source cells (0,0) = A and (0,1) = B; A's best target is T, whose best source is B.
    src = np.zeros((3, 4, 4), np.float32)
    trg = np.zeros((3, 4, 4), np.float32)
    src[:, 0, 0] = [1.0, 0.3, 0]      # A
    src[:, 0, 1] = [1.0, 0.1, 0]      # B (closer to T)
    trg[:, 2, 2] = [1.0, 0.0, 0]      # T
    src_mask = np.zeros((40, 40), bool)
    src_mask[0:10, 0:20] = True       # cells (0,0) and (0,1); box 20 x 10 px (pixel centres 0..19)
    trg_mask = np.zeros((40, 40), bool)
    trg_mask[20:30, 20:30] = True     # cell (2,2) only
    box = [0, 0, 20, 10]              # explicit box: tolerance = tau * (20, 10)
    loose = match_pair(_fm(src), _fm(trg), src_mask, trg_mask, MatchSettings(tau=0.5),
                       source_bbox=box)
    assert len(loose) == 2
    a = np.flatnonzero(loose.src_cell == 0)[0]
    np.testing.assert_allclose(loose.trg_uv[a], [24.5, 24.5])
    np.testing.assert_allclose(loose.back_uv[a], [14.5, 4.5])
    np.testing.assert_allclose(loose.cycle_error[a], [10.0, 0.0])
    assert loose.kept["cyclic"][a] and not loose.kept["mutual"][a]   # 10 <= 0.5 * 20
    tight = match_pair(_fm(src), _fm(trg), src_mask, trg_mask, MatchSettings(tau=0.49),
                       source_bbox=box)
    assert not tight.kept["cyclic"][a]                                # 10 > 9.8
    b = np.flatnonzero(tight.src_cell == 1)[0]
    assert tight.kept["cyclic"][b] and tight.kept["mutual"][b]
    np.testing.assert_allclose(tight.tolerance, [9.8, 4.9])


def test_target_restriction_to_mask():
    src = _onehot_grid()
    trg = _onehot_grid()
    trg_mask = np.zeros((40, 40), bool)
    trg_mask[:, :20] = True  # left half
    m = match_pair(_fm(src), _fm(trg), None, trg_mask, MatchSettings())
    assert np.all(m.trg_uv[:, 0] < 20)
    free = match_pair(_fm(src), _fm(trg), None, trg_mask, MatchSettings(restrict_target=False))
    np.testing.assert_allclose(free.trg_uv, free.src_uv)


def test_stride_path_agrees_with_the_one_pass_path():
    rng = np.random.default_rng(0)
    tr = resize_and_pad(60, 45, 60)
    src = FeatureMap(rng.normal(size=(8, 12, 12)).astype(np.float32), tr)
    trg = FeatureMap(rng.normal(size=(8, 12, 12)).astype(np.float32), tr)
    mask = np.zeros((45, 60), bool)
    mask[5:40, 8:55] = True
    full = match_pair(src, trg, mask, mask, MatchSettings(stride=1, tau=0.1))
    sub = match_pair(src, trg, mask, mask, MatchSettings(stride=3, tau=0.1))
    idx = np.searchsorted(full.src_cell, sub.src_cell)
    np.testing.assert_array_equal(full.src_cell[idx], sub.src_cell)
    np.testing.assert_array_equal(full.trg_cell[idx], sub.trg_cell)
    np.testing.assert_allclose(full.back_uv[idx], sub.back_uv)
    np.testing.assert_array_equal(full.kept["cyclic"][idx], sub.kept["cyclic"])
    assert sub.keep_mask("cyclic", "mutual").sum() <= sub.kept["cyclic"].sum()
    assert len(sub.subset(sub.kept["cyclic"])) == sub.kept["cyclic"].sum()


def test_candidate_lattice_and_foreground():
    fg = np.ones((6, 6), bool)
    np.testing.assert_array_equal(candidate_cells(fg, 3), [7, 10, 25, 28])
    assert len(candidate_cells(fg, 1)) == 36
    with pytest.raises(ValueError, match="stride"):
        candidate_cells(fg, 0)
    # Foreground fraction on a 4x4 grid of a 40x40 image (10x10 px cells).
    mask = np.zeros((40, 40), bool)
    mask[0:10, 0:5] = True    # cell (0,0): 50 % -> foreground at 0.5
    mask[10:13, 0:10] = True  # cell (1,0): 30 %
    g = grid_foreground(_fm(np.zeros((1, 4, 4))), mask, 0.5)
    assert g[0, 0] and not g[1, 0] and g.sum() == 1
    # Canvas padding cells are never foreground.
    tr = resize_and_pad(40, 20, 40)
    g2 = grid_foreground(FeatureMap(np.zeros((1, 4, 4), np.float32), tr), None)
    np.testing.assert_array_equal(g2.any(axis=1), [False, True, True, False])
    with pytest.raises(ValueError, match="mask has shape"):
        grid_foreground(_fm(np.zeros((1, 4, 4))), np.zeros((5, 5), bool))


def test_channel_mismatch():
    with pytest.raises(ValueError, match="channels"):
        match_pair(_fm(np.zeros((2, 4, 4))), _fm(np.zeros((3, 4, 4))))

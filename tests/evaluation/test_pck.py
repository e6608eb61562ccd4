from pathlib import Path

import numpy as np
import pytest

from geocorr.data.keypoint_groups import AP10K_GROUPS, SPAIR_GROUPS
from geocorr.data.pairs import KeypointPair
from geocorr.evaluation.geometry_aware import geometry_aware_mask
from geocorr.evaluation.pck import pck, pck_report, score_pair, threshold_size


def make_pair(trg_kps, *, pid="p", cat="car", ids=None, trg_bbox=(0, 0, 100, 50),
              trg_size=(840, 420), trg_visible=None, flags=None):
    trg = np.asarray(trg_kps, dtype=np.float64).reshape(-1, 2)
    n = len(trg)
    return KeypointPair(
        pair_id=pid, category=cat, src_image=Path("s.jpg"), trg_image=Path("t.jpg"),
        src_kps=np.zeros((n, 2)), trg_kps=trg,
        kps_ids=np.arange(n) if ids is None else np.asarray(ids, dtype=np.int64),
        src_bbox=None, trg_bbox=None if trg_bbox is None else np.asarray(trg_bbox, float),
        src_size=(10, 10), trg_size=trg_size, flags=flags or {},
        trg_visible_ids=None if trg_visible is None else np.asarray(trg_visible))


def test_threshold_rules():
    p = make_pair([(10, 10), (40, 30)], trg_bbox=(5, 5, 25, 65), trg_size=(300, 200))
    assert threshold_size(p, "bbox") == 60
    assert threshold_size(p, "image") == 300
    assert threshold_size(p, "keypoints") == 30
    with pytest.raises(ValueError, match="unknown threshold rule"):
        threshold_size(p, "diag")
    with pytest.raises(ValueError, match="trg_bbox"):
        threshold_size(make_pair([(1, 1)], trg_bbox=None), "bbox")
    with pytest.raises(ValueError, match="positive"):
        threshold_size(make_pair([(1, 1)]), "keypoints")


def test_strict_threshold_at_exact_boundary():
    # T = 100 (bbox width); 840x420 at S=840 has scale 1, pad top 210: exact arithmetic.
    p = make_pair([(100, 100), (100, 100)])
    pred = np.array([[110, 100], [109.999, 100]])
    s = score_pair(p, pred, rule="bbox")
    np.testing.assert_allclose(s.errors, [10, 9.999])
    np.testing.assert_array_equal(s.correct(0.1), [False, True])


def test_canvas_scaling_matches_hand_values():
    # 210x105 image -> S/max = 4; errors and T both scale by 4.
    p = make_pair([(50, 50)], trg_bbox=(0, 0, 40, 20), trg_size=(210, 105))
    s = score_pair(p, [(53, 54)], rule="bbox")
    assert s.errors[0] == pytest.approx(20.0)
    assert s.threshold == pytest.approx(160.0)
    s0 = score_pair(p, [(53, 54)], rule="bbox", size=None)
    assert s0.errors[0] == pytest.approx(5.0) and s0.threshold == 40.0


def test_canvas_and_original_pixels_agree_randomly():
    rng = np.random.default_rng(0)
    for _ in range(20):
        w, h = rng.integers(50, 900, size=2)
        gt = rng.uniform(0, [w, h], size=(6, 2))
        p = make_pair(gt, trg_size=(int(w), int(h)), trg_bbox=(0, 0, w / 2, h / 3))
        pred = gt + rng.normal(scale=20, size=gt.shape)
        a, b = score_pair(p, pred, rule="bbox"), score_pair(p, pred, rule="bbox", size=None)
        np.testing.assert_allclose(a.errors / a.threshold, b.errors / b.threshold)


def test_per_image_differs_from_per_keypoint():
    # pair 1: 1 of 4 correct; pair 2: 1 of 1 correct
    p1 = make_pair([(0, 0)] * 4, pid="a")
    p2 = make_pair([(0, 0)], pid="b")
    s1 = score_pair(p1, [(0, 0), (50, 0), (0, 50), (30, 40)], rule="bbox")
    s2 = score_pair(p2, [(3, 4)], rule="bbox")
    r = pck([s1, s2], (0.1,))
    assert r.per_image[0.1] == pytest.approx((0.25 + 1.0) / 2)
    assert r.per_keypoint[0.1] == pytest.approx(2 / 5)
    assert (r.num_pairs, r.num_keypoints) == (2, 5)


def test_bad_predictions_rejected():
    p = make_pair([(0, 0), (1, 1)])
    with pytest.raises(ValueError, match="expected 2 predicted"):
        score_pair(p, [(0, 0)], rule="bbox")
    with pytest.raises(ValueError, match="NaN"):
        score_pair(p, [(0, 0), (np.nan, 1)], rule="bbox")


def test_geometry_aware_rule_by_hand():
    car = SPAIR_GROUPS["car"]
    # ids visible in both: 0, 2, 4, 10; visible in target: also 1 and 8
    m = geometry_aware_mask(np.array([0, 2, 4, 10]), np.array([0, 1, 2, 4, 8, 10]), car)
    np.testing.assert_array_equal(m, [True, False, True, False])
    # without target visibility only the both-visible ids count
    m = geometry_aware_mask(np.array([0, 2, 4, 10]), None, car)
    np.testing.assert_array_equal(m, [False, False, False, False])
    m = geometry_aware_mask(np.array([2, 6]), None, car)  # group (2,3,6,7)
    np.testing.assert_array_equal(m, [True, True])
    m = geometry_aware_mask(np.array([6, 0]), np.array([6, 0, 12]), AP10K_GROUPS)
    np.testing.assert_array_equal(m, [True, False])


def test_tables_cover_all_spair_categories():
    assert len(SPAIR_GROUPS) == 18
    for groups in SPAIR_GROUPS.values():
        flat = [i for g in groups for i in g]
        assert len(flat) == len(set(flat)) and max(flat) <= 29


def test_report_categories_breakdowns_and_geometry_subset():
    # car pair: ids 0,1 both aware (group (0,1)), id 10 not; errors 0, 20, 0 with T=100
    a = make_pair([(0, 0)] * 3, pid="a", ids=[0, 1, 10], flags={"occlusion": 1})
    sa = score_pair(a, [(0, 0), (20, 0), (0, 0)], rule="bbox", groups=SPAIR_GROUPS["car"])
    # cat pair: nothing geometry-aware, 1/2 correct
    b = make_pair([(0, 0)] * 2, pid="b", cat="cat", ids=[0, 1], flags={"occlusion": 0})
    sb = score_pair(b, [(0, 0), (0, 30)], rule="bbox", groups=SPAIR_GROUPS["cat"])
    c = make_pair([(0, 0)], pid="c", cat="cat", ids=[5], flags={"occlusion": 1})
    sc = score_pair(c, [(0, 0)], rule="bbox", groups=SPAIR_GROUPS["cat"])
    rep = pck_report([sa, sb, sc], (0.1, 0.25))
    assert rep.overall.per_image[0.1] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert rep.overall.per_keypoint[0.1] == pytest.approx(4 / 6)
    assert rep.per_category["cat"].per_image[0.1] == pytest.approx(0.75)
    assert rep.category_mean[0.1] == pytest.approx((2 / 3 + 0.75) / 2)
    assert rep.geometry_aware.num_pairs == 1 and rep.geometry_aware.num_keypoints == 2
    assert rep.geometry_aware.per_image[0.1] == pytest.approx(0.5)
    assert rep.geometry_aware.per_image[0.25] == pytest.approx(1.0)
    assert list(rep.geometry_aware_per_category) == ["car"]
    occ = rep.breakdowns["occlusion"]
    assert occ[1].per_image[0.1] == pytest.approx((2 / 3 + 1) / 2)
    assert occ[0].per_image[0.1] == pytest.approx(0.5)
    d = rep.to_dict()
    assert d["overall"]["per_image"]["0.1"] == pytest.approx(rep.overall.per_image[0.1])
    assert d["breakdowns"]["occlusion"]["1"]["num_pairs"] == 2


def test_empty_sets_give_nan_and_null():
    r = pck([], (0.1,))
    assert np.isnan(r.per_image[0.1]) and r.num_pairs == 0
    assert r.to_dict()["per_image"]["0.1"] is None


def test_swaps_onto_a_visible_twin():
    # car group (0, 1): left/right. Target: id 0 at (0, 0), id 1 at (100, 0); T = 100.
    p = make_pair([(0, 0), (100, 0), (50, 40)], ids=[0, 1, 10], trg_visible=[0, 1, 10])
    p = KeypointPair(**{**p.__dict__, "trg_visible_kps": np.array([[0, 0], [100, 0], [50, 40]],
                                                                   float)})
    # id 0 predicted 2 px from its twin (swap), id 1 right, id 10 wrong but has no twin
    s = score_pair(p, [(98, 0), (100, 5), (50, 0)], rule="bbox", groups=SPAIR_GROUPS["car"])
    np.testing.assert_allclose(s.twin_errors, [2, 100 * np.sqrt(1 + 0.05 ** 2), np.inf])
    np.testing.assert_array_equal(s.swapped(0.1), [True, False, False])
    np.testing.assert_array_equal(s.swapped(0.01), [False, False, False])  # 2 px > 1 px
    r = pck_report([s], (0.1,))
    assert r.overall.swap_rate[0.1] == pytest.approx(1 / 3)
    assert r.geometry_aware.swap_rate[0.1] == pytest.approx(1 / 2)
    assert r.to_dict()["geometry_aware"]["swap_rate"]["0.1"] == pytest.approx(0.5)


def test_twin_positions_must_align_with_ids():
    p = make_pair([(0, 0)], trg_visible=[0, 1])
    with pytest.raises(ValueError, match="trg_visible_kps"):
        KeypointPair(**{**p.__dict__, "trg_visible_kps": np.zeros((3, 2))})

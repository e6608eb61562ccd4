import numpy as np
import pytest
from spair_fixture import write_image

from geocorr.data.pairs import DatasetFormatError
from geocorr.data.pfwillow import PFWillowDataset
from geocorr.evaluation.scorer import evaluate_pairs

# target keypoints: x spans 10..110 (100 px), y spans 20..70 (50 px) -> T = 100
TX = np.array([10, 20, 30, 40, 50, 60, 70, 80, 90, 110], float)
TY = np.array([20, 30, 40, 50, 60, 70, 20, 30, 40, 50], float)
SX = np.arange(10, dtype=float)
SY = np.arange(10, dtype=float) + 100


def row(src, trg, sx, sy, tx, ty):
    return ",".join([src, trg] + [f"{v:g}" for v in np.concatenate([sx, sy, tx, ty])])


def build(root, extra=()):
    write_image(root / "PF-dataset" / "car(G)" / "car_0001.png", 300, 200)
    write_image(root / "PF-dataset" / "car(G)" / "car_0002.png", 420, 210)
    write_image(root / "PF-dataset" / "duck(S)" / "duck_0001.png", 210, 420)
    header = ",".join(["imageA", "imageB"] + [f"XA{i}" for i in range(1, 11)]
                      + [f"YA{i}" for i in range(1, 11)] + [f"XB{i}" for i in range(1, 11)]
                      + [f"YB{i}" for i in range(1, 11)])
    ty_nan = TY.copy()
    ty_nan[3] = np.nan
    lines = [header,
             row("PF-dataset/car(G)/car_0001.png", "PF-dataset/car(G)/car_0002.png",
                 SX, SY, TX, TY),
             row("car(G)/car_0002.png", "PF-WILLOW/PF-dataset/duck(S)/duck_0001.png",
                 SX, SY, TX, ty_nan),
             *extra]
    (root / "test_pairs_pf.csv").write_text("\n".join(lines) + "\n")
    return root


def test_loads_pairs(tmp_path):
    ds = PFWillowDataset(build(tmp_path))
    a, b = ds.pairs("test")
    assert a.pair_id == "000000-car_0001-car_0002"
    assert a.category == "car(G)" and b.category == "duck(S)"
    np.testing.assert_array_equal(a.src_kps[:, 0], SX)
    np.testing.assert_array_equal(a.src_kps[:, 1], SY)
    np.testing.assert_array_equal(a.trg_kps[:, 0], TX)
    assert a.trg_size == (420, 210) and b.trg_size == (210, 420)
    assert len(b.kps_ids) == 9 and 3 not in b.kps_ids


def test_keypoint_bbox_threshold_by_hand(tmp_path):
    ds = PFWillowDataset(build(tmp_path))
    a, b = ds.pairs("test")
    pa = a.trg_kps.copy()
    pa[0, 0] += 10  # error 10 = 0.1 * T: wrong at 0.1 (strict)
    pa[1, 1] += 5  # error 5 = 0.05 * T: right at 0.1, wrong at 0.05
    preds = {a.pair_id: pa, b.pair_id: b.trg_kps}
    res = evaluate_pairs([a, b], lambda p: preds[p.pair_id], ds, (0.05, 0.1))
    assert res.threshold_rule == "keypoints"
    assert res.scores[0].threshold == pytest.approx(100 * 2)  # canvas scale 2
    r = res.report.overall
    assert r.per_image[0.1] == pytest.approx((0.9 + 1) / 2)
    assert r.per_image[0.05] == pytest.approx((0.8 + 1) / 2)
    assert r.per_keypoint[0.1] == pytest.approx(18 / 19)


def test_errors(tmp_path):
    ds = PFWillowDataset(build(tmp_path, extra=["a.png,b.png,1,2"]))
    with pytest.raises(DatasetFormatError, match=r"test_pairs_pf.csv:4: expected 42 columns"):
        ds.pairs()
    bad = row("x.png", "y.png", SX, SY, TX, TY).replace(",0,", ",zero,", 1)
    ds = PFWillowDataset(build(tmp_path, extra=[bad]))
    with pytest.raises(DatasetFormatError, match=r":4: coordinate columns"):
        ds.pairs()
    ds = PFWillowDataset(build(tmp_path, extra=[row("x.png", "y.png", SX, SY, TX, TY)]))
    with pytest.raises(FileNotFoundError, match=r":4: image 'x.png' not found"):
        ds.pairs()
    with pytest.raises(ValueError, match="only has a 'test'"):
        ds.pairs("val")
    with pytest.raises(FileNotFoundError, match="PF-WILLOW split file"):
        PFWillowDataset(tmp_path / "PF-dataset").pairs()

import numpy as np
import pytest
from scipy.io import savemat
from spair_fixture import write_image

from geocorr.data.pairs import DatasetFormatError
from geocorr.data.pfpascal import PFPascalDataset
from geocorr.evaluation.scorer import evaluate_pairs

HEADER = "source_image,target_image,class,XA,YA,XB,YB\n"


def build(root, rows, train_rows=None):
    write_image(root / "JPEGImages" / "2008_000001.jpg", 200, 100)
    write_image(root / "JPEGImages" / "2008_000002.jpg", 420, 210)
    write_image(root / "JPEGImages" / "2008_000003.jpg", 100, 300)
    (root / "Annotations" / "car").mkdir(parents=True)
    savemat(root / "Annotations" / "car" / "2008_000001.mat",
            {"kps": np.array([[1, 2], [np.nan, np.nan], [5, 6]]),
             "bbox": np.array([[0, 0, 50, 60]])})
    savemat(root / "Annotations" / "car" / "2008_000002.mat",
            {"kps": np.array([[7, 8], [9, 10], [np.nan, np.nan]]), "bbox": np.array([1, 2, 3, 4])})
    (root / "test_pairs.csv").write_text(HEADER + "".join(r + "\n" for r in rows))
    if train_rows is not None:
        (root / "trn_pairs.csv").write_text("source_image,target_image,class,flip\n"
                                             + "".join(r + "\n" for r in train_rows))
    return root


ROWS = [
    # pair 0: car (class 7), target 420x210 -> T = 420 px
    "JPEGImages/2008_000001.jpg,JPEGImages/2008_000002.jpg,7,1;2;3,4;5;6,10;20;30,10;20;30",
    # pair 1: cow (class 10), the second keypoint is NaN in the source -> dropped
    "PF-dataset-PASCAL/JPEGImages/2008_000003.jpg,2008_000002.jpg,10,1;nan;3,4;5;6,"
    "100;110;120,50;60;70",
]


def test_loads_csv_pairs(tmp_path):
    ds = PFPascalDataset(build(tmp_path, ROWS))
    assert ds.splits() == ("test",)
    a, b = ds.pairs("test")
    assert a.pair_id == "000000-2008_000001-2008_000002"
    assert a.category == "car" and b.category == "cow"
    np.testing.assert_array_equal(a.src_kps, [[1, 4], [2, 5], [3, 6]])  # used as given
    np.testing.assert_array_equal(a.trg_kps, [[10, 10], [20, 20], [30, 30]])
    assert a.trg_size == (420, 210) and b.src_size == (100, 300)
    np.testing.assert_array_equal(a.src_bbox, [0, 0, 50, 60])
    assert b.src_bbox is None  # no cow .mat: tolerated
    np.testing.assert_array_equal(b.kps_ids, [0, 2])
    np.testing.assert_array_equal(b.trg_kps, [[100, 50], [120, 70]])


def test_pck_against_image_size_by_hand(tmp_path):
    ds = PFPascalDataset(build(tmp_path, ROWS))
    pairs = ds.pairs("test")
    preds = {pairs[0].pair_id: [(31, 10), (20, 20), (30, 80)],  # errors 21 (=0.05*T), 0, 50
             pairs[1].pair_id: [(100, 60), (120, 70)]}  # errors 10, 0
    res = evaluate_pairs(pairs, lambda p: preds[p.pair_id], ds)
    r = res.report.overall
    assert res.alphas == (0.05, 0.1, 0.15)
    assert r.per_image[0.05] == pytest.approx((1 / 3 + 1) / 2)  # 21 < 21 is false
    assert r.per_image[0.1] == pytest.approx((2 / 3 + 1) / 2)
    assert r.per_keypoint[0.1] == pytest.approx(4 / 5)
    assert r.per_image[0.15] == pytest.approx(1.0)


def test_train_split_reads_mat_keypoints_and_flip(tmp_path):
    ds = PFPascalDataset(build(tmp_path, ROWS, train_rows=[
        "JPEGImages/2008_000001.jpg,JPEGImages/2008_000002.jpg,7,1"]))
    assert ds.splits() == ("test", "trn")
    (p,) = ds.pairs("train")
    np.testing.assert_array_equal(p.kps_ids, [0])  # row 1 NaN in source, row 2 in target
    np.testing.assert_array_equal(p.src_kps, [[1, 2]])
    np.testing.assert_array_equal(p.trg_kps, [[7, 8]])
    assert p.flags == {"flip": 1}


@pytest.mark.parametrize("row,msg", [
    ("JPEGImages/2008_000001.jpg,JPEGImages/2008_000002.jpg,21,1,2,3,4", "1..20"),
    ("JPEGImages/2008_000001.jpg,JPEGImages/2008_000002.jpg,x,1,2,3,4", "class"),
    ("JPEGImages/2008_000001.jpg,JPEGImages/2008_000002.jpg,7,1;a,2;3,3;4,4;5", "XA/YA"),
    ("JPEGImages/2008_000001.jpg,JPEGImages/2008_000002.jpg,7,1;2,3,4,5", "1 y values"),
    ("JPEGImages/2008_000001.jpg,JPEGImages/2008_000002.jpg,7,1;2,3;4,5,6", "source has 2"),
    ("JPEGImages/2008_000001.jpg,JPEGImages/2008_000002.jpg,7", "expected 7 columns"),
])
def test_malformed_rows_named(tmp_path, row, msg):
    ds = PFPascalDataset(build(tmp_path, [ROWS[0], row]))
    with pytest.raises(DatasetFormatError, match=msg) as exc:
        ds.pairs("test")
    assert "test_pairs.csv:3" in str(exc.value)


def test_missing_image_and_root_and_split(tmp_path):
    row = "JPEGImages/nope.jpg,JPEGImages/2008_000002.jpg,7,1,2,3,4"
    ds = PFPascalDataset(build(tmp_path, [row]))
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        ds.pairs("test")
    with pytest.raises(FileNotFoundError, match="val_pairs.csv"):
        ds.pairs("val")
    with pytest.raises(FileNotFoundError, match="PF-PASCAL root"):
        PFPascalDataset(tmp_path / "missing")

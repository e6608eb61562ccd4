import json

import numpy as np
import pytest
from spair_fixture import write_image

from geocorr.data.ap10k import AP10KDataset
from geocorr.data.pairs import DatasetFormatError
from geocorr.evaluation.scorer import evaluate_pairs


def image_json(root, rel, visible, *, bbox=(10, 20, 100, 50), size=(840, 420), name=None,
               flat=False, **extra):
    kps = []
    for i in range(17):
        kps.append([float(10 * i), float(5 * i), 2.0 if i in visible else 0.0])
    d = {"bbox": list(bbox), "keypoints": sum(kps, []) if flat else kps,
         "width": size[0], "height": size[1], **extra}
    if name:
        d["name"] = name
    p = root / "ImageAnnotation" / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(d))
    return p


def build(root):
    image_json(root, "Canidae/dog/000001.json", {0, 5, 6, 9, 11}, name="dog")
    image_json(root, "Canidae/wolf/000002.json", {0, 5, 6, 8, 9}, flat=True)
    image_json(root, "Felidae/cat/000003.json", {1, 2, 3}, size=(210, 105), bbox=(0, 0, 40, 20))
    image_json(root, "Felidae/cat/000004.json", {1, 2, 3, 7}, size=(420, 420))
    write_image(root / "JPEGImages" / "Felidae" / "cat" / "000004.jpg", 420, 420)
    pa = root / "PairAnnotation" / "test_cross_species"
    pa.mkdir(parents=True)
    (pa / "0001-000001-000002.json").write_text(json.dumps({
        "src_json_path": "data/ap-10k/ImageAnnotation/Canidae/dog/000001.json",
        "trg_json_path": "ImageAnnotation/Canidae/wolf/000002.json"}))
    (pa / "0002-000004-000003.json").write_text(json.dumps({
        "src_imname": "000004.jpg", "trg_imname": "000003.jpg", "category": "cat"}))
    return root


def test_loads_pairs(tmp_path):
    ds = AP10KDataset(build(tmp_path))
    assert ds.splits() == ("test_cross_species",)
    a, b = ds.pairs("test_cross_species")
    assert a.pair_id == "0001-000001-000002"
    assert a.category == "wolf"  # the target's folder (no name field)
    np.testing.assert_array_equal(a.kps_ids, [0, 5, 6, 9])
    np.testing.assert_array_equal(a.trg_visible_ids, [0, 5, 6, 8, 9])
    np.testing.assert_array_equal(a.trg_visible_kps[3], [80, 40])  # id 8
    np.testing.assert_array_equal(a.trg_kps[1], [50, 25])
    np.testing.assert_array_equal(a.trg_bbox, [10, 20, 110, 70])  # COCO xywh -> xyxy
    assert a.src_image == tmp_path / "JPEGImages" / "Canidae" / "dog" / "000001.jpg"
    assert b.category == "cat" and b.trg_size == (210, 105)
    np.testing.assert_array_equal(b.kps_ids, [1, 2, 3])


def test_bbox_threshold_and_geometry_subset_by_hand(tmp_path):
    ds = AP10KDataset(build(tmp_path))
    a, b = ds.pairs("test_cross_species")
    pa = a.trg_kps + np.array([[0, 0], [10, 0], [0, 3], [0, 50]])  # errors 0, 10, 3, 50
    preds = {a.pair_id: pa, b.pair_id: b.trg_kps}
    r = evaluate_pairs([a, b], lambda p: preds[p.pair_id], ds, (0.05, 0.1)).report
    # T = 100 for pair a: 10 is not < 10
    assert r.overall.per_image[0.1] == pytest.approx((2 / 4 + 1) / 2)
    assert r.overall.per_keypoint[0.1] == pytest.approx(5 / 7)
    # geometry-aware: ids 5 (group 5,8 with 8 visible in target), 6 and 9 (group 6,9,12,15)
    np.testing.assert_array_equal(
        evaluate_pairs([a], lambda p: pa, ds).scores[0].geometry_aware,
        [False, True, True, True])
    assert r.geometry_aware.num_pairs == 1
    assert r.geometry_aware.per_image[0.1] == pytest.approx(1 / 3)


def test_errors_name_file_and_field(tmp_path):
    build(tmp_path)
    image_json(tmp_path, "Canidae/wolf/000002.json", {0}, bbox=(0, 0, 0, 5))
    with pytest.raises(DatasetFormatError, match=r"000002.json: field 'bbox'"):
        AP10KDataset(tmp_path).pairs("test_cross_species")
    p = tmp_path / "ImageAnnotation" / "Canidae" / "wolf" / "000002.json"
    p.write_text(json.dumps({"bbox": [0, 0, 5, 5], "keypoints": [[1, 2, 1]] * 16}))
    with pytest.raises(DatasetFormatError, match="17 x 3"):
        AP10KDataset(tmp_path).pairs("test_cross_species")
    pa = tmp_path / "PairAnnotation" / "test_cross_species" / "0003-x-y.json"
    pa.write_text(json.dumps({"src_imname": "000004.jpg"}))
    with pytest.raises(DatasetFormatError, match="0003-x-y.json: missing field 'trg_json_path'"):
        AP10KDataset(tmp_path).load_pair(pa)
    pa.write_text(json.dumps({"src_imname": "000004.jpg", "trg_imname": "999.jpg"}))
    with pytest.raises(FileNotFoundError, match="999.json"):
        AP10KDataset(tmp_path).load_pair(pa)
    with pytest.raises(FileNotFoundError, match="splits on disk: test_cross_species"):
        AP10KDataset(tmp_path).pairs("test")
    with pytest.raises(FileNotFoundError, match="PairAnnotation"):
        AP10KDataset(tmp_path / "ImageAnnotation")

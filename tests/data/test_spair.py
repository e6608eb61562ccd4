import json

import numpy as np
import pytest
from spair_fixture import STANDARD_PREDICTIONS, spair_pair, standard_fixture, write_spair

from geocorr.data.keypoint_groups import SPAIR_GROUPS
from geocorr.data.pairs import DatasetFormatError, PairDataset
from geocorr.data.spair import SPairDataset, load_category_meta
from geocorr.evaluation.pck import pck_report, score_pair


def test_loads_pairs_in_layout_order(tmp_path):
    ds = SPairDataset(standard_fixture(tmp_path))
    assert isinstance(ds, PairDataset)
    assert ds.splits() == ("test",)
    pairs = ds.pairs("test")
    assert [p.pair_id for p in pairs] == list(STANDARD_PREDICTIONS)
    a = pairs[0]
    assert a.category == "car"
    assert a.src_image == tmp_path / "JPEGImages" / "car" / "c1.jpg"
    assert a.src_image.is_file()
    np.testing.assert_array_equal(a.kps_ids, [0, 2, 4, 10])
    assert a.kps_ids.dtype == np.int64
    np.testing.assert_array_equal(a.trg_kps[1], [200, 150])
    np.testing.assert_array_equal(a.trg_bbox, [100, 100, 300, 200])
    assert a.trg_size == (840, 630)
    assert a.flags["viewpoint_variation"] == 2
    np.testing.assert_array_equal(a.trg_visible_ids, [0, 1, 2, 4, 8, 10])
    np.testing.assert_array_equal(a.trg_visible_kps, [[5, 5]] * 6)
    assert pairs[1].trg_size == (420, 420)
    assert ds.geometry_groups("car") == SPAIR_GROUPS["car"]
    assert ds.categories() == ("car", "cat")


def test_train_alias_and_unknown_split(tmp_path):
    ds = SPairDataset(standard_fixture(tmp_path))
    with pytest.raises(FileNotFoundError, match="trn"):
        ds.pairs("train")
    with pytest.raises(ValueError, match="unknown SPair-71k split"):
        ds.pairs("bogus")


def test_without_layout_file_falls_back_to_folder(tmp_path):
    pairs = [spair_pair(7, "cat", "a.jpg", "b.jpg", [(1, 2)], [(3, 4)], [0], (0, 0, 5, 5))]
    write_spair(tmp_path, pairs, {}, layout=False)
    ds = SPairDataset(tmp_path)
    (p,) = ds.pairs("test")
    assert p.pair_id == "000007-a-b:cat"
    assert p.trg_visible_ids is None  # no image JSON: tolerated


def test_wrong_root_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="SPair-71k root"):
        SPairDataset(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="PairAnnotation"):
        SPairDataset(tmp_path)


@pytest.mark.parametrize("field,value,msg", [
    ("trg_kps", [[1, 2, 3]], "trg_kps"),
    ("kps_ids", ["a"], "kps_ids"),
    ("trg_bndbox", [1, 2], "trg_bndbox"),
    ("trg_imsize", "big", "trg_imsize"),
    ("src_kps", [[1, 2], [3, 4]], "differ in length"),
    ("occlusion", "x", "occlusion"),
])
def test_malformed_field_named(tmp_path, field, value, msg):
    pair = spair_pair(1, "cat", "a.jpg", "b.jpg", [(1, 2)], [(3, 4)], [0], (0, 0, 5, 5))
    pair[field] = value
    write_spair(tmp_path, [pair], {})
    with pytest.raises(DatasetFormatError, match=msg) as exc:
        SPairDataset(tmp_path).pairs("test")
    assert "000001-a-b:cat.json" in str(exc.value)


def test_missing_field_and_bad_json_named(tmp_path):
    pair = spair_pair(1, "cat", "a.jpg", "b.jpg", [(1, 2)], [(3, 4)], [0], (0, 0, 5, 5))
    del pair["trg_bndbox"]
    write_spair(tmp_path, [pair], {})
    with pytest.raises(DatasetFormatError, match="missing field 'trg_bndbox'"):
        SPairDataset(tmp_path).pairs("test")
    (tmp_path / "PairAnnotation" / "test" / "000001-a-b:cat.json").write_text("{oops")
    with pytest.raises(DatasetFormatError, match="not valid JSON"):
        SPairDataset(tmp_path).pairs("test")


def test_listed_pair_without_file(tmp_path):
    standard_fixture(tmp_path)
    with open(tmp_path / "Layout" / "large" / "test.txt", "a") as f:
        f.write("000099-x-y:car\n")
    with pytest.raises(FileNotFoundError, match="000099-x-y:car"):
        SPairDataset(tmp_path).pairs("test")


def test_procedural_meta_replaces_group_table(tmp_path):
    standard_fixture(tmp_path)
    meta = {"car": {"keypoint_names": ["wheel_fl", "wheel_fr", "wheel_rl"],
                    "groups": [[0, 2], [1, 4]]}}
    (tmp_path / "Meta").mkdir()
    (tmp_path / "Meta" / "categories.json").write_text(json.dumps(meta))
    ds = SPairDataset(tmp_path)
    assert ds.geometry_groups("car") == ((0, 2), (1, 4))
    assert ds.geometry_groups("cat") == SPAIR_GROUPS["cat"]
    assert ds.keypoint_names("car") == ("wheel_fl", "wheel_fr", "wheel_rl")
    assert ds.keypoint_names("cat") is None
    # pair A: ids [0, 2, 4, 10], target visible {0,1,2,4,8,10}: groups (0,2) and (1,4) qualify
    a = ds.pairs("test")[0]
    s = score_pair(a, a.trg_kps, rule="bbox", groups=ds.geometry_groups("car"))
    np.testing.assert_array_equal(s.geometry_aware, [True, True, True, False])


@pytest.mark.parametrize("text,msg", [
    ('{"car": {"groups": [[0, "x"]]}}', "integer ids"),
    ('{"car": {"groups": [[1, 1]]}}', "repeated"),
    ('{"car": 3}', "must be an object"),
    ('{"categories": [{"groups": []}]}', "'name'"),
])
def test_bad_meta_named(tmp_path, text, msg):
    p = tmp_path / "categories.json"
    p.write_text(text)
    with pytest.raises(DatasetFormatError, match=msg) as exc:
        load_category_meta(p)
    assert str(p) in str(exc.value)


def test_group_table_source_per_category(tmp_path):
    standard_fixture(tmp_path)
    ds = SPairDataset(tmp_path)
    assert ds.geometry_groups_source("car") == "SPair-71k built-in"
    assert ds.geometry_groups_source("mug") == "none" and ds.geometry_groups("mug") == ()
    (tmp_path / "Meta").mkdir()
    (tmp_path / "Meta" / "categories.json").write_text('{"car": {"groups": [[0, 1]]}}')
    ds = SPairDataset(tmp_path)
    assert ds.geometry_groups_source("car") == "Meta/categories.json"
    assert ds.geometry_groups_source("cat") == "SPair-71k built-in"


def test_keypoint_names_as_id_mapping(tmp_path):
    """`keypoint_names` may be an {id: name} object (it was rejected with "must be a list")."""
    p = tmp_path / "categories.json"
    p.write_text('{"mug": {"keypoint_names": {"1": "handle", "0": "rim", "2": "base"}, '
                 '"groups": [[0, 2]]}}')
    assert load_category_meta(p)["mug"].keypoint_names == ("rim", "handle", "base")
    for names, msg in (('{"0": "rim", "2": "base"}', r"missing \[1\]"),
                       ('{"rim": "x"}', "not an integer id"),
                       ('{"-1": "x"}', "negative"),
                       ('"rim"', "list of names or an object")):
        p.write_text(f'{{"mug": {{"keypoint_names": {names}}}}}')
        with pytest.raises(DatasetFormatError, match=msg) as exc:
            load_category_meta(p)
        assert str(p) in str(exc.value) and "keypoint_names" in str(exc.value)


def test_meta_list_shape(tmp_path):
    p = tmp_path / "categories.json"
    p.write_text('{"categories": [{"name": "mug", "keypoints": ["a", "b"], '
                 '"keypoint_groups": [[0, 1]]}]}')
    assert load_category_meta(p)["mug"].groups == ((0, 1),)


def test_standard_fixture_report_end_to_end(tmp_path):
    ds = SPairDataset(standard_fixture(tmp_path))
    scores = [score_pair(p, np.array(STANDARD_PREDICTIONS[p.pair_id]), rule=ds.threshold_rule,
                         groups=ds.geometry_groups(p.category)) for p in ds.pairs("test")]
    rep = pck_report(scores, (0.05, 0.1))
    assert rep.overall.per_image[0.1] == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    assert rep.overall.per_keypoint[0.1] == pytest.approx(4 / 7)
    assert rep.breakdowns["viewpoint_variation"][2].per_image[0.1] == pytest.approx(0.5)

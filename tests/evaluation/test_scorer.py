import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from spair_fixture import STANDARD_PREDICTIONS, standard_fixture  # noqa: E402

from geocorr.cli import app  # noqa: E402
from geocorr.data.spair import SPairDataset  # noqa: E402
from geocorr.evaluation.scorer import (  # noqa: E402
    evaluate_pairs,
    open_dataset,
    read_predictions,
    score_file,
)


def write_preds(path, preds, extra_lines=()):
    with open(path, "w") as f:
        for k, v in preds.items():
            f.write(json.dumps({"pair": k, "trg_kps": [list(p) for p in v]}) + "\n")
        for line in extra_lines:
            f.write(line + "\n")
    return path


@pytest.fixture()
def spair(tmp_path):
    return SPairDataset(standard_fixture(tmp_path / "spair"))


def test_score_file_hand_values(spair, tmp_path):
    res = score_file(spair, "test", write_preds(tmp_path / "p.jsonl", STANDARD_PREDICTIONS),
                     (0.05, 0.1))
    r = res.report
    # A: errors 0, 20, 12, 30 with T = 200 -> @0.1 {0,12} right (20 is not < 20); @0.05 {0}
    # B: canvas errors 10, 20 with T = 200 canvas px -> @0.1 one right; @0.05 none
    # C: exact
    assert r.overall.per_image[0.1] == pytest.approx((2 / 4 + 1 / 2 + 1) / 3)
    assert r.overall.per_keypoint[0.1] == pytest.approx(4 / 7)
    assert r.overall.per_image[0.05] == pytest.approx((1 / 4 + 0 + 1) / 3)
    assert r.overall.per_keypoint[0.05] == pytest.approx(2 / 7)
    assert r.per_category["car"].per_image[0.1] == pytest.approx(0.5)
    # geometry-aware: A ids 0 and 4 (errors 0, 12), B ids 0 and 1 (canvas 10, 20)
    assert r.geometry_aware.num_keypoints == 4
    assert r.geometry_aware.per_image[0.1] == pytest.approx((1 + 0.5) / 2)
    assert r.geometry_aware.per_image[0.05] == pytest.approx((0.5 + 0) / 2)
    assert res.to_dict(per_pair=True)["pairs"][0]["errors"] == [0, 20, 12, 30]


def test_default_alphas_and_kind_names(spair):
    pairs = spair.pairs("test")
    res = evaluate_pairs(pairs, lambda p: p.trg_kps, "spair")
    assert res.alphas == (0.01, 0.05, 0.1)
    assert res.report.overall.per_image[0.01] == 1.0
    assert evaluate_pairs(pairs, lambda p: p.trg_kps, "pfpascal").threshold_rule == "image"
    with pytest.raises(ValueError, match="unknown dataset kind"):
        evaluate_pairs(pairs, lambda p: p.trg_kps, "coco")
    with pytest.raises(ValueError, match="unknown dataset"):
        open_dataset("tss2", "x")


@pytest.mark.parametrize("line,msg", [
    ("{not json", ":4: not a JSON object"),
    ("[1, 2]", ":4: expected a JSON object"),
    ('{"pair": "x"}', ":4: missing field 'trg_kps'"),
    ('{"pair": true, "trg_kps": []}', ":4: field 'pair' must be a string"),
    ('{"pair": "x", "trg_kps": [[1, 2, 3]]}', ":4: field 'trg_kps' must be a list of"),
    ('{"pair": "x", "trg_kps": [["a", 2]]}', ":4: field 'trg_kps' must be a list of"),
    ('{"pair": "000003-k1-k2:cat", "trg_kps": [[1, 2]]}', ":4: pair '000003-k1-k2:cat' "
                                                         "already predicted on line 3"),
])
def test_malformed_prediction_lines_named(tmp_path, line, msg):
    p = write_preds(tmp_path / "p.jsonl", STANDARD_PREDICTIONS, [line])
    with pytest.raises(ValueError, match=msg.replace("[", r"\[").replace("]", r"\]")):
        read_predictions(p)


def test_unknown_wrong_length_and_missing_pairs(spair, tmp_path):
    p = write_preds(tmp_path / "a.jsonl", {**STANDARD_PREDICTIONS, "zzz": [(1, 1)]})
    with pytest.raises(ValueError, match=r"a.jsonl:4: unknown pair 'zzz'"):
        score_file(spair, "test", p)
    bad = dict(STANDARD_PREDICTIONS)
    bad["000002-c2-c3:car"] = [(1, 1)]
    p = write_preds(tmp_path / "b.jsonl", bad)
    with pytest.raises(ValueError, match=r"b.jsonl:2: pair '000002-c2-c3:car' has 2 source "
                                         r"keypoints but 1 predictions"):
        score_file(spair, "test", p)
    p = write_preds(tmp_path / "c.jsonl", {"000001-c1-c2:car": STANDARD_PREDICTIONS[
        "000001-c1-c2:car"]})
    with pytest.raises(ValueError, match=r"2 of 3 pairs have no prediction: 000002-c2-c3:car, "
                                         r"000003-k1-k2:cat"):
        score_file(spair, "test", p)
    with pytest.raises(FileNotFoundError, match="predictions file"):
        read_predictions(tmp_path / "none.jsonl")


def test_cli_score_prints_and_writes_json(spair, tmp_path):
    preds = write_preds(tmp_path / "p.jsonl", STANDARD_PREDICTIONS)
    out = tmp_path / "res" / "score.json"
    r = CliRunner().invoke(app, ["score", "--dataset", "spair", "--root", str(spair.root),
                                 "--predictions", str(preds), "--json", str(out),
                                 "--alpha", "0.05", "--alpha", "0.1"])
    assert r.exit_code == 0, r.output
    assert "geometry-aware" in r.output and "66.7" in r.output
    assert "same-part twin" in " ".join(r.output.split())
    d = json.loads(out.read_text())
    assert d["overall"]["per_keypoint"]["0.1"] == pytest.approx(4 / 7)
    assert d["breakdowns"]["viewpoint_variation"]["2"]["num_pairs"] == 1
    assert not list(out.parent.glob(".*.tmp"))


def test_cli_errors_are_one_line_exit_2(spair, tmp_path):
    preds = write_preds(tmp_path / "p.jsonl", STANDARD_PREDICTIONS, ["{bad"])
    r = CliRunner().invoke(app, ["score", "--dataset", "spair", "--root", str(spair.root),
                                 "--predictions", str(preds)])
    assert r.exit_code == 2
    assert "p.jsonl:4" in "".join(r.output.split())
    r = CliRunner().invoke(app, ["score", "--dataset", "spair", "--root",
                                 str(tmp_path / "nowhere"), "--predictions", str(preds)])
    assert r.exit_code == 2 and "SPair-71k root" in " ".join(r.output.split())


def test_original_pixels_option_equals_canvas(spair, tmp_path):
    preds = read_predictions(write_preds(tmp_path / "p.jsonl", STANDARD_PREDICTIONS))
    pairs = spair.pairs("test")
    a = evaluate_pairs(pairs, lambda p: preds.trg_kps[p.pair_id], spair, (0.05, 0.1))
    b = evaluate_pairs(pairs, lambda p: preds.trg_kps[p.pair_id], spair, (0.05, 0.1),
                       size=None)
    for s, t in zip(a.scores, b.scores, strict=True):
        np.testing.assert_allclose(s.errors / s.threshold, t.errors / t.threshold)


def test_pairs_may_be_named_by_their_numeric_id(spair, tmp_path):
    keys = {"000001-c1-c2:car": "1", "000002-c2-c3:car": "000002",
            "000003-k1-k2:cat": "000003-k1-k2:cat"}
    preds = {keys[k]: v for k, v in STANDARD_PREDICTIONS.items()}
    res = score_file(spair, "test", write_preds(tmp_path / "p.jsonl", preds), (0.1,))
    assert res.report.overall.per_keypoint[0.1] == pytest.approx(4 / 7)
    dup = {**preds, "000001-c1-c2:car": STANDARD_PREDICTIONS["000001-c1-c2:car"]}
    with pytest.raises(ValueError, match=r"p2.jsonl:4: pair '000001-c1-c2:car' already "
                                         r"predicted on line 1 \(as '000001-c1-c2:car'\)"):
        score_file(spair, "test", write_preds(tmp_path / "p2.jsonl", dup))


def test_ambiguous_aliases_are_dropped():
    from test_pck import make_pair

    from geocorr.evaluation.scorer import pair_aliases

    pairs = [make_pair([(0, 0)], pid="000001-a-b:car"), make_pair([(0, 0)], pid="01-c-d:cat"),
             make_pair([(0, 0)], pid="7-x-y")]
    assert pair_aliases(pairs) == {"000001": "000001-a-b:car", "01": "01-c-d:cat",
                                   "7": "7-x-y"}


def test_write_predictions_roundtrip(spair, tmp_path):
    from geocorr.evaluation.scorer import write_predictions

    path = tmp_path / "out" / "p.jsonl"
    write_predictions(path, {k: np.array(v) for k, v in STANDARD_PREDICTIONS.items()})
    back = read_predictions(path)
    assert list(back.trg_kps) == list(STANDARD_PREDICTIONS)
    np.testing.assert_array_equal(back.trg_kps["000002-c2-c3:car"], [[53, 54], [100, 110]])
    assert score_file(spair, "test", path, (0.1,)).report.overall.per_keypoint[0.1] == \
        pytest.approx(4 / 7)
    with pytest.raises(ValueError, match="pair 'x'"):
        write_predictions(tmp_path / "q.jsonl", {"x": [[1, np.nan]]})
    assert not (tmp_path / "q.jsonl").exists()

import json

import pytest

from geocorr.demo import DemoSettings, run_demo


def test_demo_end_to_end_small(tmp_path):
    out = tmp_path / "demo"
    res = run_demo(out, DemoSettings(categories=("car",), images_per_category=8, test_pairs=4,
                                     figures=1), progress=False, log=lambda _: None)
    saved = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in saved["rows"]] == [r["name"] for r in res["rows"]]
    assert len(saved["rows"]) == 3
    for row in saved["rows"]:
        assert row["num_pairs"] >= 1
        assert 0.0 <= row["pck"]["0.1"] <= 1.0
        assert row["pck"]["0.05"] <= row["pck"]["0.1"]
    assert saved["stage1"]["median_iou_after"] > saved["stage1"]["median_iou_before"]
    html = (out / "report.html").read_text()
    assert "figures/pair_0.png" in html and (out / "figures" / "pair_0.png").is_file()


def test_demo_refuses_non_empty_output(tmp_path):
    (tmp_path / "x").write_text("keep")
    with pytest.raises(ValueError, match="not empty"):
        run_demo(tmp_path, DemoSettings(), progress=False, log=lambda _: None)
    assert (tmp_path / "x").read_text() == "keep"

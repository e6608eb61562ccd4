import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from geocorr.adapter.train import TrainSettings
from geocorr.data.synth.generate import SynthSettings
from geocorr.demo import (
    DemoData,
    DemoSettings,
    DemoStage3,
    evaluate_step,
    features_step,
    report_step,
    run_demo,
    score_stage1,
)
from geocorr.demo.stage1 import stage1_summary
from geocorr.evaluation.filter_study import FilterStudy
from geocorr.labels.runner import LabelSettings
from geocorr.matching.pairs import PairSamplingSettings
from geocorr.report.html import Link

# oracle reconstructions: at 4 label pairs the realistic level's geodesic filter keeps no
# pair with 2 labels (no geodesic adapter to check); these tests are about the machinery
SMALL = DemoSettings(categories=("car",), images_per_category=7, test_pairs=4, figures=1,
                     labels=LabelSettings(pairs=PairSamplingSettings(4)),
                     train=TrainSettings(steps=4, out_dim=16), adapter_context=True,
                     sim_errors="oracle")


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    """``(out, results)`` of one small oracle demo, shared by the tests that read it."""
    out = tmp_path_factory.mktemp("small") / "demo"
    return out, run_demo(out, SMALL, progress=False, log=lambda _: None)


def test_demo_end_to_end_small(small_demo, tmp_path):
    out, res = small_demo
    saved = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in saved["rows"]] == [r["name"] for r in res["rows"]]
    keys = [r["key"] for r in saved["rows"]]
    assert keys[:4] == ["2d", "2d_context", "3d", "fused"]
    for f in ("cyclic", "sphere", "geodesic"):       # every filter got its adapter rows
        assert f"adapter_{f}" in keys and f"adapter_{f}_fused" in keys
    rows = {r["key"]: r for r in saved["rows"]}
    assert all(r["num_pairs"] == rows["2d"]["num_pairs"] >= 1 for r in rows.values())
    # README: "The 3D-aware rows beat 2D-only by a wide margin" -- every row that uses the
    # rendered part descriptor (3D only, fused, adapters + part) above every 2D-only row
    pck = {k: r["pck"]["0.1"] for k, r in rows.items()}
    aware = [k for k in pck if k in ("3d", "fused") or k.endswith("_fused")]
    flat = [k for k in pck if k not in aware]
    assert len(aware) == 5 and len(flat) == 5
    assert min(pck[k] for k in aware) > max(pck[k] for k in flat) + 0.15, pck
    for k in ("3d", "fused"):
        assert rows[k]["pck_geometry_aware"]["0.1"] > rows["2d"]["pck_geometry_aware"]["0.1"]
    # ... "and cut twin swaps (left<->right, wheel<->wheel)"
    swaps = {k: r["swap_rate"]["0.1"] for k, r in rows.items()}
    assert swaps["3d"] < swaps["2d"] and swaps["fused"] < swaps["2d"], swaps
    # "Stage 1: median mask IoU ... -> ..." (refinement improves the simulated meshes' fit)
    assert saved["stage1"]["median_iou_after"] > saved["stage1"]["median_iou_before"] + 0.2

    pl = saved["pseudo_labels"]
    assert pl["split"] == "trn" and pl["pairs"] >= 1 and pl["candidates"] > 0
    cyc, sph, geo = (pl["filters"][f] for f in ("cyclic", "sphere", "geodesic"))
    assert cyc["kept"] == cyc["candidates"] == pl["candidates"]
    # "geodesic labels are the most precise ... but fewer": geodesic keeps fewer, more
    # precise labels than cyclic-only; sphere keeps fewer. (Sphere vs cyclic precision is not
    # asserted: since the candidates are found on features fused at the one part weight,
    # 0.9 x confidence instead of 1/6 (a 1/26 share), they are already 3D-consistent and the
    # sphere test removes few wrong ones: 0.406 vs 0.436 on this 4-pair fixture. The README's
    # label table predates that change.)
    assert geo["precision"] > cyc["precision"], pl
    assert geo["kept"] < sph["kept"] < cyc["kept"]
    assert geo["recall"] < sph["recall"] <= cyc["recall"]
    for f in ("cyclic", "sphere", "geodesic"):
        assert (out / pl["stores"][f]).is_file()
        assert saved["adapters"][f]["steps"] == 4
    assert saved["findings"] and any("PCK@0.1" in x for x in saved["findings"])
    assert any("not label counts" in x for x in saved["findings"])

    html = (out / "report.html").read_text()
    assert "figures/pair_0.png" in html and (out / "figures" / "pair_0.png").is_file()
    assert "figures/labels.png" in html and "green = correct" in html
    assert "adapter (geodesic-filtered labels)" in html      # adapter PCA panels
    assert (out / "figures" / "labels.png").is_file()
    assert "Pseudo-labels" in html and "| geodesic |" not in html   # rendered as HTML
    # the interactive viewer of a few test pairs is written beside the report and linked
    from geocorr.viewer import read_page_data

    assert "href='viewer.html'" in html
    page = read_page_data((out / "viewer.html").read_text())
    assert len(page["pairs"]) >= 1

    # geocorr eval --model on the demo's geodesic run gives the demo's adapter row
    ev = tmp_path / "eval.json"
    r = CliRunner().invoke(__import__("geocorr.cli", fromlist=["app"]).app, [
        "eval", "--dataset", "spair", "--root", str(out / "data"), "--model",
        str(out / saved["adapters"]["geodesic"]["run"]), "--cache", str(out / "cache" / "features"),
        "--context", "--alpha", "0.05", "--alpha", "0.1", "--json", str(ev)])
    assert r.exit_code == 0, r.output
    row = next(x for x in saved["rows"] if x["key"] == "adapter_geodesic")
    got = json.loads(ev.read_text())["overall"]["per_image"]
    assert got["0.1"] == pytest.approx(row["pck"]["0.1"])
    assert got["0.05"] == pytest.approx(row["pck"]["0.05"])


def test_demo_steps_run_alone_with_a_replaced_record(small_demo, tmp_path):
    """The steps after stage 1 run on their own: a stage-1 record rebuilt from the demo's cache
    (as a user's own stage 1 would be passed in) and a stage-3 record with no adapter give the
    demo's zero-shot rows exactly; the report step writes its page with an extra link."""
    out, _ = small_demo
    saved = json.loads((out / "results.json").read_text())
    records = [json.loads(p.read_text()) for p in sorted((out / "stage1").glob("*/*/record.json"))]
    stage1 = score_stage1(out / "data", out / "stage1", records)
    assert stage1_summary(stage1.errors) == pytest.approx(saved["stage1"])
    data = DemoData(out / "data", "oracle", 1.0, SynthSettings())
    features = features_step(out, data, stage1, None, SMALL, log=lambda _: None)
    study = FilterStudy(pairs=[], candidates=[], correct=[], quality={}, stores={}, runs={},
                        train_pairs={}, train_labels={}, timings_s={})
    stage3 = DemoStage3(study=study, labels=SMALL.labels, table="| filter |\n|---|")
    ev = evaluate_step(data, features, stage3, SMALL, log=lambda _: None)
    assert list(ev.rows) == ["2d", "2d_context", "3d", "fused"] and ev.adapters == {}
    rows = {r["key"]: r for r in saved["rows"]}
    for key, row in ev.rows.items():
        assert {str(a): v for a, v in row.pck.items()} == rows[key]["pck"], key
        assert {str(a): v for a, v in row.swap_rate.items()} == rows[key]["swap_rate"], key
    # an image stage 1 failed on (no fit to draw) comes first: the report skips it
    failed = {"category": "car", "stem": "car_9999", "failed": True, "error": "bad mesh"}
    stage1 = replace(stage1, records=(failed, *stage1.records))
    report = report_step(tmp_path / "r", SMALL, data, stage1, features, stage3, ev,
                         links=[Link("viewer.html", "interactive viewer")])
    page = report.html.read_text()
    assert "<a href='viewer.html'>interactive viewer</a>" in page
    assert all(p.is_file() for p in report.figures) and len(report.figures) == 1 + 3
    assert "figures/labels.png" not in page      # no label pair in this study


def test_demo_refuses_non_empty_output(tmp_path):
    (tmp_path / "x").write_text("keep")
    with pytest.raises(ValueError, match="not empty"):
        run_demo(tmp_path, DemoSettings(), progress=False, log=lambda _: None)
    assert (tmp_path / "x").read_text() == "keep"


def test_demo_settings_checked():
    assert DemoSettings().sim_errors == "realistic"
    with pytest.raises(ValueError, match="error level"):
        DemoSettings(sim_errors="perfect")
    with pytest.raises(ValueError, match="xfeat"):
        DemoSettings(labels=LabelSettings(backbone="classical"))
    from geocorr.features.part_fusion import PartFusionSettings

    with pytest.raises(ValueError, match="part_weight"):
        DemoSettings(fusion=PartFusionSettings(part_weight=0.0))


def test_demo_realistic_has_oracle_row_and_stage1_errors(tmp_path):
    """At ``realistic`` the table keeps the oracle upper-bound row; results.json records the
    error level and stage 1 scored against the truth (issue 12, item 4)."""
    from PIL import Image

    sweep = tmp_path / "sweep.png"
    Image.new("RGB", (8, 8), "white").save(sweep)
    out = tmp_path / "demo"
    settings = DemoSettings(categories=("car",), images_per_category=7, test_pairs=3, figures=0,
                            labels=LabelSettings(pairs=PairSamplingSettings(2)),
                            train=TrainSettings(steps=2, out_dim=8), adapter_fused_rows=False,
                            sweep_figure=str(sweep))
    assert settings.sim_errors == "realistic"
    run_demo(out, settings, progress=False, log=lambda _: None)
    saved = json.loads((out / "results.json").read_text())
    assert saved["error_level"] == {"level": "realistic", "scale": 1.0, "oracle_row": True}
    rows = {r["key"]: r for r in saved["rows"]}
    assert list(rows)[:3] == ["2d", "3d", "3d_oracle"]
    assert rows["3d_oracle"]["name"] == "3D only, oracle reconstruction (upper bound)"
    assert rows["3d_oracle"]["num_pairs"] == rows["3d"]["num_pairs"] >= 1
    assert any("points below 3D only, oracle reconstruction" in x for x in saved["findings"])
    # stage 1 against the truth: the realistic cameras err by degrees (docs/synth.md: median
    # 8.5 deg over 72 images), the predicted masks are not the true ones; the oracle's cameras
    # are the true ones up to the 90 deg k yaw and its predicted masks are copies of the truth
    real, oracle = saved["stage1"], saved["oracle_stage1"]
    assert 1.0 < real["rotation_before_deg"] < 30.0, real
    assert 0.0 <= real["rotation_after_deg"] < 30.0, real
    # the canonical-frame error is the same angle without the modulo: never smaller
    assert real["canonical_frame_deg"] >= real["rotation_after_deg"] - 1e-9
    assert 0.5 < real["mask_iou_predicted_vs_true"] < 1.0
    assert oracle["rotation_before_deg"] < 0.01
    # stage 1 may turn an exact camera a little (rotation pass, alignment to the category
    # reference): 1.3 deg on this fixture
    assert oracle["rotation_after_deg"] < 5.0, oracle
    assert oracle["mask_iou_predicted_vs_true"] == 1.0
    assert 0 < oracle["images"] < real["images"]        # test images only vs test + trn
    html = (out / "report.html").read_text()
    assert "figures/error_sweep.png" in html and (out / "figures" / "error_sweep.png").is_file()
    assert "realistic x1" in html

"""The demo's steps without running the pipeline: rows, findings, results, report page, CLI.

The chain itself (every step on real data) is tests/test_demo.py.
"""

import importlib.util
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from geocorr.demo import DemoRow, DemoSettings, findings, format_table
from geocorr.demo.results import TIMING_KEYS, results_differences
from geocorr.evaluation.filter_study import FilterStudy
from geocorr.evaluation.label_quality import LabelQuality
from geocorr.report.html import Figure, Link, ReportContent, html_table, render_report
from geocorr.report.refine_figure import AFTER, BEFORE, MASK, save_refinement_figure


def _row(name, pck05, pck10, n=10):
    return DemoRow(name=name, pck={0.05: pck05, 0.1: pck10},
                   pck_geometry_aware={0.05: pck05 / 2, 0.1: pck10 / 2},
                   swap_rate={0.1: 0.125}, num_pairs=n)


def _study(quality=None, runs=None, train_pairs=None, train_labels=None):
    return FilterStudy(pairs=[], candidates=[], correct=[], quality=quality or {}, stores={},
                       runs=runs or {}, train_pairs=train_pairs or {},
                       train_labels=train_labels or {}, timings_s={})


def _quality(name, kept, candidates, precision, recall):
    return LabelQuality(filter=name, candidates=candidates, kept=kept, correct_candidates=0,
                        correct_kept=0, precision=precision, recall=recall)


# -- rows and findings ------------------------------------------------------------------------

def test_format_table_percentages_and_missing_swap():
    rows = [_row("2D", 0.25, 0.5), replace(_row("3D", 0.125, 0.75), swap_rate={})]
    assert format_table(rows, (0.05, 0.1)).splitlines() == [
        "| method | PCK@0.05 | PCK@0.1 | geo-aware PCK@0.05 | geo-aware PCK@0.1 | swap@0.1 "
        "| pairs |",
        "|---|---|---|---|---|---|---|",
        "| 2D | 25.0 | 50.0 | 12.5 | 25.0 | 12.5 | 10 |",
        "| 3D | 12.5 | 75.0 | 6.2 | 37.5 | nan | 10 |"]


def test_findings_verdicts_and_margins():
    rows = {"2d": _row("2D", 0.1, 0.25), "3d": _row("3D", 0.1, 0.5),
            "fused": _row("fused", 0.1, 0.25), "3d_oracle": _row("oracle", 0.5, 0.875)}
    q = {"cyclic": _quality("cyclic", 100, 100, 0.25, 1.0),
         "sphere": _quality("sphere", 50, 100, 0.5, 0.5),
         "geodesic": _quality("geodesic", 10, 100, 0.375, 0.125)}
    out = findings(rows, _study(q), 0.1)
    assert "fused (25.0) ties 2D (25.0) at PCK@0.1, +0.0 points on 10 test pairs" in out
    assert "3D (50.0) beats 2D (25.0) at PCK@0.1, +25.0 points on 10 test pairs" in out
    assert "3D (50.0) is 37.5 points below oracle (87.5) at PCK@0.1" in out
    assert "fused (25.0) is 62.5 points below oracle (87.5) at PCK@0.1" in out
    assert ("sphere pseudo-label precision 50.0 % is higher than cyclic-only 25.0 % (keeping 50 "
            "of 100 candidates, recall 50.0 %)") in out
    assert "geodesic precision (37.5 %) is NOT higher than sphere (50.0 %)" in out
    # no adapter trained: named, and no adapter comparison is made
    assert "no adapter for ['cyclic', 'sphere', 'geodesic']: no pair kept 2 labels" in out
    assert not any(x.startswith("adapter") for x in out)


def test_findings_adapter_rows_and_label_counts():
    rows = {"2d": _row("2D", 0.1, 0.5), "adapter_geodesic": _row("geo", 0.1, 0.25),
            "adapter_cyclic": _row("cyc", 0.1, 0.5)}
    q = {"cyclic": _quality("cyclic", 4, 4, 0.5, 1.0),
         "geodesic": _quality("geodesic", 2, 4, 0.5, 0.5)}
    out = findings(rows, _study(q, runs={"cyclic": None, "geodesic": None},
                                train_pairs={"cyclic": 2, "geodesic": 1},
                                train_labels={"cyclic": 4, "geodesic": 2}), 0.1)
    assert "geo (25.0) does NOT beat 2D (50.0) at PCK@0.1, -25.0 points on 10 test pairs" in out
    assert "geo (25.0) does NOT beat cyc (50.0) at PCK@0.1, -25.0 points on 10 test pairs" in out
    assert any("(cyclic-only 4 labels on 2 pairs, geodesic-filtered 2 labels on 1 pairs)" in x
               for x in out)
    assert not any(x.startswith("no adapter") for x in out)


def test_demo_settings_rejects_negative_figures():
    # before: accepted, and the report then drew every test pair but the last (pairs[:-1])
    with pytest.raises(ValueError, match="figures"):
        DemoSettings(figures=-1)
    assert DemoSettings(figures=0).figures == 0


# -- results.json comparison ------------------------------------------------------------------

_DOC = {"rows": [{"key": "2d", "pck": {"0.1": 0.25}, "num_pairs": 3}],
        "stage1": {"images": 6, "median_iou_after": 0.75, "yaw_accuracy": float("nan")},
        "adapters": {"geodesic": {"steps": 4, "seconds": 1.5}},
        "timings_s": {"total": 10.0}}


def test_results_differences_ignores_timings_only():
    other = json.loads(json.dumps(_DOC))            # NaN survives the round trip
    other["timings_s"] = {"total": 99.0, "stage1": 1.0}
    other["adapters"]["geodesic"]["seconds"] = 7.0
    assert set(TIMING_KEYS) == {"timings_s", "seconds"}
    assert results_differences(_DOC, other) == []


def test_results_differences_names_each_change():
    other = json.loads(json.dumps(_DOC))
    other["rows"][0]["pck"]["0.1"] = 0.25 + 1e-12
    other["stage1"]["yaw_accuracy"] = 1.0
    del other["stage1"]["images"]
    other["extra"] = 1
    assert results_differences(_DOC, other) == [
        f"rows[0].pck.0.1: 0.25 != {0.25 + 1e-12!r}",
        "stage1.images: only in the first",
        "stage1.yaw_accuracy: nan != 1.0",
        "extra: only in the second"]
    assert results_differences(_DOC, other, rel_tol=1e-9)[0] == "stage1.images: only in the first"
    assert results_differences({"a": [1, 2]}, {"a": [1]}) == ["a: 2 items != 1 items"]
    assert results_differences({"a": True}, {"a": 1}) == ["a: True != 1"]


def _compare_module():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_demo.py"
    spec = importlib.util.spec_from_file_location("compare_demo", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_compare_demo_script(tmp_path, capsys):
    cmp = _compare_module()
    page = render_report(_content())
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(_DOC))
        (tmp_path / name / "report.html").write_text(page)
    other = json.loads(json.dumps(_DOC))
    other["timings_s"]["total"] = 1.0
    (tmp_path / "b" / "results.json").write_text(json.dumps(other))
    assert cmp.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert len(cmp.report_tables(page)) == 3
    (tmp_path / "b" / "report.html").write_text(page.replace("50.0", "50.1"))
    assert cmp.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert "report.html table 0: differs" in capsys.readouterr().out
    (tmp_path / "b" / "results.json").unlink()
    assert cmp.main([str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    assert "results.json: not found" in capsys.readouterr().err


# -- the report page --------------------------------------------------------------------------

def _content(**kw):
    base = dict(level="realistic x1",
                table=format_table([_row("2D <XFeat>", 0.25, 0.5)], (0.05, 0.1)),
                findings=("a < b & c",),
                label_table="| filter | labels kept |\n|---|---|\n| geodesic | 3 / 9 |",
                stage1={"images": 6, "median_iou_after": 0.8125})
    return ReportContent(**{**base, **kw})


def test_html_table_cells_and_escaping():
    assert html_table("| a | b<c |\n|---|---|\n| 1 | 2 |") == (
        "<table border='1' cellpadding='4'><tr><th>a</th><th>b&lt;c</th></tr>"
        "<tr><td>1</td><td>2</td></tr></table>")
    with pytest.raises(ValueError, match="header"):
        html_table("| a |")


def test_render_report_sections():
    page = render_report(_content(figures=(Figure("figures/pair_0.png", "pair 1: x, y"),)))
    assert "<b>realistic x1</b>" in page and "<a href" not in page
    assert "<td>2D &lt;XFeat&gt;</td><td>25.0</td>" in page      # the rows table, escaped
    assert "<li>a &lt; b &amp; c</li>" in page
    assert "<td>geodesic</td><td>3 / 9</td>" in page
    assert "<tr><td>images</td><td>6</td></tr><tr><td>median_iou_after</td><td>0.812</td></tr>" \
        in page
    assert ("<figure><img src='figures/pair_0.png' style='max-width:100%'><figcaption>pair 1: "
            "x, y</figcaption></figure>") in page
    assert "PCK against error level" not in page and "figures/labels.png" not in page
    # order: rows table, findings, labels, stage 1, dataset, figures
    keys = ["Test pairs", "What this shows", "Pseudo-labels", "Stage 1", "data/preview.png",
            "figures/pair_0.png"]
    assert [page.index(k) for k in keys] == sorted(page.index(k) for k in keys)


def test_render_report_links_sweep_and_labels():
    page = render_report(_content(
        links=(Link("viewer.html", "interactive viewer"),),
        label_figure=Figure("figures/labels.png", "green = correct"),
        sweep_note="sweep.png not found"))
    assert "<p><a href='viewer.html'>interactive viewer</a></p>" in page
    assert page.index("viewer.html") < page.index("Test pairs")
    assert "<h2>PCK against error level</h2><p>sweep.png not found</p>" in page
    assert page.index("figures/labels.png") < page.index("PCK against error level")
    page = render_report(_content(sweep_figure=Figure("figures/error_sweep.png", "sweep")))
    assert "<h2>PCK against error level</h2><figure><img src='figures/error_sweep.png'" in page


# -- the refinement figure --------------------------------------------------------------------

def test_refinement_figure_outlines(tmp_path):
    from PIL import Image

    image = np.full((40, 60, 3), 7, np.uint8)
    mask, before, after = (np.zeros((40, 60), bool) for _ in range(3))
    mask[5:15, 5:15] = True
    before[20:30, 5:15] = True
    after[5:35, 30:55] = True
    path = save_refinement_figure(tmp_path / "r.png", image, mask, before, after)
    out = np.asarray(Image.open(path).convert("RGB"))
    assert tuple(out[5, 10]) == MASK and tuple(out[20, 10]) == BEFORE
    assert tuple(out[5, 40]) == AFTER and tuple(out[34, 54]) == AFTER
    assert tuple(out[10, 10]) == (7, 7, 7) and tuple(out[20, 42]) == (7, 7, 7)  # insides
    assert (image == 7).all()                                   # the input is not drawn on
    with pytest.raises(ValueError, match="masks must be"):
        save_refinement_figure(tmp_path / "bad.png", image, mask[:10], before, after)
    assert not (tmp_path / "bad.png").exists()


# -- the CLI ------------------------------------------------------------------------------------

def test_cli_demo_defaults_are_the_settings_defaults(monkeypatch, tmp_path):
    import geocorr.demo
    from geocorr.cli import app

    seen = []
    monkeypatch.setattr(geocorr.demo, "run_demo", lambda out, s: seen.append((out, s)))
    r = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d")])
    assert r.exit_code == 0, r.output
    assert seen[0][1] == replace(DemoSettings(), sweep_figure="benchmarks/results/error_sweep.png")
    r = CliRunner().invoke(app, [
        "demo", "--out", str(tmp_path / "e"), "--seed", "3", "--categories", "car,dog",
        "--images-per-category", "7", "--test-pairs", "2", "--label-pairs", "5",
        "--train-steps", "6", "--adapter-context", "--sim-errors", "hard", "--sim-scale", "0.5",
        "--no-oracle-row", "--constant-part-weight", "--part-weight", "0.5"])
    assert r.exit_code == 0, r.output
    s = seen[1][1]
    assert (s.seed, s.categories, s.images_per_category, s.test_pairs) == (3, ("car", "dog"), 7, 2)
    assert s.labels.pairs.pairs_per_category == 5 and s.train.steps == 6
    assert s.labels.pairs.seed == DemoSettings().labels.pairs.seed     # the rest untouched
    assert (s.adapter_context, s.sim_errors, s.sim_scale, s.oracle_row) == (True, "hard", 0.5,
                                                                            False)
    assert s.fusion.part_weight == 0.5 and s.fusion.confidence is None
    r = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "f"), "--sim-errors", "perfect"])
    assert r.exit_code == 2 and "perfect" in r.output and len(seen) == 2
    assert not math.isnan(s.sim_scale)

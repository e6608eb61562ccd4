"""``run_demo``: the demo's steps chained, ``results.json`` written, the summary printed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from geocorr.atomic import write_text_atomic
from geocorr.demo.evaluate import evaluate_step
from geocorr.demo.features import features_step
from geocorr.demo.report import report_step
from geocorr.demo.results import results_dict
from geocorr.demo.settings import DemoSettings
from geocorr.demo.stage1 import oracle_step, stage1_line, stage1_step
from geocorr.demo.stage3 import stage3_step
from geocorr.demo.synth import synth_step
from geocorr.report.html import Link
from geocorr.viewer import write_demo_viewer

__all__ = ["run_demo"]


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Record the block's wall-clock seconds as ``timings[name]``."""
    t = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - t


def run_demo(out: str | Path, settings: DemoSettings | None = None, progress: bool = True,
             log: Callable[[str], None] = print) -> dict:
    """Run the demo into ``out`` (created; must be empty or absent) and return the results dict.

    The steps, each returning the record the next ones take: :func:`synth_step`
    -> :func:`stage1_step` (+ :func:`oracle_step`) -> :func:`features_step` ->
    :func:`stage3_step` -> :func:`evaluate_step`; then ``results.json``
    (:func:`results_dict`), the interactive viewer of a few test pairs
    (``viewer.html``, :func:`geocorr.viewer.write_demo_viewer`: pairs where the
    2D match is a twin swap and the fused one is not, when there are any) and
    :func:`report_step`, whose page links the viewer.

    Raises:
        ValueError: ``out`` exists and is not empty (nothing is written).
    """
    s = settings or DemoSettings()
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"--out {out}: directory is not empty; pass a new folder")
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()

    with _timed(timings, "synth"):
        data = synth_step(out, s, progress, log)
    with _timed(timings, "stage1"):
        stage1 = stage1_step(out, data, progress, log)
    with _timed(timings, "oracle"):
        oracle = oracle_step(out, data, s, progress, log)
    if oracle is None:
        del timings["oracle"]
    with _timed(timings, "features"):
        features = features_step(out, data, stage1, oracle, s, log)
    with _timed(timings, "stage3"):
        stage3 = stage3_step(out, data, stage1, features, s, progress, log)
    with _timed(timings, "evaluate"):
        evaluation = evaluate_step(data, features, stage3, s, log)
    timings["total"] = time.perf_counter() - t_start

    results = results_dict(out, s, stage1, oracle, stage3, evaluation, timings)
    write_text_atomic(out / "results.json", json.dumps(results, indent=2, default=float))
    viewer = write_demo_viewer(out, out / "viewer.html")
    fixed = sum(len(k) for k in viewer.showcase)
    report_step(out, s, data, stage1, features, stage3, evaluation,
                links=[Link("viewer.html", "interactive viewer: click a point, see each feature "
                                           "kind's match")])
    log("")
    log(evaluation.table)
    log("")
    log("Pseudo-labels on the trn pairs (precision / recall in %, scored against GroundTruth/):")
    log(stage3.table)
    log("")
    for line in evaluation.findings:
        log(f"- {line}")
    log("")
    log(f"stage 1 at {s.sim_errors} x{s.sim_scale:g}: {stage1_line(stage1.errors)} "
        "(scored against GroundTruth/)")
    log(f"viewer: {len(viewer.showcase)} test pairs, {fixed} keypoints where 2D swaps twins and "
        f"fused does not -> {out / 'viewer.html'}")
    log(f"total {timings['total']:.0f} s; wrote {out / 'results.json'}, {out / 'report.html'} "
        f"and {out / 'viewer.html'}")
    return results

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
    (:func:`results_dict`) and :func:`report_step`.

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
    report_step(out, s, data, stage1, features, stage3, evaluation)
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
    log(f"total {timings['total']:.0f} s; wrote {out / 'results.json'} and {out / 'report.html'}")
    return results

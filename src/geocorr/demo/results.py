"""The demo's ``results.json``: every number of every step, as one dict."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from geocorr.demo.evaluate import DemoEvaluation
from geocorr.demo.settings import DemoSettings
from geocorr.demo.stage1 import Stage1Run, stage1_summary
from geocorr.demo.stage3 import DemoStage3

__all__ = ["TIMING_KEYS", "results_dict", "results_differences"]

TIMING_KEYS = ("timings_s", "seconds")
"""Keys of :func:`results_dict` whose values are wall-clock seconds (differ run to run)."""

_MISSING = object()


def results_dict(out: str | Path, settings: DemoSettings, stage1: Stage1Run,
                 oracle: Stage1Run | None, stage3: DemoStage3, evaluation: DemoEvaluation,
                 timings_s: Mapping[str, float]) -> dict:
    """``results.json`` of one demo run.

    Args:
        out: the demo's output folder (stores and runs are recorded relative to it).
        settings: what ran.
        stage1: stage 1 (scored against the truth: ``stage1``).
        oracle: the oracle-level stage 1 (``oracle_stage1``), or ``None``.
        stage3: the filter study (``pseudo_labels``, ``adapters``).
        evaluation: the rows and findings.
        timings_s: seconds per step (``stage3_*``: the study's own phases are added).

    Returns:
        ``settings``, ``error_level``, ``rows``, ``pseudo_labels``, ``adapters``,
        ``findings``, ``stage1`` (+ ``oracle_stage1``), ``timings_s``.
    """
    out, s, study = Path(out), settings, stage3.study
    return {
        "settings": asdict(s),
        "error_level": {"level": s.sim_errors, "scale": s.sim_scale,
                        "oracle_row": oracle is not None},
        "rows": [{"key": k, **asdict(r), **{m: {str(a): v for a, v in getattr(r, m).items()}
                                            for m in ("pck", "pck_geometry_aware", "swap_rate")}}
                 for k, r in evaluation.rows.items()],
        "pseudo_labels": {
            "split": stage3.labels.split, "pairs": len(study.pairs),
            "candidates": int(sum(len(c) for c in study.candidates)),
            "filters": {f: asdict(q) for f, q in study.quality.items()},
            "stores": {f: str(p.relative_to(out)) for f, p in study.stores.items()},
            "scored_by": "GroundTruth/ via check_correspondences (evaluation only)"},
        "adapters": {f: {"train_pairs": study.train_pairs[f], "labels": study.train_labels[f],
                         "run": str(r.best_path.parent.relative_to(out)), "steps": r.step,
                         "best_val_loss": r.best_val_loss,
                         "seconds": study.timings_s.get(f"train_{f}")}
                     for f, r in study.runs.items()},
        "findings": list(evaluation.findings),
        "stage1": stage1_summary(stage1.errors),
        **({"oracle_stage1": stage1_summary(oracle.errors)} if oracle is not None else {}),
        "timings_s": {**timings_s, **{f"stage3_{k}": v for k, v in study.timings_s.items()}},
    }


def results_differences(a: Any, b: Any, ignore: Sequence[str] = TIMING_KEYS,
                        rel_tol: float = 0.0, where: str = "") -> list[str]:
    """Where two ``results.json`` dicts differ, timing keys aside.

    Dicts are compared key by key (order ignored), lists item by item;
    numbers are equal when ``math.isclose(x, y, rel_tol=rel_tol)`` (default:
    exactly equal; two NaNs are equal), booleans only to booleans;
    everything else with ``==``.

    Args:
        a, b: the two documents (``json.load`` of each file).
        ignore: keys skipped at any depth (:data:`TIMING_KEYS`).
        rel_tol: relative tolerance for numbers (0: numerically identical).
        where: path prefix of the messages (for recursion).

    Returns:
        One line per difference (``rows[3].pck.0.1: 0.25 != 0.5``); empty when equal.
    """
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in list(a) + [k for k in b if k not in a]:
            if k in ignore:
                continue
            x, y = a.get(k, _MISSING), b.get(k, _MISSING)
            at = f"{where}.{k}" if where else str(k)
            if x is _MISSING or y is _MISSING:
                out.append(f"{at}: only in {'the first' if y is _MISSING else 'the second'}")
            else:
                out += results_differences(x, y, ignore, rel_tol, at)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items != {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in results_differences(x, y, ignore, rel_tol, f"{where}[{i}]")]
    if isinstance(a, bool) or isinstance(b, bool):
        return [] if type(a) is type(b) and a == b else [f"{where}: {a!r} != {b!r}"]
    if isinstance(a, int | float) and isinstance(b, int | float):
        if (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel_tol, abs_tol=0.0):
            return []
        return [f"{where}: {a!r} != {b!r}"]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]

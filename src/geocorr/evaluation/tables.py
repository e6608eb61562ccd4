"""Human-readable tables and atomic JSON output of evaluation results."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.table import Table

from geocorr.atomic import write_json_atomic as _write_json
from geocorr.evaluation.pck import PCK, PCKReport

__all__ = ["pck_table", "breakdown_table", "swap_line", "group_lines", "write_json_atomic",
           "format_pct"]

_FLAG_NAMES = {0: "easy", 1: "medium", 2: "hard"}


def format_pct(value: float) -> str:
    """A fraction as a percentage with one decimal, ``"-"`` for NaN."""
    return "-" if math.isnan(value) else f"{100 * value:.1f}"


def _row(label: str, p: PCK, alphas: tuple[float, ...]) -> list[str]:
    return ([label, str(p.num_pairs), str(p.num_keypoints)]
            + [format_pct(p.per_image[a]) for a in alphas]
            + [format_pct(p.per_keypoint[a]) for a in alphas])


def _table(title: str, alphas: tuple[float, ...], first: str) -> Table:
    t = Table(title=title)
    t.add_column(first, no_wrap=True)
    t.add_column("pairs", justify="right")
    t.add_column("kpts", justify="right")
    for a in alphas:
        t.add_column(f"img@{a:g}", justify="right")
    for a in alphas:
        t.add_column(f"kpt@{a:g}", justify="right")
    return t


def pck_table(report: PCKReport, title: str = "PCK (%)") -> Table:
    """Per-category rows, then ``all``, ``category mean`` and ``geometry-aware`` rows.

    Columns: per-image PCK (``img@alpha``) then per-keypoint PCK (``kpt@alpha``), in percent.
    """
    a = report.alphas
    t = _table(title, a, "category")
    for cat, p in report.per_category.items():
        t.add_row(*_row(cat, p, a))
    t.add_section()
    t.add_row(*_row("all", report.overall, a), style="bold")
    if len(report.per_category) > 1:
        t.add_row("category mean", "", "", *[format_pct(report.category_mean[x]) for x in a],
                  *[""] * len(a))
    t.add_row(*_row("geometry-aware", report.geometry_aware, a))
    return t


def breakdown_table(report: PCKReport, title: str = "PCK (%) by difficulty") -> Table | None:
    """SPair difficulty breakdown rows (``flag = value``), or ``None`` without flags."""
    if not report.breakdowns:
        return None
    a = report.alphas
    t = _table(title, a, "flag")
    for flag, groups in report.breakdowns.items():
        for value, p in groups.items():
            label = f"{flag}={value}"
            if flag in ("viewpoint_variation", "scale_variation") and value in _FLAG_NAMES:
                label += f" ({_FLAG_NAMES[value]})"
            t.add_row(*_row(label, p, a))
    return t


def swap_line(report: PCKReport) -> str | None:
    """One line with the geometry-aware keypoints' swap rates, ``None`` without such keypoints."""
    geo = report.geometry_aware
    if not geo.num_keypoints or not geo.swap_rate:
        return None
    rates = ", ".join(f"@{a:g} {format_pct(geo.swap_rate[a])}%" for a in report.alphas)
    return (f"geometry-aware keypoints predicted onto a same-part twin (left/right or "
            f"repeated part): {rates}")


def group_lines(keypoint_groups: Mapping[str, Mapping[str, Any]]) -> tuple[str, list[str]]:
    """Which group table each category used, and one warning per category without groups.

    Args:
        keypoint_groups: :attr:`geocorr.evaluation.scorer.EvalResult.keypoint_groups`.

    Returns:
        ``(line, warnings)``: ``"keypoint groups: car 9 (Meta/categories.json), ..."``
        and e.g. ``"category 'cow' has no keypoint groups (source: none): no
        geometry-aware subset or swap rate for it"``.
    """
    parts = [f"{c} {g['num_groups']} ({g['source']})" for c, g in sorted(keypoint_groups.items())]
    warnings = [f"category {c!r} has no keypoint groups (source: {g['source']}): no "
                f"geometry-aware subset or swap rate for it; add its groups to "
                f"Meta/categories.json (docs/evaluation.md)"
                for c, g in sorted(keypoint_groups.items()) if not g["num_groups"]]
    return "keypoint groups: " + ", ".join(parts), warnings


def write_json_atomic(obj: Any, path: str | Path) -> None:
    """Write JSON to ``path`` atomically (strict JSON: NaN is an error)."""
    _write_json(path, obj, indent=2, allow_nan=False)

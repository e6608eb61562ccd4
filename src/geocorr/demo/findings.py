"""Plain statements of what the demo's rows and filters show (and do not)."""

from __future__ import annotations

from collections.abc import Mapping

from geocorr.demo.rows import FILTER_NAMES, DemoRow
from geocorr.evaluation.filter_study import FilterStudy

__all__ = ["findings"]


def findings(rows: Mapping[str, DemoRow], study: FilterStudy, alpha: float) -> list[str]:
    """Which 3D-aware rows beat which 2D rows at PCK@``alpha`` (and not); filter precisions.

    Args:
        rows: row key -> row (keys as :func:`geocorr.demo.evaluate.evaluate_step`
            makes them; a comparison with a missing row is skipped).
        study: the filter study (label quality, adapters, label counts).
        alpha: the PCK level compared.

    Returns:
        One sentence per comparison, saying "beats" / "ties" / "does NOT beat"
        (or "higher" / "NOT higher") with the margin.
    """
    out = []

    def cmp(a: str, b: str) -> None:
        if a not in rows or b not in rows:
            return
        x, y = 100 * rows[a].pck[alpha], 100 * rows[b].pck[alpha]
        verdict = "beats" if x > y else ("ties" if x == y else "does NOT beat")
        out.append(f"{rows[a].name} ({x:.1f}) {verdict} {rows[b].name} ({y:.1f}) at "
                   f"PCK@{alpha:g}, {x - y:+.1f} points on {rows[a].num_pairs} test pairs")

    for key in ("fused", "3d", "adapter_geodesic", "adapter_sphere", "adapter_geodesic_fused"):
        cmp(key, "2d")
    for key in ("adapter_geodesic", "adapter_sphere", "adapter_cyclic"):
        cmp(key, "2d_context")
    cmp("adapter_geodesic", "adapter_cyclic")
    cmp("adapter_geodesic", "adapter_sphere")
    cmp("adapter_geodesic_fused", "fused")
    if "3d_oracle" in rows:
        top = 100 * rows["3d_oracle"].pck[alpha]
        for key in ("3d", "fused", *(k for k in rows if k.startswith("adapter_")
                                     and k.endswith("_fused"))):
            if key in rows:
                x = 100 * rows[key].pck[alpha]
                out.append(f"{rows[key].name} ({x:.1f}) is {top - x:.1f} points below "
                           f"{rows['3d_oracle'].name} ({top:.1f}) at PCK@{alpha:g}")
    q = study.quality
    for f in ("sphere", "geodesic"):
        if f in q and "cyclic" in q:
            a, b = q[f], q["cyclic"]
            verdict = "higher" if a.precision > b.precision else "NOT higher"
            out.append(f"{f} pseudo-label precision {100 * a.precision:.1f} % is {verdict} than "
                       f"cyclic-only {100 * b.precision:.1f} % (keeping {a.kept} of "
                       f"{a.candidates} candidates, recall {100 * a.recall:.1f} %)")
    if "geodesic" in q and "sphere" in q:
        a, b = q["geodesic"], q["sphere"]
        verdict = "higher" if a.precision > b.precision else "NOT higher"
        out.append(f"geodesic precision ({100 * a.precision:.1f} %) is {verdict} than sphere "
                   f"({100 * b.precision:.1f} %)")
    if study.runs:
        counts = ", ".join(f"{FILTER_NAMES.get(f, f)} {study.train_labels[f]} labels on "
                           f"{study.train_pairs[f]} pairs" for f in study.runs)
        out.append(f"the adapters share seed and step budget but not label counts ({counts}); "
                   "the adapter rows compare filters at equal training time, not equal labels")
    missing = [f for f in q if f not in study.runs]
    if missing:
        out.append(f"no adapter for {missing}: no pair kept 2 labels")
    return out

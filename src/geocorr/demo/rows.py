"""A row of the demo's comparison, the table of rows, and how rows name things."""

from __future__ import annotations

from dataclasses import dataclass

from geocorr.evaluation.scorer import EvalResult
from geocorr.features.part_fusion import PartFusionSettings

__all__ = ["DemoRow", "FILTER_NAMES", "format_table", "weight_name"]

FILTER_NAMES = {"cyclic": "cyclic-only", "sphere": "sphere-filtered",
                "geodesic": "geodesic-filtered"}
"""How rows, findings and figures name each filter's labels."""


@dataclass(frozen=True)
class DemoRow:
    """One method's scores on the test pairs.

    Attributes:
        name: method label.
        pck: ``alpha ->`` per-image PCK.
        pck_geometry_aware: ``alpha ->`` per-image PCK on the geometry-aware subset.
        swap_rate: ``alpha ->`` fraction of keypoints predicted onto a same-part twin.
        num_pairs: scored pairs.
    """

    name: str
    pck: dict[float, float]
    pck_geometry_aware: dict[float, float]
    swap_rate: dict[float, float]
    num_pairs: int

    @classmethod
    def from_result(cls, name: str, result: EvalResult) -> DemoRow:
        """The row of one :func:`~geocorr.evaluation.scorer.evaluate_pairs` result."""
        rep = result.report
        return cls(name=name, pck=dict(rep.overall.per_image),
                   pck_geometry_aware=dict(rep.geometry_aware.per_image),
                   swap_rate=dict(rep.overall.swap_rate), num_pairs=rep.overall.num_pairs)


def format_table(rows: list[DemoRow], alphas: tuple[float, ...]) -> str:
    """A markdown table of the rows (percentages)."""
    head = ["method"] + [f"PCK@{a:g}" for a in alphas] + [f"geo-aware PCK@{a:g}" for a in alphas]
    head += [f"swap@{alphas[-1]:g}", "pairs"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.name] + [f"{100 * r.pck[a]:.1f}" for a in alphas]
        cells += [f"{100 * r.pck_geometry_aware[a]:.1f}" for a in alphas]
        cells += [f"{100 * r.swap_rate.get(alphas[-1], float('nan')):.1f}", str(r.num_pairs)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def weight_name(fusion: PartFusionSettings) -> str:
    """``weight 0.9 x confidence`` / ``weight 0.9``: how a row's part weight was set."""
    return (f"weight {fusion.part_weight:g}"
            + (" x confidence" if fusion.confidence is not None else ""))

"""Precision / recall of pseudo-label filters, scored on one candidate set.

The candidates and each filter's keep-mask come from stage 3
(:func:`geocorr.labels.pair.label_all_filters`, one
:class:`~geocorr.labels.pair.FilteredCandidates` per pair, so every filter
was shown the same candidates). :func:`label_quality` scores a keep-mask
against per-candidate correctness (from ground truth, which only evaluation
code reads):

- precision = correct kept / kept;
- recall = correct kept / correct candidates (cyclic-only keeps every
  candidate, so its recall is 1 by definition).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from geocorr.labels.pair import FilteredCandidates
from geocorr.labels.settings import FILTERS, Filter

__all__ = ["LabelQuality", "label_quality", "filter_quality", "quality_table"]


@dataclass(frozen=True)
class LabelQuality:
    """Precision and recall of one filter's kept labels.

    Attributes:
        filter: filter name.
        candidates: candidates shown to the filter.
        kept: labels kept.
        correct_candidates: correct candidates (by ground truth).
        correct_kept: correct labels kept.
        precision: ``correct_kept / kept`` (NaN when nothing is kept).
        recall: ``correct_kept / correct_candidates`` (NaN when no candidate is correct).
    """

    filter: str
    candidates: int
    kept: int
    correct_candidates: int
    correct_kept: int
    precision: float
    recall: float


def label_quality(name: str, keep: np.ndarray, correct: np.ndarray) -> LabelQuality:
    """Precision / recall of a keep-mask.

    Args:
        name: filter name (recorded).
        keep: ``(N,)`` bool, the filter's decisions.
        correct: ``(N,)`` bool, which candidates are right.

    Raises:
        ValueError: shapes differ or are not 1-D.
    """
    keep = np.asarray(keep, dtype=bool)
    correct = np.asarray(correct, dtype=bool)
    if keep.ndim != 1 or keep.shape != correct.shape:
        raise ValueError(f"keep and correct must be equal (N,) arrays, got {keep.shape} and "
                         f"{correct.shape}")
    k, c, ck = int(keep.sum()), int(correct.sum()), int((keep & correct).sum())
    return LabelQuality(filter=name, candidates=len(keep), kept=k, correct_candidates=c,
                        correct_kept=ck, precision=ck / k if k else float("nan"),
                        recall=ck / c if c else float("nan"))


def filter_quality(pairs: Sequence[FilteredCandidates], correct: Sequence[np.ndarray],
                   filters: Sequence[Filter] = FILTERS) -> dict[str, LabelQuality]:
    """Pooled precision / recall of each filter over many pairs.

    Args:
        pairs: per pair, its :class:`FilteredCandidates`.
        correct: per pair, ``(N_i,)`` bool correctness of its candidates.
        filters: filter names to score.

    Returns:
        filter name -> :class:`LabelQuality` over all candidates of all pairs.

    Raises:
        ValueError: lengths differ.
    """
    if len(pairs) != len(correct):
        raise ValueError(f"{len(pairs)} pairs but {len(correct)} correctness arrays")
    for i, (p, c) in enumerate(zip(pairs, correct, strict=True)):
        if len(np.asarray(c)) != len(p):
            raise ValueError(f"pair {i} ({p.candidates.pair_id}): {len(p)} candidates but "
                             f"{len(np.asarray(c))} correctness values")
    def cat(xs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(xs) if xs else np.zeros(0, bool)

    corr = cat([np.asarray(c, dtype=bool) for c in correct])
    return {f: label_quality(f, cat([p.keep[f] for p in pairs]), corr) for f in filters}


def quality_table(quality: Mapping[str, LabelQuality]) -> str:
    """A markdown table: filter, labels kept, precision, recall (percentages)."""
    lines = ["| filter | labels kept | precision | recall |", "|---|---|---|---|"]
    for q in quality.values():
        lines.append(f"| {q.filter} | {q.kept} / {q.candidates} | {100 * q.precision:.1f} | "
                     f"{100 * q.recall:.1f} |")
    return "\n".join(lines)

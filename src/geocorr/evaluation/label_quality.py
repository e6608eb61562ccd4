"""Pseudo-label filters compared on one candidate set, and their precision / recall.

:func:`label_all_filters` runs the pseudo-label runner's per-pair function
(:func:`geocorr.labels.runner.label_pair`) once with the ``"cyclic"`` filter,
which returns every candidate (NN on the fused features + relaxed cyclic
consistency), then asks both 3D filters about exactly those candidates
(:func:`~geocorr.matching.verify.verify_geodesic` and
:func:`~geocorr.matching.sphere.verify_sphere` with the run's settings). The
result holds one keep-mask per filter, so the filters differ only in what they
keep, never in what they were shown. :meth:`FilteredCandidates.labels` cuts
out one filter's :class:`~geocorr.labels.store.PairLabels`, exactly what
``label_pair`` with that filter writes into a store.

:func:`label_quality` scores a keep-mask against per-candidate correctness
(from ground truth, which only evaluation code reads):

- precision = correct kept / kept;
- recall = correct kept / correct candidates (cyclic-only keeps every
  candidate, so its recall is 1 by definition).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from geocorr.labels.runner import LabelSettings, PairInputs, label_pair
from geocorr.labels.store import PairLabels
from geocorr.matching.pairs import ImagePair
from geocorr.matching.sphere import verify_sphere
from geocorr.matching.verify import verify_geodesic

__all__ = ["FILTERS", "FilteredCandidates", "LabelQuality", "label_all_filters",
           "label_quality", "filter_quality", "quality_table"]

FILTERS: tuple[str, ...] = ("cyclic", "sphere", "geodesic")
"""The compared filters, weakest first."""


@dataclass(frozen=True, eq=False)
class FilteredCandidates:
    """One pair's candidates and what each filter keeps.

    Attributes:
        candidates: every candidate (the ``"cyclic"`` labels): ``src_uv``,
            ``trg_uv`` ``(N, 2)`` pixels, ``score`` ``(N,)`` fused similarity.
        keep: filter name -> ``(N,)`` bool keep-mask (``"cyclic"``: all True).
        errors: filter name -> ``(N,)`` float64 filter error (NaN where a ray
            missed a mesh; zeros for ``"cyclic"``).
        n_missed: filter name -> candidates dropped because a ray missed.
    """

    candidates: PairLabels
    keep: dict[str, np.ndarray]
    errors: dict[str, np.ndarray]
    n_missed: dict[str, int]

    def __len__(self) -> int:
        return len(self.candidates.src_uv)

    def labels(self, name: str) -> PairLabels:
        """The pair's labels under filter ``name`` (as ``label_pair`` with that filter returns).

        Raises:
            ValueError: unknown filter name.
        """
        if name not in self.keep:
            raise ValueError(f"unknown filter {name!r}; have {sorted(self.keep)}")
        c = self.candidates
        k = np.flatnonzero(self.keep[name])
        return replace(c, src_uv=c.src_uv[k], trg_uv=c.trg_uv[k], score=c.score[k],
                       error=np.asarray(self.errors[name][k], np.float64),
                       n_missed=int(self.n_missed[name]))


def label_all_filters(pair: ImagePair, inputs: PairInputs, settings: LabelSettings | None = None
                      ) -> FilteredCandidates:
    """Candidates of one pair with the cyclic, sphere and geodesic keep-masks (module doc).

    Args:
        pair: the pair (``inputs`` must be its two images).
        inputs: both images' :class:`~geocorr.labels.runner.ImageInputs`.
        settings: run settings (matching, verification and sphere thresholds);
            its ``filter`` field is ignored.

    Returns:
        :class:`FilteredCandidates`.
    """
    s = settings or LabelSettings()
    cand = label_pair(pair, inputs, replace(s, filter="cyclic"))
    n = len(cand.src_uv)
    keep = {"cyclic": np.ones(n, dtype=bool)}
    errors = {"cyclic": np.zeros(n)}
    missed = {"cyclic": 0}
    src, trg = inputs.source, inputs.target
    for name in ("sphere", "geodesic"):
        if n == 0:
            keep[name], errors[name], missed[name] = np.zeros(0, bool), np.zeros(0), 0
            continue
        if name == "geodesic":
            res = verify_geodesic(src.index, trg.index, src.camera, trg.camera, cand.src_uv,
                                  cand.trg_uv, s.verify)
        else:
            res = verify_sphere(src.index, trg.index, src.camera, trg.camera, cand.src_uv,
                                cand.trg_uv, s.sphere)
        keep[name] = np.asarray(res.kept, dtype=bool)
        errors[name] = np.asarray(res.errors, dtype=np.float64)
        missed[name] = int(res.n_missed)
    return FilteredCandidates(cand, keep, errors, missed)


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
                   filters: Sequence[str] = FILTERS) -> dict[str, LabelQuality]:
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

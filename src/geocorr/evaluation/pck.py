"""Percentage of correct keypoints, as recent semantic-correspondence work computes it.

Protocol (docs/evaluation.md):

1. Both images are resized keeping their aspect ratio and zero-padded to a
   ``S x S`` canvas (:func:`geocorr.geometry.resize_and_pad`; ``S =``
   :data:`DEFAULT_CANVAS`, 840 for DINOv2 at patch 14). Ground-truth and
   predicted target keypoints move to the target canvas by ``S / max(W, H)``
   plus the padding offset, and the threshold size ``T`` scales by the same
   factor.
2. ``T`` is measured on the target (:data:`geocorr.data.pairs.ThresholdRule`):
   the object box for SPair-71k / AP-10K, the image for PF-PASCAL, the
   keypoints' box for PF-WILLOW.
3. A keypoint is correct when its error is **strictly** below ``alpha * T``.
4. Per-image PCK = mean over pairs of each pair's fraction correct (the
   tables' default); per-keypoint PCK = all correct / all keypoints. Pairs
   without keypoints take no part in either.

The resize is isotropic, so up to float rounding the numbers equal those
computed in original pixels; the canvas is kept because that is what the
published numbers used, and ``size=None`` switches it off.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from geocorr.data.pairs import KeypointPair, ThresholdRule
from geocorr.evaluation.canvas import DEFAULT_CANVAS
from geocorr.evaluation.geometry_aware import geometry_aware_mask
from geocorr.geometry.image_transform import resize_and_pad

__all__ = [
    "DEFAULT_CANVAS",
    "PairScore",
    "PCK",
    "PCKReport",
    "threshold_size",
    "twin_positions",
    "score_pair",
    "pck",
    "pck_report",
]

SPAIR_BREAKDOWN_FLAGS = ("viewpoint_variation", "scale_variation", "truncation", "occlusion")
"""SPair-71k's difficulty annotations that :func:`pck_report` groups pairs by."""


def threshold_size(pair: KeypointPair, rule: ThresholdRule) -> float:
    """The PCK size ``T`` of a pair in original target pixels.

    Args:
        pair: the annotated pair.
        rule: ``"bbox"`` (``max(x2-x1, y2-y1)`` of ``trg_bbox``), ``"image"``
            (``max(W, H)`` of the target image) or ``"keypoints"`` (``max`` side
            of the target keypoints' bounding box).

    Raises:
        ValueError: the rule needs a field the pair lacks, or ``T`` is not positive.
    """
    if rule == "bbox":
        if pair.trg_bbox is None:
            raise ValueError(f"pair {pair.pair_id}: threshold rule 'bbox' needs trg_bbox")
        x1, y1, x2, y2 = pair.trg_bbox
        t = max(x2 - x1, y2 - y1)
    elif rule == "image":
        t = float(max(pair.trg_size))
    elif rule == "keypoints":
        if pair.num_keypoints == 0:
            raise ValueError(f"pair {pair.pair_id}: threshold rule 'keypoints' needs keypoints")
        span = pair.trg_kps.max(axis=0) - pair.trg_kps.min(axis=0)
        t = float(span.max())
    else:
        raise ValueError(f"unknown threshold rule {rule!r}; use 'bbox', 'image' or 'keypoints'")
    if not t > 0:
        raise ValueError(f"pair {pair.pair_id}: PCK threshold size must be positive, got {t}")
    return float(t)


@dataclass(frozen=True, eq=False)
class PairScore:
    """Errors of one pair's predictions, ready to be thresholded at any ``alpha``.

    Attributes:
        pair_id: the pair's id.
        category: the pair's category.
        errors: ``(N,)`` float64 distances prediction -> ground truth, in
            target-canvas pixels (original pixels when scored with ``size=None``).
        threshold: ``T`` in the same pixels; a keypoint is correct at ``alpha``
            when ``error < alpha * threshold``.
        kps_ids: ``(N,)`` int64 keypoint ids.
        geometry_aware: ``(N,)`` bool, keypoints in the geometry-aware subset.
        flags: the pair's difficulty flags (copied from the pair).
        twin_errors: ``(N,)`` float64 distance from each prediction to the nearest
            target position of another member of its same-part group (its
            left/right or repeated twin), same pixels as ``errors``; ``inf`` when
            no twin is visible in the target or its position is unknown.
    """

    pair_id: str
    category: str
    errors: np.ndarray
    threshold: float
    kps_ids: np.ndarray
    geometry_aware: np.ndarray
    flags: Mapping[str, int] = field(default_factory=dict)
    twin_errors: np.ndarray | None = None

    def correct(self, alpha: float) -> np.ndarray:
        """``(N,)`` bool, strict ``error < alpha * T``."""
        return self.errors < alpha * self.threshold

    def swapped(self, alpha: float) -> np.ndarray:
        """``(N,)`` bool: wrong at ``alpha`` but within ``alpha * T`` of a same-part twin."""
        if self.twin_errors is None:
            return np.zeros(len(self.errors), dtype=bool)
        return ~self.correct(alpha) & (self.twin_errors < alpha * self.threshold)


def score_pair(pair: KeypointPair, pred_trg_kps: np.ndarray, *, rule: ThresholdRule,
               size: int | None = DEFAULT_CANVAS, groups: Sequence[Sequence[int]] = ()
               ) -> PairScore:
    """Score predicted target keypoints of one pair.

    Args:
        pair: the annotated pair.
        pred_trg_kps: ``(N, 2)`` predictions ``(x, y)`` in original target pixels,
            aligned with ``pair.src_kps``.
        rule: how ``T`` is measured (see :func:`threshold_size`).
        size: canvas side ``S`` of the resize-and-pad protocol; ``None`` scores
            in original pixels.
        groups: the category's same-part groups for the geometry-aware subset.

    Returns:
        The pair's :class:`PairScore`.

    Raises:
        ValueError: wrong prediction shape or non-finite predictions.
    """
    pred = np.asarray(pred_trg_kps, dtype=np.float64)
    if pred.shape != pair.trg_kps.shape:
        raise ValueError(f"pair {pair.pair_id}: expected {pair.num_keypoints} predicted "
                         f"keypoints of shape {pair.trg_kps.shape}, got {pred.shape}")
    if not np.all(np.isfinite(pred)):
        raise ValueError(f"pair {pair.pair_id}: predictions contain NaN or inf")
    t = threshold_size(pair, rule)
    gt = pair.trg_kps
    if size is not None:
        tf = resize_and_pad(pair.trg_size[0], pair.trg_size[1], size)
        gt = tf.points_to_canvas(gt)
        pred = tf.points_to_canvas(pred)
        t = t * tf.scale
    errors = np.linalg.norm(pred - gt, axis=1) if len(gt) else np.zeros(0)
    groups = tuple(tuple(int(i) for i in g) for g in groups)
    aware = geometry_aware_mask(pair.kps_ids, pair.trg_visible_ids, groups)
    twins = twin_positions(pair, groups)
    twin_err = np.full(len(gt), np.inf)
    for i, pos in twins.items():
        if size is not None:
            pos = tf.points_to_canvas(pos)
        twin_err[i] = np.linalg.norm(pos - pred[i], axis=1).min()
    return PairScore(pair_id=pair.pair_id, category=pair.category, errors=errors, threshold=t,
                     kps_ids=pair.kps_ids.copy(), geometry_aware=aware, flags=dict(pair.flags),
                     twin_errors=twin_err)


def twin_positions(pair: KeypointPair, groups: Sequence[Sequence[int]]
                   ) -> dict[int, np.ndarray]:
    """Keypoint index -> ``(K, 2)`` original target positions of its visible same-part twins."""
    if pair.trg_visible_ids is None or pair.trg_visible_kps is None:
        return {}
    where = {int(k): pair.trg_visible_kps[j] for j, k in enumerate(pair.trg_visible_ids)}
    out = {}
    for i, k in enumerate(int(x) for x in pair.kps_ids):
        twins = [where[m] for g in groups if k in g for m in g if m != k and m in where]
        if twins:
            out[i] = np.asarray(twins, dtype=np.float64).reshape(-1, 2)
    return out


@dataclass(frozen=True)
class PCK:
    """PCK of a set of pairs at several ``alpha``; values are fractions in ``[0, 1]``.

    Attributes:
        per_image: ``alpha -> `` mean over pairs of each pair's fraction correct
            (NaN when no pair has a keypoint).
        per_keypoint: ``alpha -> `` correct keypoints / all keypoints (NaN when none).
        num_pairs: pairs that contributed (at least one keypoint).
        num_keypoints: keypoints that contributed.
        swap_rate: ``alpha ->`` fraction of the keypoints predicted onto a
            same-part twin instead (wrong, yet within ``alpha * T`` of a visible
            twin's position; see :meth:`PairScore.swapped`); NaN when none.
    """

    per_image: dict[float, float]
    per_keypoint: dict[float, float]
    num_pairs: int
    num_keypoints: int
    swap_rate: dict[float, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"per_image": {_key(a): _num(v) for a, v in self.per_image.items()},
                "per_keypoint": {_key(a): _num(v) for a, v in self.per_keypoint.items()},
                "swap_rate": {_key(a): _num(v) for a, v in self.swap_rate.items()},
                "num_pairs": self.num_pairs, "num_keypoints": self.num_keypoints}


def pck(scores: Iterable[PairScore], alphas: Sequence[float],
        subset: Literal["all", "geometry_aware"] = "all") -> PCK:
    """Per-image and per-keypoint PCK of scored pairs.

    Args:
        scores: scored pairs.
        alphas: PCK levels, e.g. ``(0.01, 0.05, 0.1)``.
        subset: ``"geometry_aware"`` keeps only each pair's geometry-aware
            keypoints (pairs with none drop out).

    Returns:
        A :class:`PCK`.
    """
    if subset not in ("all", "geometry_aware"):
        raise ValueError(f"subset must be 'all' or 'geometry_aware', got {subset!r}")
    alphas = tuple(float(a) for a in alphas)
    fractions: dict[float, list[float]] = {a: [] for a in alphas}
    correct = dict.fromkeys(alphas, 0)
    swaps = dict.fromkeys(alphas, 0)
    total = 0
    pairs = 0
    for s in scores:
        keep = s.geometry_aware if subset == "geometry_aware" else np.ones(len(s.errors), bool)
        n = int(keep.sum())
        if n == 0:
            continue
        pairs += 1
        total += n
        for a in alphas:
            c = int(s.correct(a)[keep].sum())
            correct[a] += c
            swaps[a] += int(s.swapped(a)[keep].sum())
            fractions[a].append(c / n)
    per_image = {a: float(np.mean(fractions[a])) if pairs else float("nan") for a in alphas}
    per_kpt = {a: correct[a] / total if total else float("nan") for a in alphas}
    swap = {a: swaps[a] / total if total else float("nan") for a in alphas}
    return PCK(per_image=per_image, per_keypoint=per_kpt, num_pairs=pairs, num_keypoints=total,
               swap_rate=swap)


@dataclass(frozen=True)
class PCKReport:
    """Everything the benchmark tables report for one set of predictions.

    Attributes:
        alphas: PCK levels.
        overall: PCK over all pairs (per-image = mean over all pairs).
        category_mean: ``alpha ->`` per-image PCK averaged over categories
            (some papers' "mean" column); NaN when no category has pairs.
        per_category: ``category -> PCK``.
        geometry_aware: PCK over the geometry-aware subset.
        geometry_aware_per_category: ``category -> PCK`` on that subset
            (categories without geometry-aware keypoints are left out).
        breakdowns: ``flag -> value -> PCK`` for SPair's difficulty flags
            present on the pairs (e.g. ``"viewpoint_variation" -> {0: ..., 1: ..., 2: ...}``).
    """

    alphas: tuple[float, ...]
    overall: PCK
    category_mean: dict[float, float]
    per_category: dict[str, PCK]
    geometry_aware: PCK
    geometry_aware_per_category: dict[str, PCK]
    breakdowns: dict[str, dict[int, PCK]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict (fractions, not percentages; ``alpha`` keys as strings)."""
        return {
            "alphas": list(self.alphas),
            "overall": self.overall.to_dict(),
            "category_mean": {_key(a): _num(v) for a, v in self.category_mean.items()},
            "per_category": {c: p.to_dict() for c, p in self.per_category.items()},
            "geometry_aware": self.geometry_aware.to_dict(),
            "geometry_aware_per_category": {c: p.to_dict()
                                            for c, p in self.geometry_aware_per_category.items()},
            "breakdowns": {f: {str(v): p.to_dict() for v, p in d.items()}
                           for f, d in self.breakdowns.items()},
        }


def pck_report(scores: Sequence[PairScore], alphas: Sequence[float],
               breakdown_flags: Sequence[str] = SPAIR_BREAKDOWN_FLAGS) -> PCKReport:
    """Overall, per-category, geometry-aware and per-difficulty PCK.

    Args:
        scores: scored pairs (see :func:`score_pair`).
        alphas: PCK levels.
        breakdown_flags: pair flags to group by; flags absent from every pair are skipped.

    Returns:
        A :class:`PCKReport`.
    """
    alphas = tuple(float(a) for a in alphas)
    by_cat: dict[str, list[PairScore]] = {}
    for s in scores:
        by_cat.setdefault(s.category, []).append(s)
    per_cat = {c: pck(v, alphas) for c, v in sorted(by_cat.items())}
    geo_cat = {c: pck(v, alphas, "geometry_aware") for c, v in sorted(by_cat.items())}
    geo_cat = {c: p for c, p in geo_cat.items() if p.num_pairs}
    valid = [p for p in per_cat.values() if p.num_pairs]
    cat_mean = {a: float(np.mean([p.per_image[a] for p in valid])) if valid else float("nan")
                for a in alphas}
    breakdowns: dict[str, dict[int, PCK]] = {}
    for flag in breakdown_flags:
        groups: dict[int, list[PairScore]] = {}
        for s in scores:
            if flag in s.flags:
                groups.setdefault(int(s.flags[flag]), []).append(s)
        if groups:
            breakdowns[flag] = {v: pck(g, alphas) for v, g in sorted(groups.items())}
    return PCKReport(alphas=alphas, overall=pck(scores, alphas), category_mean=cat_mean,
                     per_category=per_cat, geometry_aware=pck(scores, alphas, "geometry_aware"),
                     geometry_aware_per_category=geo_cat, breakdowns=breakdowns)


def _key(alpha: float) -> str:
    return f"{alpha:g}"


def _num(v: float) -> float | None:
    return None if np.isnan(v) else float(v)

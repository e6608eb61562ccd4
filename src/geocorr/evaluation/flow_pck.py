"""Flow PCK for TSS: mask-restricted end-point-error accuracy, both directions per pair.

For a direction ``source -> target`` (:class:`geocorr.data.tss.TSSDirection`)
a method predicts, for every target pixel, where it lies in the source: a
flow ``(H_t, W_t, 2)`` on the target grid, like the ground truth
``flow<target>.flo``. A pixel of the target mask (with known ground truth) is
correct when ``|pred - gt| <= alpha * L`` with ``L = max(H, W)`` of the
*source* image (TSS's convention: ``<=``, unlike keypoint PCK's strict ``<``).
Each direction's PCK is the fraction of its mask pixels that are correct;
a subset's PCK is the mean over its directions; errors are in original pixels.

From two feature maps, :func:`geocorr.evaluation.predict.predict_flow` gives
such a flow (cell-level matches interpolated to every target pixel).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geocorr.data.flo import flow_known, read_flo
from geocorr.data.tss import TSSDirection

__all__ = ["flow_pck", "TSSScore", "TSSResult", "score_tss_flow", "flow_directory_predictor"]


def flow_pck(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, size: float,
             alpha: float = 0.05) -> float:
    """Fraction of masked pixels whose flow end-point error is ``<= alpha * size``.

    Args:
        pred: ``(H, W, 2)`` predicted flow.
        gt: ``(H, W, 2)`` ground-truth flow (entries above 1e9 = unknown, excluded).
        mask: ``(H, W)`` bool pixels to score.
        size: ``L`` in pixels.
        alpha: PCK level.

    Returns:
        The fraction, NaN when no pixel is scored.

    Raises:
        ValueError: shapes disagree or the prediction has NaN/inf on scored pixels.
    """
    pred, gt, mask = np.asarray(pred), np.asarray(gt), np.asarray(mask, bool)
    if pred.shape != gt.shape or gt.ndim != 3 or gt.shape[2] != 2:
        raise ValueError(f"predicted flow {pred.shape} must match ground truth {gt.shape} "
                         f"(H, W, 2)")
    if mask.shape != gt.shape[:2]:
        raise ValueError(f"mask {mask.shape} must be {gt.shape[:2]}")
    keep = mask & flow_known(gt)
    if not keep.any():
        return float("nan")
    p, g = pred[keep].astype(np.float64), gt[keep].astype(np.float64)
    if not np.all(np.isfinite(p)):
        raise ValueError("predicted flow has NaN or inf on scored pixels")
    epe = np.linalg.norm(p - g, axis=1)
    return float(np.mean(epe <= alpha * size))


@dataclass(frozen=True)
class TSSScore:
    """PCK of one direction.

    Attributes:
        key: ``"<subset>/<pair>:<source>-><target>"``.
        subset: the pair's subset.
        pck: fraction of mask pixels within ``alpha * L`` (NaN when the mask is empty).
        num_pixels: scored pixels.
    """

    key: str
    subset: str
    pck: float
    num_pixels: int


@dataclass(frozen=True)
class TSSResult:
    """TSS flow PCK at one ``alpha``.

    Attributes:
        alpha: PCK level (0.05 in the literature).
        per_subset: ``subset ->`` mean PCK over its directions.
        mean: mean over all directions.
        subset_mean: mean of the subset means (the tables' "avg." column).
        scores: every direction's score.
    """

    alpha: float
    per_subset: dict[str, float]
    mean: float
    subset_mean: float
    scores: tuple[TSSScore, ...]

    def to_dict(self) -> dict[str, Any]:
        def num(v: float) -> float | None:
            return None if np.isnan(v) else float(v)

        return {"dataset": "tss", "alpha": self.alpha,
                "per_subset": {k: num(v) for k, v in self.per_subset.items()},
                "mean": num(self.mean), "subset_mean": num(self.subset_mean),
                "num_directions": len(self.scores)}


def score_tss_flow(directions: Iterable[TSSDirection],
                   predict_flow: Callable[[TSSDirection], np.ndarray],
                   alpha: float = 0.05, progress: bool = False) -> TSSResult:
    """Score predicted flows on TSS.

    Args:
        directions: e.g. ``TSSDataset(root).directions()``.
        predict_flow: ``direction -> (H_t, W_t, 2)`` flow on the target grid
            pointing into the source (same convention as the ground truth).
        alpha: PCK level.
        progress: show a rich progress bar.

    Returns:
        A :class:`TSSResult`.
    """
    dirs = list(directions)
    it: Iterable[TSSDirection] = dirs
    if progress:
        from rich.progress import track

        it = track(dirs, description="TSS flow PCK")
    scores = []
    for d in it:
        gt, mask = d.gt_flow(), d.mask()
        if mask.shape != gt.shape[:2]:
            raise ValueError(f"TSS {d.key}: mask {mask.shape} and flow {gt.shape[:2]} differ")
        pred = np.asarray(predict_flow(d))
        if pred.shape != gt.shape:
            raise ValueError(f"TSS {d.key}: predicted flow must be {gt.shape}, got {pred.shape}")
        w, h = d.source_size()
        n = int((mask & flow_known(gt)).sum())
        scores.append(TSSScore(key=d.key, subset=d.pair.subset,
                               pck=flow_pck(pred, gt, mask, max(w, h), alpha), num_pixels=n))
    per_subset: dict[str, float] = {}
    for s in dict.fromkeys(x.subset for x in scores):
        vals = [x.pck for x in scores if x.subset == s and not np.isnan(x.pck)]
        per_subset[s] = float(np.mean(vals)) if vals else float("nan")
    allv = [x.pck for x in scores if not np.isnan(x.pck)]
    subv = [v for v in per_subset.values() if not np.isnan(v)]
    return TSSResult(alpha=float(alpha), per_subset=per_subset,
                     mean=float(np.mean(allv)) if allv else float("nan"),
                     subset_mean=float(np.mean(subv)) if subv else float("nan"),
                     scores=tuple(scores))


def flow_directory_predictor(pred_root: str | Path) -> Callable[[TSSDirection], np.ndarray]:
    """Predictions stored like the ground truth: ``PRED/<subset>/<pair>/flow<target>.flo``.

    ``flow2.flo`` answers direction ``1 -> 2`` (on image 2's grid, into image 1),
    ``flow1.flo`` direction ``2 -> 1``.
    """
    pred_root = Path(pred_root)
    if pred_root.exists() and not pred_root.is_dir():
        raise NotADirectoryError(f"TSS predictions {pred_root} is a file; expected a directory "
                                 "PRED/<subset>/<pair>/flow{1,2}.flo")
    if not pred_root.is_dir():
        raise FileNotFoundError(f"TSS predictions directory {pred_root} does not exist")

    def predict(d: TSSDirection) -> np.ndarray:
        path = pred_root / d.pair.pair_id / f"flow{d.target}.flo"
        if not path.is_file():
            raise FileNotFoundError(f"TSS {d.key}: missing prediction {path}")
        return read_flo(path)

    return predict

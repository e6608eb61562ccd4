"""Predicted masks: the true visible mask degraded the way SAM 3's masks are.

:func:`predict_mask` applies, in order (settings:
:class:`geocorr.data.synth.errors.MaskErrors`, pixel sizes at a 384 px long
side, scaled with the image):

1. boundary bias and jitter: the mask's signed distance (pixels, > 0
   inside) plus a per-image offset ``b ~ N(0, bias_px)`` plus a smooth noise
   field of std ``jitter_px`` and correlation length ``jitter_length_px``,
   thresholded at 0 -- the boundary moves by ``b + noise`` pixels;
2. thin-part dropouts: structures that an opening with a disk of radius
   ``thin_radius_px`` removes are thin; each connected one is dropped with
   probability ``thin_drop_prob``;
3. holes: with probability ``hole_prob``, 1-2 discs of radius ``hole_size
   * sqrt(area)`` inside the mask are cleared;
4. leakage: when a flat occluder touches the object, with probability
   ``leak_prob`` the occluder's pixels within ``leak_px`` of the mask join it.

The predicted mask is written beside the true one
(``PredictedMasks/<cat>/<stem>.png``); the pipeline reads it, the true mask
is for scoring.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocorr.data.synth.errors import MaskErrors

__all__ = ["PredictedMask", "predict_mask", "mask_iou", "REFERENCE_SIDE"]

REFERENCE_SIDE = 384
"""Long image side at which :class:`MaskErrors`' pixel sizes hold."""


@dataclass(frozen=True, eq=False)
class PredictedMask:
    """A predicted mask and the true values of its errors.

    Attributes:
        mask: ``(H, W)`` bool predicted mask.
        iou: IoU with the true mask.
        bias_px: the applied dilation (> 0) / erosion (< 0), pixels.
        dropped_thin: thin structures dropped.
        holes: holes cut.
        leaked_px: occluder pixels added.
    """

    mask: np.ndarray
    iou: float
    bias_px: float
    dropped_thin: int
    holes: int
    leaked_px: int

    def record(self) -> dict:
        """JSON-ready true values."""
        return {"iou": float(self.iou), "bias_px": float(self.bias_px),
                "dropped_thin": int(self.dropped_thin), "holes": int(self.holes),
                "leaked_px": int(self.leaked_px)}


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two bool masks (1 when both are empty)."""
    union = int((a | b).sum())
    return float((a & b).sum() / union) if union else 1.0


def _disk(radius: int) -> np.ndarray:
    r = int(radius)
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    return x * x + y * y <= r * r


def predict_mask(mask: np.ndarray, occluder: np.ndarray | None, rng: np.random.Generator,
                 errors: MaskErrors | None) -> PredictedMask:
    """Degrade the true visible mask (module docstring).

    Args:
        mask: ``(H, W)`` bool true visible mask.
        occluder: ``(H, W)`` bool pixels of a flat occluder in front of the
            object, or ``None``.
        rng: the image's error generator (untouched when ``errors`` is ``None``).
        errors: magnitudes; ``None`` returns the true mask (the oracle).

    Returns:
        A :class:`PredictedMask`.
    """
    from scipy import ndimage

    truth = np.asarray(mask, bool)
    if errors is None or not truth.any():
        return PredictedMask(truth.copy(), 1.0, 0.0, 0, 0, 0)
    H, W = truth.shape
    px = max(H, W) / REFERENCE_SIDE
    inside = ndimage.distance_transform_edt(truth)
    outside = ndimage.distance_transform_edt(~truth)
    sdf = np.where(truth, inside - 0.5, 0.5 - outside)
    bias = float(rng.normal(0.0, errors.bias_px * px))
    noise = ndimage.gaussian_filter(rng.normal(size=(H, W)), errors.jitter_length_px * px)
    std = float(noise.std())
    if std > 0:
        noise *= errors.jitter_px * px / std
    pred = sdf + bias + noise > 0

    radius = max(1, int(round(errors.thin_radius_px * px)))
    opened = ndimage.binary_opening(truth, structure=_disk(radius))
    thin, n_thin = ndimage.label(truth & ~opened)
    drop = np.flatnonzero(rng.random(n_thin) < errors.thin_drop_prob) + 1
    if len(drop):
        pred &= ~np.isin(thin, drop)

    holes = 0
    if rng.random() < errors.hole_prob:
        r = max(1.0, errors.hole_size * float(np.sqrt(truth.sum())))
        deep = np.argwhere(inside > r)
        count = int(rng.integers(1, 3))
        yy, xx = np.mgrid[0:H, 0:W]
        for _ in range(count if len(deep) else 0):
            cy, cx = deep[int(rng.integers(len(deep)))]
            pred &= (yy - cy) ** 2 + (xx - cx) ** 2 > r * r
            holes += 1

    leaked = 0
    if occluder is not None and occluder.any():
        near = outside <= errors.leak_px * px
        zone = np.asarray(occluder, bool) & near & ~pred
        if zone.any() and (np.asarray(occluder, bool) & (outside <= 1.5)).any() \
                and rng.random() < errors.leak_prob:
            pred |= zone
            leaked = int(zone.sum())
    return PredictedMask(pred, mask_iou(pred, truth), bias / px, len(drop), holes, leaked)

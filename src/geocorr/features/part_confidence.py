"""How far to trust an image's rendered part descriptor: a stage-1 confidence in ``[0, 1]``.

The rendered part descriptor is exactly as right as stage 1: a mesh that does
not sit on the mask, a yaw the vote barely decided, a continuous alignment
with a flat cost profile or a large residual, or an instance that is
symmetric under quarter turns each make "this pixel shows the front-left
wheel" less certain. :func:`stage1_confidence` turns what stage 1 measured
into one number, the product of one factor per signal (each in ``[0, 1]``,
non-decreasing in how good the signal is, 1 when it is good enough). Each
factor reads as "the chance that this part of stage 1 put the descriptor's
parts where they are", which is why a tied vote is not 0:

* **fit** -- the final mask IoU of the mesh rendered with the stage-1 camera
  (computed from the mesh, camera and mask, so user meshes get it too):
  ``clip((IoU - iou_min) / (iou_ok - iou_min), 0, 1)``. A refinement that
  stage 1 flags as failed is one whose IoU stayed low; the IoU says by how much.
* **yaw** -- the 8-view vote's margin as a fraction of its votes (record
  ``margin`` / sum of ``yaw.tally``): ``(1 + clip(fraction / margin_ok, 0, 1)) / 2``,
  i.e. 1/2 for a tie (a coin flip between two turns) and 1 for a clear vote.
* **canonical** -- the continuous alignment's confidence (record
  ``canonical.confidence``: 0 = flat Chamfer profile, ~0.3 = a clear
  minimum): ``clip(confidence / canonical_ok, 0, 1)``.
* **residual** -- the alignment's Chamfer residual to the category reference
  (record ``canonical.residual``, RMS radii): 1 up to ``residual_ok`` (0.15),
  0 from ``residual_max`` (0.6), linear between. It is the signal that
  reveals a mesh whose *parts* are wrong although it sits on its mask (wrong
  proportions, an invented hidden side): its shape then differs from the
  category reference by more than instances differ among themselves. On the
  procedural benchmark error-free reconstructions have residuals 0.16-0.32,
  half the realistic errors 0.20-0.42, twice the realistic errors 0.33-0.85
  (a box against itself 0.08, stretched 1.3x 0.19, 2.2x 0.44). A tighter
  ramp, 0.3-0.4, chosen on seeds 1-2 of ``benchmarks/fusion_levels.py``, did
  not beat this one on held-out seeds 3-4 (two failed checks each; 1.4-2.9
  points lower PCK@0.1 at every realistic level, fewer twin swaps at 4 of 6):
  ``benchmarks/RESULTS.md``, "Fusion".
* **symmetry** -- ``1 / order`` for an instance symmetric under ``360 / order``
  degree turns (record ``yaw_symmetry``): geometry decides its front only up
  to that turn, so the descriptor's front/back (and left/right for order 4) is
  right with probability ``1 / order``.

A signal the record does not have (no record for a user's mesh, a record
written before the canonical step existed) gives factor 1: the mesh is then
trusted as far as the signals that exist allow. :mod:`geocorr.features.part_fusion`
multiplies the part weight by the confidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from geocorr.geometry.camera import Camera

__all__ = ["ConfidenceSettings", "Stage1Confidence", "render_iou", "stage1_confidence"]


@dataclass(frozen=True)
class ConfidenceSettings:
    """Where each factor of :func:`stage1_confidence` starts and stops trusting.

    Attributes:
        iou_min: mask IoU at or below which the fit factor is 0 (0.5; stage-1
            refinement flags a failure below 0.6).
        iou_ok: mask IoU from which the fit factor is 1 (0.9: refined meshes
            at the simulator's ``oracle`` level reach a median of 0.93). With
            0.3 / 0.85 instead, images refined to IoU 0.6-0.7 at twice the
            realistic errors kept a part share near 0.8 although their 3D-only
            PCK@0.1 was 4-17 %, and the fused row fell 7.6 points below 2D
            (``benchmarks/RESULTS.md``, "Fusion").
        margin_ok: vote margin (fraction of the votes) from which the yaw
            factor is 1 (0.5: e.g. 6 of 8 views against 2).
        canonical_ok: alignment confidence from which the canonical factor is 1
            (0.3: "a clear minimum" in :class:`geocorr.reconstruct.canonical.Alignment`).
        residual_ok: Chamfer residual (RMS radii) up to which the residual
            factor is 1.
        residual_max: residual from which the residual factor is 0 (the mesh
            is another shape than the category reference). 0.3 / 0.4 instead
            (module doc) was measured and not kept.
        symmetry: apply the ``1 / order`` symmetry factor.
    """

    iou_min: float = 0.5
    iou_ok: float = 0.9
    margin_ok: float = 0.5
    canonical_ok: float = 0.3
    residual_ok: float = 0.15
    residual_max: float = 0.6
    symmetry: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.iou_min < self.iou_ok <= 1.0:
            raise ValueError(f"ConfidenceSettings needs 0 <= iou_min < iou_ok <= 1, got "
                             f"iou_min={self.iou_min}, iou_ok={self.iou_ok}")
        for name in ("margin_ok", "canonical_ok"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"ConfidenceSettings.{name} must be in (0, 1], got "
                                 f"{getattr(self, name)}")
        if not 0.0 <= self.residual_ok < self.residual_max:
            raise ValueError(f"ConfidenceSettings needs 0 <= residual_ok < residual_max, got "
                             f"{self.residual_ok}, {self.residual_max}")


@dataclass(frozen=True)
class Stage1Confidence:
    """One image's stage-1 confidence and its factors (module doc).

    Attributes:
        iou: mask IoU of the rendered mesh.
        fit: fit factor (from ``iou`` and the refinement's failure flag).
        yaw: yaw-vote factor.
        canonical: continuous-alignment confidence factor.
        residual: alignment-residual factor.
        symmetry: symmetry factor ``1 / order``.
        value: the product of the factors, in ``[0, 1]``.
    """

    iou: float
    fit: float
    yaw: float
    canonical: float
    residual: float
    symmetry: float
    value: float

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def render_iou(vertices: np.ndarray, faces: np.ndarray, camera: Camera,
               mask: np.ndarray) -> float:
    """IoU of the mesh's silhouette under ``camera`` with the ``(H, W)`` bool ``mask``.

    Returns 0 when both are empty.
    """
    from geocorr.geometry.raster import rasterize

    m = np.asarray(mask, dtype=bool)
    if m.shape != (camera.height, camera.width):
        raise ValueError(f"mask has shape {m.shape}, camera expects "
                         f"(H={camera.height}, W={camera.width})")
    sil = rasterize(np.asarray(vertices, dtype=np.float64), np.asarray(faces), camera).mask
    union = int((sil | m).sum())
    return float((sil & m).sum() / union) if union else 0.0


def _ramp(x: float, lo: float, hi: float) -> float:
    """0 at or below ``lo``, 1 at or above ``hi``, linear between."""
    return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0))


def _number(d: Mapping[str, Any] | None, *keys: str) -> float | None:
    for k in keys:
        if not isinstance(d, Mapping) or k not in d:
            return None
        d = d[k]
    if d is None or isinstance(d, bool):
        return None
    try:
        x = float(d)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return x if np.isfinite(x) else None


def stage1_confidence(iou: float, record: Mapping[str, Any] | None = None,
                      settings: ConfidenceSettings | None = None) -> Stage1Confidence:
    """Confidence in an image's canonicalized mesh (module doc for the rule).

    Args:
        iou: mask IoU of the final mesh under the final camera (:func:`render_iou`).
        record: the image's stage-1 ``record.json`` dict, or ``None`` (a mesh
            from elsewhere: only the IoU is known).
        settings: :class:`ConfidenceSettings`.

    Returns:
        :class:`Stage1Confidence`; ``value`` is non-decreasing in ``iou``, the
        vote margin and the alignment confidence, non-increasing in the
        residual and the symmetry order.
    """
    s = settings or ConfidenceSettings()
    if not np.isfinite(iou) or not 0.0 <= iou <= 1.0:
        raise ValueError(f"iou must be in [0, 1], got {iou}")
    rec = record or {}
    fit = _ramp(iou, s.iou_min, s.iou_ok)
    yaw = 1.0
    margin = _number(rec, "margin")
    tally = (rec.get("yaw") or {}).get("tally") if isinstance(rec.get("yaw"), Mapping) else None
    if margin is not None and tally:
        total = float(np.sum(np.asarray(tally, dtype=np.float64)))
        if total > 0:
            yaw = 0.5 * (1.0 + _ramp(margin / total, 0.0, s.margin_ok))
    conf = _number(rec, "canonical", "confidence")
    canonical = 1.0 if conf is None else _ramp(conf, 0.0, s.canonical_ok)
    res = _number(rec, "canonical", "residual")
    residual = 1.0 if res is None else 1.0 - _ramp(res, s.residual_ok, s.residual_max)
    order = _number(rec, "yaw_symmetry")
    symmetry = 1.0 / max(1.0, order) if (s.symmetry and order is not None) else 1.0
    value = fit * yaw * canonical * residual * symmetry
    return Stage1Confidence(iou=float(iou), fit=fit, yaw=yaw, canonical=canonical,
                            residual=residual, symmetry=symmetry, value=float(value))

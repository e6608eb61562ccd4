"""Silhouette losses for render-and-compare refinement (method.md, stage 1 step 3).

Two losses compare a soft rendered silhouette ``S`` (values in ``[0, 1]``) with
a binary object mask ``M`` of the same size:

* :func:`dt_loss` — the *distance-transform* loss, which has a useful gradient
  even when ``S`` and ``M`` do not overlap. With ``M+`` the mask dilated by
  ``r`` pixels and ``D`` the image diagonal::

      phi_out = dist(p, M+)^2 / D^2             (0 inside M+)
      phi_in  = dist(p, outside of M)^2 / D^2   (0 outside M)
      L_DT = mean(S * phi_out) + mean((1 - S) * phi_in) - lambda * mean(S * phi_in)

* :func:`soft_iou_loss` — ``1 - sum(S M) / sum(S + M - S M)``, to sharpen once
  the render overlaps the mask.

Truncation at the image border: when the mask touches the border, the object
continues outside the image. :func:`distance_fields` therefore computes the
distances on a canvas padded by edge replication, so mask pixels at the border
count as *interior* (large ``phi_in``) rather than as the mask's edge, and
rendered mass outside the image is never penalised (it is not rendered).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["DistanceFields", "distance_fields", "dt_loss", "soft_iou_loss", "mask_iou"]


@dataclass(frozen=True, eq=False)
class DistanceFields:
    """Precomputed, normalised squared-distance fields of one mask.

    Attributes:
        phi_out: ``(H, W)`` float32, squared distance to the dilated mask ``M+``
            divided by the squared image diagonal; 0 inside ``M+``.
        phi_in: ``(H, W)`` float32, squared distance to the nearest pixel outside
            the mask divided by the squared image diagonal; 0 outside ``M``.
        dilated: ``(H, W)`` bool, the dilated mask ``M+``.
    """

    phi_out: np.ndarray
    phi_in: np.ndarray
    dilated: np.ndarray

    def tensors(self, device: torch.device | str = "cpu",
                dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """``(phi_out, phi_in)`` as tensors, each ``(H, W)``."""
        return (torch.as_tensor(self.phi_out, device=device, dtype=dtype),
                torch.as_tensor(self.phi_in, device=device, dtype=dtype))


def _check_mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"{name} must have shape (H, W), got {m.shape}")
    if m.size == 0:
        raise ValueError(f"{name} is empty (shape {m.shape})")
    return m.astype(bool)


def distance_fields(mask: np.ndarray, dilation_px: float = 2.0, *,
                    replicate_border: bool = True) -> DistanceFields:
    """Distance-transform fields of a mask, normalised by the image diagonal.

    Args:
        mask: ``(H, W)`` bool (or 0/1) object mask ``M``.
        dilation_px: radius ``r`` (pixels) of the dilation ``M -> M+``; tolerance
            for coarse mesh borders. ``0`` means no dilation.
        replicate_border: compute distances on a canvas padded by edge
            replication, so a mask that touches the image border continues
            beyond it (truncated objects). With ``False`` the outside of the
            image counts as background.

    Returns:
        :class:`DistanceFields` of the same ``(H, W)`` size.

    Raises:
        ValueError: ``mask`` is not 2-D, or ``dilation_px`` is negative.
    """
    from scipy.ndimage import distance_transform_edt

    m = _check_mask(mask)
    if dilation_px < 0:
        raise ValueError(f"dilation_px must be >= 0, got {dilation_px}")
    H, W = m.shape
    pad = max(H, W) if replicate_border else 1
    mode = "edge" if replicate_border else "constant"
    mp = np.pad(m, pad, mode=mode)
    diag2 = float(H * H + W * W)
    if mp.any():
        dist_to_mask = distance_transform_edt(~mp)
    else:
        # No mask at all: no pull anywhere; phi_out stays 0.
        dist_to_mask = np.zeros(mp.shape)
    dilated_p = dist_to_mask <= dilation_px
    if dilated_p.any():
        dist_out = np.maximum(dist_to_mask - dilation_px, 0.0)
    else:
        dist_out = np.zeros(mp.shape)
    dist_in = distance_transform_edt(mp) if (~mp).any() else np.full(mp.shape, float(pad))
    crop = (slice(pad, pad + H), slice(pad, pad + W))
    return DistanceFields(
        phi_out=(dist_out[crop] ** 2 / diag2).astype(np.float32),
        phi_in=(dist_in[crop] ** 2 / diag2).astype(np.float32),
        dilated=dilated_p[crop].copy(),
    )


def dt_loss(silhouette: torch.Tensor, phi_out: torch.Tensor, phi_in: torch.Tensor,
            coverage_weight: float = 0.5) -> torch.Tensor:
    """Distance-transform loss ``mean(S phi_out) + mean((1-S) phi_in) - lambda mean(S phi_in)``.

    Args:
        silhouette: ``(H, W)`` soft silhouette ``S`` in ``[0, 1]``.
        phi_out: ``(H, W)`` field from :func:`distance_fields`.
        phi_in: ``(H, W)`` field from :func:`distance_fields`.
        coverage_weight: ``lambda``, reward for covering the mask interior.

    Returns:
        Scalar tensor.
    """
    if silhouette.shape != phi_out.shape or silhouette.shape != phi_in.shape:
        raise ValueError(f"silhouette {tuple(silhouette.shape)}, phi_out {tuple(phi_out.shape)} "
                         f"and phi_in {tuple(phi_in.shape)} must have the same (H, W) shape")
    s = silhouette
    return ((s * phi_out).mean() + ((1.0 - s) * phi_in).mean()
            - coverage_weight * (s * phi_in).mean())


def soft_iou_loss(silhouette: torch.Tensor, mask: torch.Tensor, eps: float = 1e-6
                  ) -> torch.Tensor:
    """``1 - sum(S M) / sum(S + M - S M)``.

    Args:
        silhouette: ``(H, W)`` soft silhouette in ``[0, 1]``.
        mask: ``(H, W)`` target mask (bool or float in ``[0, 1]``).
        eps: guards the empty-union case (loss 1 when both are empty).

    Returns:
        Scalar tensor in ``[0, 1]``.
    """
    if silhouette.shape != mask.shape:
        raise ValueError(f"silhouette {tuple(silhouette.shape)} and mask {tuple(mask.shape)} "
                         "must have the same (H, W) shape")
    m = mask.to(silhouette.dtype)
    inter = (silhouette * m).sum()
    union = (silhouette + m - silhouette * m).sum()
    return 1.0 - inter / (union + eps)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Hard IoU of two ``(H, W)`` boolean masks; ``0`` when both are empty."""
    a = _check_mask(a, "a")
    b = _check_mask(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    union = np.logical_or(a, b).sum()
    if union == 0:
        return 0.0
    return float(np.logical_and(a, b).sum() / union)

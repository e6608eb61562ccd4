"""Training losses of the adapter: CLIP-style symmetric cross-entropy + soft-argmax EPE.

Point coordinates are in normalised grid units: ``(x, y)`` in ``[-1, 1]``,
``-1`` / ``1`` the outer edges of the grid (``grid_sample``'s
``align_corners=False`` convention), so cell ``j`` of ``w`` is centred at
``(2 j + 1) / w - 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from geocorr.adapter.settings import LossSettings

__all__ = ["LossSettings", "LossTerms", "sample_descriptors", "cell_centers_normalized",
           "clip_loss", "soft_argmax", "dense_epe_loss", "adapter_loss", "logit_scale"]


@dataclass(frozen=True)
class LossTerms:
    """One evaluation of :func:`adapter_loss`.

    Attributes:
        total: scalar tensor, weighted sum (differentiable).
        clip: scalar tensor, symmetric cross-entropy.
        epe: scalar tensor, mean soft-argmax end-point error (grid units).
    """

    total: torch.Tensor
    clip: torch.Tensor
    epe: torch.Tensor


def logit_scale(log_scale: torch.Tensor, max_scale: float) -> torch.Tensor:
    """``exp(log_scale)`` clamped to ``max_scale`` (gradient stops at the clamp, as in CLIP)."""
    return torch.clamp(log_scale, max=math.log(max_scale)).exp()


def sample_descriptors(desc: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample and L2-normalise descriptors at normalised points.

    Args:
        desc: ``(D, h, w)`` descriptor map.
        xy: ``(N, 2)`` points in normalised grid units (border-clamped).

    Returns:
        ``(N, D)`` unit vectors.
    """
    if desc.ndim != 3 or xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"sample_descriptors wants (D,h,w) and (N,2), got {tuple(desc.shape)}, "
                         f"{tuple(xy.shape)}")
    grid = xy.to(desc.dtype).view(1, 1, -1, 2)
    out = F.grid_sample(desc[None], grid, mode="bilinear", padding_mode="border",
                        align_corners=False)
    return F.normalize(out[0, :, 0].T, dim=1)


def cell_centers_normalized(h: int, w: int, dtype: torch.dtype = torch.float32,
                            device: torch.device | str = "cpu") -> torch.Tensor:
    """Cell centres in normalised grid units, ``(h * w, 2)`` as ``(x, y)``, row-major."""
    x = (2 * torch.arange(w, dtype=dtype, device=device) + 1) / w - 1
    y = (2 * torch.arange(h, dtype=dtype, device=device) + 1) / h - 1
    yy, xx = torch.meshgrid(y, x, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)


def clip_loss(src: torch.Tensor, trg: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-entropy: point ``i`` of ``src`` should pick point ``i`` of ``trg``.

    Args:
        src: ``(N, D)`` unit descriptors at the source pseudo-keypoints.
        trg: ``(N, D)`` unit descriptors at their matches.
        scale: scalar logit scale.

    Returns:
        Scalar, mean of the src->trg and trg->src cross-entropies.
    """
    logits = scale * src @ trg.T
    target = torch.arange(src.shape[0], device=src.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def soft_argmax(corr: torch.Tensor, h: int, w: int, beta: float) -> torch.Tensor:
    """Expected position under ``softmax(corr / beta)`` over a grid.

    Args:
        corr: ``(N, h * w)`` correlations (row-major cells).
        h, w: grid size.
        beta: temperature.

    Returns:
        ``(N, 2)`` expected ``(x, y)`` in normalised grid units.
    """
    p = torch.softmax(corr / beta, dim=1)
    return p @ cell_centers_normalized(h, w, corr.dtype, corr.device)


def dense_epe_loss(src_desc: torch.Tensor, trg_map: torch.Tensor, trg_xy: torch.Tensor,
                   beta: float) -> torch.Tensor:
    """Mean end-point error of the soft-argmax over the whole target correlation map.

    Args:
        src_desc: ``(N, D)`` unit descriptors at the source pseudo-keypoints.
        trg_map: ``(D, h, w)`` unit target descriptor map.
        trg_xy: ``(N, 2)`` matched target points, normalised grid units.
        beta: soft-argmax temperature.

    Returns:
        Scalar mean Euclidean error in normalised grid units.
    """
    D, h, w = trg_map.shape
    corr = src_desc @ trg_map.reshape(D, h * w)
    pred = soft_argmax(corr, h, w, beta)
    return torch.linalg.vector_norm(pred - trg_xy.to(pred.dtype), dim=1).mean()


def adapter_loss(src_map: torch.Tensor, trg_map: torch.Tensor, src_xy: torch.Tensor,
                 trg_xy: torch.Tensor, log_scale: torch.Tensor,
                 settings: LossSettings | None = None) -> LossTerms:
    """CLIP cross-entropy + dense EPE for one pair.

    Args:
        src_map: ``(D, h, w)`` adapted source descriptors (unit norm per cell).
        trg_map: ``(D, h, w)`` adapted target descriptors.
        src_xy: ``(N, 2)`` source pseudo-keypoints, normalised grid units.
        trg_xy: ``(N, 2)`` their matches.
        log_scale: scalar learnable log logit scale.
        settings: weights and temperatures.

    Returns:
        :class:`LossTerms`.
    """
    s = settings or LossSettings()
    if src_xy.shape != trg_xy.shape or src_xy.ndim != 2 or src_xy.shape[0] < 1:
        raise ValueError(f"src_xy and trg_xy must be equal (N>=1, 2), got {tuple(src_xy.shape)}"
                         f" and {tuple(trg_xy.shape)}")
    src_d = sample_descriptors(src_map, src_xy)
    trg_d = sample_descriptors(trg_map, trg_xy)
    ce = clip_loss(src_d, trg_d, logit_scale(log_scale, s.max_logit_scale))
    epe = dense_epe_loss(src_d, trg_map, trg_xy, s.beta)
    return LossTerms(total=s.clip_weight * ce + s.epe_weight * epe, clip=ce, epe=epe)

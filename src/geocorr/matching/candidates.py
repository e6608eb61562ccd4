"""Which feature cells are object foreground, and which of them are candidate source points."""

from __future__ import annotations

import numpy as np

from geocorr.features.base import FeatureMap

__all__ = ["grid_foreground", "candidate_cells"]


def grid_foreground(fmap: FeatureMap, mask: np.ndarray | None,
                    min_fraction: float = 0.5) -> np.ndarray:
    """Foreground cells of a feature grid from a pixel mask.

    A cell is foreground when at least ``min_fraction`` of the image pixels
    whose centres fall in it are in the mask. A cell smaller than a pixel
    (upsampled image) holds no pixel centre and uses the pixel nearest to its
    centre. Cells on the zero padding of the canvas are never foreground.

    Args:
        fmap: the feature map (grid ``(h, w)`` and its image transform).
        mask: ``(H, W)`` bool object mask of the original image, or ``None``
            for "the whole image".
        min_fraction: in ``(0, 1]``.

    Returns:
        ``(h, w)`` bool.
    """
    if not 0 < min_fraction <= 1:
        raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction}")
    tr = fmap.transform
    H, W = tr.src_height, tr.src_width
    if mask is None:
        mask = np.ones((H, W), dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (H, W):
        raise ValueError(f"mask has shape {mask.shape}, feature map {fmap.name!r} is for an "
                         f"image of (H={H}, W={W})")
    h, w = fmap.grid_size
    S = tr.size
    cols = np.floor((np.arange(W) * tr.scale + tr.left + 0.5) * w / S).astype(np.int64)
    rows = np.floor((np.arange(H) * tr.scale + tr.top + 0.5) * h / S).astype(np.int64)
    cols, rows = np.clip(cols, 0, w - 1), np.clip(rows, 0, h - 1)
    cell = (rows[:, None] * w + cols[None, :]).reshape(-1)
    total = np.bincount(cell, minlength=h * w)
    inside = np.bincount(cell, weights=mask.reshape(-1).astype(np.float64), minlength=h * w)
    fg = np.zeros(h * w, dtype=bool)
    has = total > 0
    fg[has] = inside[has] >= min_fraction * total[has] - 1e-9
    empty = np.flatnonzero(~has)
    if empty.size:
        c = fmap.cell_centers().reshape(-1, 2)[empty]
        pu, pv = np.rint(c[:, 0]).astype(np.int64), np.rint(c[:, 1]).astype(np.int64)
        ok = (pu >= 0) & (pu < W) & (pv >= 0) & (pv < H)
        fg[empty[ok]] = mask[pv[ok], pu[ok]]
    return fg.reshape(h, w)


def candidate_cells(foreground: np.ndarray, stride: int = 1) -> np.ndarray:
    """Flat indices of candidate source cells: foreground cells on a ``stride`` lattice.

    The lattice is ``i % stride == stride // 2`` and ``j % stride == stride // 2``
    (spatially uniform; ``stride = 1`` takes every foreground cell).

    Args:
        foreground: ``(h, w)`` bool.
        stride: lattice step ``k >= 1``.

    Returns:
        ``(N,)`` int64 flat indices ``i * w + j``, ascending.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    fg = np.asarray(foreground, dtype=bool)
    if fg.ndim != 2:
        raise ValueError(f"foreground must be (h, w), got {fg.shape}")
    h, w = fg.shape
    off = stride // 2
    lattice = np.zeros_like(fg)
    lattice[off::stride, off::stride] = True
    return np.flatnonzero(fg & lattice).astype(np.int64)

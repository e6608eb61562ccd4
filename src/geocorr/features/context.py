"""Image-wide context for local descriptors: pooled neighbourhoods and position in the object box.

A ViT's patch tokens carry image-wide context; a local CNN or hand-made
descriptor does not, so nothing computed from it (nearest neighbours, or an
adapter trained on top) can tell the left wheel of a car from the right one.
:func:`add_context` appends, per grid cell,

* the local descriptor average-pooled over larger square windows (one block
  per scale), pooled only over object cells (a normalised convolution), so
  background does not leak in;
* the descriptor averaged over the whole object (mask, else box, else image),
  the same vector in every cell: it does not move nearest neighbours within one
  image but tells a learned adapter what the object as a whole looks like
  (e.g. which way it faces);
* the cell's position in the object box, ``(x, y)``: ``-1`` at the box's
  first cell, ``+1`` at its last, extending linearly outside it.

Block layout (channel order): ``[local, pool_1, ..., pool_k, object, position]``;
the local block is kept as given, each pooled block is L2-normalised per cell
and multiplied by its weight, the position block is multiplied by
``position_weight``. Cells with no object cell in their window get zeros.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocorr.features.base import FeatureMap

__all__ = ["ContextSettings", "add_context", "context_channels", "object_cells"]


@dataclass(frozen=True)
class ContextSettings:
    """How much image-wide context to append to a local descriptor.

    Attributes:
        enabled: off by default so that a backbone's output is its plain
            local descriptor unless asked.
        pool_windows: side lengths in grid cells of the square pooling
            windows, ``(5, 17)``: a part's neighbourhood (about a wheel on a
            64-cell grid) and about a quarter of the object.
        pool_weight: weight of each pooled block (the local block has norm 1
            when the backbone L2-normalises it), 0.5: context should inform,
            not dominate, the local match.
        object_pool: append the whole-object average.
        object_weight: its weight, 0.5.
        position: append the position in the object box.
        position_weight: weight of the ``(x, y)`` block, 0.5 (a corner cell
            gets norm ``0.5 * sqrt(2)``).
    """

    enabled: bool = False
    pool_windows: tuple[int, ...] = (5, 17)
    pool_weight: float = 0.5
    object_pool: bool = True
    object_weight: float = 0.5
    position: bool = True
    position_weight: float = 0.5

    def __post_init__(self) -> None:
        for w in self.pool_windows:
            if int(w) != w or w < 1:
                raise ValueError(f"ContextSettings.pool_windows must be positive integers, "
                                 f"got {self.pool_windows}")
        for field in ("pool_weight", "object_weight", "position_weight"):
            if getattr(self, field) < 0:
                raise ValueError(f"ContextSettings.{field} must be >= 0")

    def key(self) -> str:
        """A string of every output-changing setting (for cache keys)."""
        if not self.enabled:
            return "ctx=off"
        return (f"ctx=pool{list(self.pool_windows)}x{self.pool_weight},"
                f"obj{int(self.object_pool)}x{self.object_weight},"
                f"pos{int(self.position)}x{self.position_weight}")


def context_channels(local_channels: int, settings: ContextSettings) -> int:
    """Channel count after :func:`add_context` for a ``local_channels``-d local descriptor."""
    if not settings.enabled:
        return local_channels
    c = local_channels * (1 + len(settings.pool_windows) + int(settings.object_pool))
    return c + 2 * int(settings.position)


def object_cells(fmap: FeatureMap, mask: np.ndarray | None = None,
                 bbox: np.ndarray | None = None) -> np.ndarray:
    """Which grid cells belong to the object, ``(h, w)`` bool.

    Args:
        fmap: the map whose grid and transform are used.
        mask: ``(H, W)`` object mask of the original image (non-zero = object);
            a cell is on the object when at least half its area is.
        bbox: ``(4,)`` object box ``(x0, y0, x1, y1)`` in original pixels; used
            when no mask is given.

    Returns:
        ``(h, w)`` bool; without mask and box, every cell inside the resized
        image (not the padding).
    """
    import cv2

    h, w = fmap.grid_size
    t = fmap.transform
    if mask is not None:
        mask = np.asarray(mask)
        if mask.ndim != 2 or mask.shape != (t.src_height, t.src_width):
            raise ValueError(f"mask must be (H, W) = ({t.src_height}, {t.src_width}), "
                             f"got {mask.shape}")
        canvas = t.apply_image((mask > 0).astype(np.float32), interpolation="linear")
        cells = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA)
        return cells >= 0.5
    if bbox is not None:
        box = np.asarray(bbox, dtype=np.float64).reshape(-1)
        if box.shape != (4,) or box[2] <= box[0] or box[3] <= box[1]:
            raise ValueError(f"bbox must be (x0, y0, x1, y1) with x1 > x0, y1 > y0, got {bbox}")
    else:
        box = np.array([-0.5, -0.5, t.src_width - 0.5, t.src_height - 0.5])
    centers = fmap.cell_centers()
    u, v = centers[..., 0], centers[..., 1]
    return (u >= box[0]) & (u <= box[2]) & (v >= box[1]) & (v <= box[3])


def _box_of(cells: np.ndarray) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(cells)
    return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


def _masked_pool(features: np.ndarray, cells: np.ndarray, window: int) -> np.ndarray:
    import cv2

    m = cells.astype(np.float32)
    num = np.stack([cv2.boxFilter(f * m, -1, (window, window), normalize=False,
                                  borderType=cv2.BORDER_CONSTANT) for f in features])
    den = cv2.boxFilter(m, -1, (window, window), normalize=False, borderType=cv2.BORDER_CONSTANT)
    out = np.where(den[None] > 0, num / np.maximum(den[None], 1e-12), 0.0)
    return out.astype(np.float32)


def _unit(x: np.ndarray, axis: int = 0) -> np.ndarray:
    n = np.linalg.norm(x, axis=axis, keepdims=True)
    return np.where(n > 1e-12, x / np.maximum(n, 1e-12), 0.0).astype(np.float32)


def add_context(fmap: FeatureMap, settings: ContextSettings, mask: np.ndarray | None = None,
                bbox: np.ndarray | None = None) -> FeatureMap:
    """Append pooled-context and box-position channels to a local feature map.

    Args:
        fmap: local features ``(C, h, w)``.
        settings: what to append; returns ``fmap`` unchanged when disabled.
        mask: optional ``(H, W)`` object mask of the original image.
        bbox: optional ``(4,)`` object box ``(x0, y0, x1, y1)`` (original pixels),
            used when ``mask`` is None. Without either the whole image is the object.

    Returns:
        A :class:`FeatureMap` with ``context_channels(C, settings)`` channels,
        same grid, transform and name.
    """
    if not settings.enabled:
        return fmap
    f = fmap.features.astype(np.float32, copy=False)
    cells = object_cells(fmap, mask=mask, bbox=bbox)
    if not cells.any():  # an empty mask: fall back to the whole image
        cells = object_cells(fmap)
    blocks = [f]
    for window in settings.pool_windows:
        blocks.append(settings.pool_weight * _unit(_masked_pool(f, cells, int(window))))
    if settings.object_pool:
        mean = f[:, cells].mean(axis=1)
        mean = _unit(mean[:, None])[:, 0]
        blocks.append(np.broadcast_to(settings.object_weight * mean[:, None, None],
                                      f.shape).astype(np.float32))
    if settings.position:
        h, w = fmap.grid_size
        x0, y0, x1, y1 = _box_of(cells)
        jj, ii = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        px = 2.0 * (jj - x0) / max(x1 - x0, 1.0) - 1.0
        py = 2.0 * (ii - y0) / max(y1 - y0, 1.0) - 1.0
        blocks.append((settings.position_weight * np.stack([px, py])).astype(np.float32))
    return FeatureMap(np.concatenate(blocks, axis=0), fmap.transform, fmap.name)

"""The feature-map record every backbone returns, and the backbone interface.

A backbone sees the image resized (aspect kept) and zero-padded onto an
``S x S`` canvas (:func:`geocorr.geometry.resize_and_pad`) and returns a
``(C, h, w)`` grid over that canvas. Cell ``(i, j)`` is centred at canvas
pixel ``((j + 0.5) * S / w - 0.5, (i + 0.5) * S / h - 0.5)``; the transform
maps canvas pixels back to the original image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from geocorr.geometry.image_transform import ResizePad

__all__ = ["FeatureMap", "Backbone"]


@dataclass(frozen=True, eq=False)
class FeatureMap:
    """Dense features over the padded square canvas of one image.

    Attributes:
        features: ``(C, h, w)`` float32 descriptors.
        transform: original image -> canvas transform (canvas side ``S``).
        name: the source, e.g. ``"dinov2"``, ``"xfeat"``, ``"partfield"``.
    """

    features: np.ndarray
    transform: ResizePad
    name: str = ""

    def __post_init__(self) -> None:
        if self.features.ndim != 3:
            raise ValueError(f"FeatureMap.features must be (C, h, w), got {self.features.shape}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.features.shape)  # type: ignore[return-value]

    @property
    def grid_size(self) -> tuple[int, int]:
        """``(h, w)``."""
        return self.features.shape[1], self.features.shape[2]

    def cell_centers_canvas(self) -> np.ndarray:
        """Centres of the cells in canvas pixels, ``(h, w, 2)`` as ``(u, v)``."""
        h, w = self.grid_size
        S = self.transform.size
        u = (np.arange(w) + 0.5) * S / w - 0.5
        v = (np.arange(h) + 0.5) * S / h - 0.5
        uu, vv = np.meshgrid(u, v)
        return np.stack([uu, vv], axis=-1)

    def cell_centers(self) -> np.ndarray:
        """Centres of the cells in original-image pixels, ``(h, w, 2)`` as ``(u, v)``."""
        c = self.cell_centers_canvas().reshape(-1, 2)
        return self.transform.points_from_canvas(c).reshape(*self.grid_size, 2)

    def uv_to_cell(self, uv: np.ndarray) -> np.ndarray:
        """Original-image pixels ``(N, 2)`` -> continuous cell coordinates ``(N, 2)`` (x, y)."""
        h, w = self.grid_size
        S = self.transform.size
        c = self.transform.points_to_canvas(np.asarray(uv, dtype=np.float64).reshape(-1, 2))
        return np.stack([(c[:, 0] + 0.5) * w / S - 0.5, (c[:, 1] + 0.5) * h / S - 0.5], axis=1)

    def sample(self, uv: np.ndarray) -> np.ndarray:
        """Bilinearly sample descriptors at original-image pixels.

        Args:
            uv: ``(N, 2)`` pixel coordinates in the original image.

        Returns:
            ``(N, C)`` float32; positions outside the grid clamp to the border.
        """
        h, w = self.grid_size
        xy = self.uv_to_cell(uv)
        x = np.clip(xy[:, 0], 0, w - 1)
        y = np.clip(xy[:, 1], 0, h - 1)
        x0 = np.floor(x).astype(np.int64)
        y0 = np.floor(y).astype(np.int64)
        x1 = np.minimum(x0 + 1, w - 1)
        y1 = np.minimum(y0 + 1, h - 1)
        ax = (x - x0)[:, None].astype(np.float32)
        ay = (y - y0)[:, None].astype(np.float32)
        f = self.features
        top = f[:, y0, x0].T * (1 - ax) + f[:, y0, x1].T * ax
        bot = f[:, y1, x0].T * (1 - ax) + f[:, y1, x1].T * ax
        return (top * (1 - ay) + bot * ay).astype(np.float32)


@runtime_checkable
class Backbone(Protocol):
    """Image -> dense features. Implementations carry their settings.

    ``name`` identifies the backbone in caches and fusion; ``cache_key`` must
    change whenever a setting that changes the output changes.
    """

    name: str

    def cache_key(self) -> str:
        """A string identifying backbone + settings (+ weights) for the feature cache."""
        ...

    def extract(self, image: np.ndarray) -> FeatureMap:
        """Features of one ``(H, W, 3)`` uint8 RGB image."""
        ...

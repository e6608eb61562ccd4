"""A classical dense descriptor: DAISY on grayscale plus the cell's mean Lab colour.

No learned weights, so it is the reference point every learned backbone must
beat, and it sees hue, which XFeat (grayscale) does not. DAISY (Tola et al.,
via ``skimage.feature.daisy``) is computed at every cell centre of a
``grid_size x grid_size`` grid over the canvas; the canvas border is
zero-padded by the descriptor radius so every cell gets a descriptor. DAISY
samples integer pixels, so a centre at canvas ``step * j + (step - 1) / 2`` is
taken at pixel ``step * j + step // 2`` (half a pixel off for even steps).

Channel layout: ``[daisy (D, unit norm, 0 where flat), lab (3) * color_weight, context...]``
with ``D = (rings * histograms + 1) * orientations``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geocorr.features.base import FeatureMap
from geocorr.features.cache import check_rgb_image
from geocorr.features.context import ContextSettings, add_context
from geocorr.geometry.image_transform import resize_and_pad

__all__ = ["ClassicalSettings", "ClassicalBackbone", "daisy_dim"]


@dataclass(frozen=True)
class ClassicalSettings:
    """DAISY + Lab options.

    Attributes:
        canvas_size: square canvas side in pixels, 256 (DAISY's cost grows with
            pixels; 0.3 s per image here).
        grid_size: output grid side, 64 (step 4 px on the 256 canvas; matches
            XFeat's default grid). Must divide ``canvas_size``.
        radius: DAISY radius in canvas pixels, 15 (skimage's default: about a
            wheel of a car filling half the canvas).
        rings: DAISY rings, 3.
        histograms: histograms per ring, 8.
        orientations: orientation bins, 8 (so D = 200).
        color_weight: weight of the Lab block (``L/100, a/128, b/128``), 0.5:
            colour separates parts that share texture without drowning the
            gradient pattern (the DAISY block has norm 1).
        context: image-wide context (off).
    """

    canvas_size: int = 256
    grid_size: int = 64
    radius: int = 15
    rings: int = 3
    histograms: int = 8
    orientations: int = 8
    color_weight: float = 0.5
    context: ContextSettings = field(default_factory=ContextSettings)

    def __post_init__(self) -> None:
        if self.grid_size < 1 or self.canvas_size % self.grid_size != 0:
            raise ValueError(f"ClassicalSettings.grid_size ({self.grid_size}) must divide "
                             f"canvas_size ({self.canvas_size})")
        if min(self.radius, self.rings, self.histograms, self.orientations) < 1:
            raise ValueError("ClassicalSettings radius/rings/histograms/orientations must be >= 1")
        if self.color_weight < 0:
            raise ValueError("ClassicalSettings.color_weight must be >= 0")


def daisy_dim(settings: ClassicalSettings) -> int:
    """Length of the DAISY block."""
    return (settings.rings * settings.histograms + 1) * settings.orientations


class ClassicalBackbone:
    """Dense DAISY + Lab colour on a square canvas.

    Args:
        settings: :class:`ClassicalSettings`.
    """

    name = "classical"

    def __init__(self, settings: ClassicalSettings | None = None, device: str = "cpu") -> None:
        self.settings = settings or ClassicalSettings()
        self.device = device  # unused: numpy/skimage only; accepted for a uniform interface

    def cache_key(self) -> str:
        s = self.settings
        return (f"classical|daisy-lab-v1|canvas={s.canvas_size}|grid={s.grid_size}"
                f"|r={s.radius}|rings={s.rings}|hist={s.histograms}|ori={s.orientations}"
                f"|color={s.color_weight}|{s.context.key()}")

    def _daisy(self, gray: np.ndarray) -> np.ndarray:
        import cv2
        from skimage.feature import daisy

        s = self.settings
        step = s.canvas_size // s.grid_size
        # skimage samples at padded pixels radius + step * k; we want canvas pixels
        # step * k + step // 2, so shift the padding by step // 2.
        before = s.radius - step // 2
        after = s.radius + step // 2
        if before < 0:
            raise ValueError(f"ClassicalSettings.radius ({s.radius}) must be >= step / 2 "
                             f"({step // 2})")
        padded = cv2.copyMakeBorder(gray, before, after, before, after, cv2.BORDER_CONSTANT,
                                    value=0.0)
        d = daisy(padded, step=step, radius=s.radius, rings=s.rings,
                  histograms=s.histograms, orientations=s.orientations,
                  normalization="daisy")
        # 'daisy' normalisation: each histogram to unit norm (Tola et al.); then the
        # whole vector to unit norm. Flat regions (black padding) give zero vectors.
        d = np.nan_to_num(d[: s.grid_size, : s.grid_size], nan=0.0)
        n = np.linalg.norm(d, axis=2, keepdims=True)
        d = np.where(n > 1e-12, d / np.maximum(n, 1e-12), 0.0)
        if d.shape[:2] != (s.grid_size, s.grid_size):
            raise RuntimeError(f"DAISY grid {d.shape[:2]} != {(s.grid_size,) * 2}")
        return d.transpose(2, 0, 1).astype(np.float32)

    def extract(self, image: np.ndarray, mask: np.ndarray | None = None,
                bbox: np.ndarray | None = None) -> FeatureMap:
        """DAISY + Lab features of one image.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            mask: optional ``(H, W)`` object mask, used only by the context.
            bbox: optional ``(4,)`` object box ``(x0, y0, x1, y1)``, used only by
                the context when no mask is given.

        Returns:
            ``(D + 3 [+ context], grid, grid)`` float32 map named ``"classical"``.
        """
        import cv2

        s = self.settings
        image = check_rgb_image(image)
        transform = resize_and_pad(image.shape[1], image.shape[0], s.canvas_size)
        canvas = transform.apply_image(image, interpolation="area")
        rgb = canvas.astype(np.float32) / 255.0
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        desc = self._daisy(gray)
        lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
        lab = cv2.resize(lab, (s.grid_size, s.grid_size), interpolation=cv2.INTER_AREA)
        lab = (lab / np.array([100.0, 128.0, 128.0], dtype=np.float32)).transpose(2, 0, 1)
        features = np.concatenate([desc, s.color_weight * lab], axis=0).astype(np.float32)
        fmap = FeatureMap(features, transform, self.name)
        return add_context(fmap, s.context, mask=mask, bbox=bbox)

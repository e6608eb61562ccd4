"""Resize-keeping-aspect + zero-pad to a square canvas, the evaluation protocol's transform.

Convention (the field's, used by every PCK implementation we follow): a point
maps as ``p' = scale * p + offset`` with ``scale = S / max(W, H)`` and the
image centred on the ``S x S`` canvas. This differs from
:meth:`geocorr.geometry.camera.Camera.scaled` (pixel-centre exact) by at most
half a pixel; use the camera method when projecting meshes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ResizePad", "resize_and_pad"]


@dataclass(frozen=True)
class ResizePad:
    """A resize by ``scale`` then a paste at ``(left, top)`` into a ``size x size`` canvas.

    Attributes:
        scale: isotropic resize factor.
        left: horizontal offset of the resized image in the canvas (pixels).
        top: vertical offset of the resized image in the canvas (pixels).
        size: canvas side S.
        src_width: original image width W.
        src_height: original image height H.
    """

    scale: float
    left: int
    top: int
    size: int
    src_width: int
    src_height: int

    @property
    def resized_shape(self) -> tuple[int, int]:
        """``(h, w)`` of the resized image before padding."""
        return (max(1, round(self.src_height * self.scale)),
                max(1, round(self.src_width * self.scale)))

    def points_to_canvas(self, xy: np.ndarray) -> np.ndarray:
        """Original-image points ``(N, 2)`` -> canvas points ``(N, 2)``."""
        xy = np.asarray(xy, dtype=np.float64)
        return xy * self.scale + np.array([self.left, self.top], dtype=np.float64)

    def points_from_canvas(self, xy: np.ndarray) -> np.ndarray:
        """Canvas points ``(N, 2)`` -> original-image points ``(N, 2)``."""
        xy = np.asarray(xy, dtype=np.float64)
        return (xy - np.array([self.left, self.top], dtype=np.float64)) / self.scale

    def apply_image(self, image: np.ndarray, interpolation: str = "linear") -> np.ndarray:
        """Resize and pad an ``(H, W)`` or ``(H, W, C)`` image onto the canvas (zeros)."""
        import cv2

        if image.shape[0] != self.src_height or image.shape[1] != self.src_width:
            raise ValueError(f"image is {image.shape[1]}x{image.shape[0]}, transform expects "
                             f"{self.src_width}x{self.src_height}")
        h, w = self.resized_shape
        flag = {"linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST,
                "area": cv2.INTER_AREA}[interpolation]
        resized = cv2.resize(image, (w, h), interpolation=flag)
        if resized.ndim == 2 and image.ndim == 3:
            resized = resized[..., None]
        canvas = np.zeros((self.size, self.size) + image.shape[2:], dtype=image.dtype)
        canvas[self.top : self.top + h, self.left : self.left + w] = resized
        return canvas


def resize_and_pad(width: int, height: int, size: int) -> ResizePad:
    """Transform fitting a ``width x height`` image into a centred ``size x size`` canvas."""
    if width <= 0 or height <= 0 or size <= 0:
        raise ValueError(f"sizes must be positive, got width={width}, height={height}, "
                         f"size={size}")
    scale = size / max(width, height)
    h, w = max(1, round(height * scale)), max(1, round(width * scale))
    return ResizePad(scale=scale, left=(size - w) // 2, top=(size - h) // 2, size=size,
                     src_width=width, src_height=height)

"""The stage-1 mesh drawn over its image, so a user sees whether the reconstruction is right.

Each visible surface point is coloured by its position in the canonical
frame (X front -> red, Y left -> green, Z up -> blue, each scaled to the
mesh's bounding box), so the two sides of a car or the front and rear legs
of a chair get different colours: a mesh turned the wrong way round shows
its colours on the wrong parts. The silhouette edge is drawn in white.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocorr.geometry.camera import Camera

__all__ = ["OverlaySettings", "mesh_overlay"]


@dataclass(frozen=True)
class OverlaySettings:
    """How the mesh is drawn over the image.

    Attributes:
        opacity: weight of the mesh colour over the image pixel, in ``[0, 1]``
            (0.55: the object's texture stays readable under the colours).
        outline: draw the mesh's silhouette edge in white.
    """

    opacity: float = 0.55
    outline: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.opacity <= 1.0:
            raise ValueError(f"OverlaySettings.opacity must be in [0, 1], got {self.opacity}")


def mesh_overlay(image: np.ndarray, vertices: np.ndarray, faces: np.ndarray, camera: Camera,
                 settings: OverlaySettings | None = None) -> np.ndarray:
    """The image with the mesh rendered over it, coloured by canonical position.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        vertices: ``(V, 3)`` canonical-frame vertices.
        faces: ``(F, 3)`` triangle indices.
        camera: renders the mesh onto the image (``W x H``).
        settings: :class:`OverlaySettings`.

    Returns:
        ``(H, W, 3)`` uint8 RGB.

    Raises:
        ValueError: the camera is for another image size.
    """
    from geocorr.geometry.raster import interpolate, rasterize

    s = settings or OverlaySettings()
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3), got {image.shape}")
    if (camera.height, camera.width) != image.shape[:2]:
        raise ValueError(f"camera is {camera.width}x{camera.height} but the image is "
                         f"{image.shape[1]}x{image.shape[0]}")
    v = np.asarray(vertices, dtype=np.float64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    colour = (v - lo) / np.maximum(hi - lo, 1e-12)
    frags = rasterize(v, np.asarray(faces), camera)
    cover = frags.mask
    out = image.astype(np.float64)
    if cover.any():
        rgb = interpolate(frags, np.asarray(faces), colour) * 255.0
        out[cover] = (1.0 - s.opacity) * out[cover] + s.opacity * rgb[cover]
        if s.outline:
            inner = cover.copy()
            inner[1:, :] &= cover[:-1, :]
            inner[:-1, :] &= cover[1:, :]
            inner[:, 1:] &= cover[:, :-1]
            inner[:, :-1] &= cover[:, 1:]
            out[cover & ~inner] = 255.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)

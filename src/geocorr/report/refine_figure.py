"""A PNG of what stage-1 refinement did to one image: three outlines on the photo.

Green: the mask stage 1 fitted to; red: the render of the reconstructor's
mesh with its own camera (before refinement); blue: the render of the refined,
canonicalized mesh with the final camera. Each is the outer contour of its
``(H, W)`` mask, 2 px wide. Drawing is OpenCV, writing PIL (PNG, atomic).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geocorr.atomic import atomic_file

__all__ = ["MASK", "BEFORE", "AFTER", "save_refinement_figure"]

MASK = (0, 255, 0)
BEFORE = (255, 0, 0)
AFTER = (0, 96, 255)


def save_refinement_figure(path: str | Path, image: np.ndarray, mask: np.ndarray,
                           before: np.ndarray, after: np.ndarray) -> Path:
    """Draw the three outlines (module doc) on a copy of ``image`` and save it as a PNG.

    Args:
        path: output ``.png`` (written atomically).
        image: ``(H, W, 3)`` uint8 RGB photo.
        mask: ``(H, W)`` bool mask stage 1 used.
        before: ``(H, W)`` bool render before refinement.
        after: ``(H, W)`` bool render after refinement.

    Returns:
        ``path``.

    Raises:
        ValueError: an image that is not ``(H, W, 3)`` uint8, or a mask of another size.
    """
    import cv2
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"save_refinement_figure: image must be (H, W, 3) uint8, got "
                         f"{image.shape} {image.dtype}")
    canvas = image.copy()
    for m, colour in ((mask, MASK), (before, BEFORE), (after, AFTER)):
        m = np.asarray(m)
        if m.shape != image.shape[:2]:
            raise ValueError(f"save_refinement_figure: masks must be {image.shape[:2]}, got "
                             f"{m.shape}")
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(canvas, contours, -1, colour, 2)
    path = Path(path)
    with atomic_file(path) as f:
        Image.fromarray(canvas).save(f, format="PNG")
    return path

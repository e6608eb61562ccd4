"""Reading user and dataset images and object masks: one reader each, one rule each.

Every command that reads an RGB image or an object mask from disk goes through
:func:`read_rgb` / :func:`read_mask`, so that a mask means the same thing to
``geocorr refine``, ``reconstruct --masks DIR``, ``match --mask1`` and the
dataset readers.

The mask rule (by PIL mode of the file):

- ``1``, ``L``, ``P``, ``I``, ``I;16``, ``F`` (one channel): non-zero = object
  (for ``P`` the palette *index*: index 0 is the background).
- ``RGB`` and other colour modes without alpha: object where any channel is
  non-zero.
- ``LA``, ``RGBA``, ``PA`` (with alpha): the alpha channel is the mask
  (alpha > 0 = object) unless it is uniformly opaque (every pixel 255); an
  opaque alpha carries no mask, so the colour channels decide as above. An
  RGBA cut-out (transparent background) and an RGBA export of a black/white
  mask (opaque everywhere) both read as intended.

Errors name the file: a missing file raises ``FileNotFoundError``; a file PIL
cannot read (not an image, truncated, a decompression bomb) raises
``ValueError``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["read_rgb", "read_mask", "mask_from_image", "image_size", "resized_size"]

_ALPHA_MODES = {"LA": "L", "RGBA": "RGB", "PA": "P", "La": "L", "RGBa": "RGB"}


def _open(path: Path, what: str):
    """``PIL.Image.open`` with errors that name the file (the caller closes the image)."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ValueError(f"{path}: image too large to read safely ({exc})") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"{path}: not a readable image ({exc})") from None


@contextlib.contextmanager
def _decoding(path: Path, what: str) -> Iterator[Any]:
    """:func:`_open` ``path`` for the block; data PIL cannot decode there (truncated,
    corrupt: ``OSError``, ``SyntaxError``) raises ``ValueError`` naming the file."""
    with _open(path, what) as im:
        try:
            yield im
        except (OSError, SyntaxError) as exc:
            raise ValueError(f"{path}: not a readable {what} ({exc})") from None


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(W, H)`` of an image file, from its header only."""
    path = Path(path)
    with _open(path, "image") as im:
        return im.size


def resized_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """``(w, h)`` of a ``width x height`` image scaled (aspect kept) to a longer side <= max_side.

    Images already within ``max_side`` (or ``max_side=None``) keep their size;
    no side goes below 1 pixel.
    """
    if max_side is None or max(width, height) <= max_side:
        return width, height
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    s = max_side / max(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


def read_rgb(path: str | os.PathLike[str], max_side: int | None = None) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB.

    Args:
        path: any format PIL reads (grayscale, palette and alpha are converted).
        max_side: if given, images whose longer side exceeds it are scaled
            down (aspect kept, antialiased) to ``resized_size(W, H, max_side)``.
            JPEGs are then decoded at a reduced scale (PIL ``draft``), so the
            memory used does not grow with the file's resolution.

    Returns:
        ``(H, W, 3)`` uint8 (the resized shape when ``max_side`` applies).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a readable image; the message names the file.
    """
    from PIL import Image

    with _decoding(Path(path), "image") as im:
        size = resized_size(*im.size, max_side)
        if size != im.size:
            im.draft("RGB", size)  # JPEG: decode at >= size, 1/2..1/8 scale
            rgb = im.convert("RGB")
            if rgb.size != size:
                rgb = rgb.resize(size, Image.Resampling.BILINEAR)
        else:
            rgb = im.convert("RGB")
        return np.asarray(rgb)


def _alpha_is_the_mask(im) -> bool:
    """True when ``im`` has an alpha channel that is not uniformly opaque (PIL, no copy)."""
    return im.mode in _ALPHA_MODES and im.getchannel("A").getextrema()[0] != 255


def mask_from_image(im, alpha: bool | None = None) -> np.ndarray:
    """The object mask of an open ``PIL.Image`` by the module's rule, ``(H, W)`` bool.

    Args:
        im: the image.
        alpha: whether the alpha channel is the mask; ``None``: decide from
            ``im`` (not uniformly opaque). Pass the decision made on the full
            image when ``im`` is a resized copy.
    """
    if alpha is None:
        alpha = _alpha_is_the_mask(im)
    if alpha:
        return np.asarray(im.getchannel("A")) > 0
    arr = np.asarray(im)
    if im.mode in _ALPHA_MODES:
        arr = arr[..., :-1]
    return arr.any(axis=-1) if arr.ndim == 3 else arr != 0


def read_mask(path: str | os.PathLike[str], size: tuple[int, int] | None = None) -> np.ndarray:
    """An object mask file as ``(H, W)`` bool by the module's rule (see the module docstring).

    Args:
        path: mask image (PNG usually).
        size: optional ``(W, H)``: resize the mask to it (nearest neighbour),
            e.g. to an image read with ``read_rgb(..., max_side)``. The file
            is resized before it becomes an array (the rule is per pixel, so
            the result is the same), keeping memory to the small size.

    Returns:
        ``(H, W)`` bool, True = object.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a readable image; the message names the file.
    """
    from PIL import Image

    with _decoding(Path(path), "mask") as im:
        alpha = _alpha_is_the_mask(im)
        if size is not None and im.size != tuple(size):
            im = im.resize(tuple(size), Image.Resampling.NEAREST)
        return mask_from_image(im, alpha)

"""A PNG of one pair's kept pseudo-labels per filter, coloured by ground-truth correctness.

Layout: one row per filter (e.g. cyclic-only, sphere, geodesic), each the
source and target image side by side with a line per kept label: green when
the label is correct by the ground truth, red when it is wrong. Ground truth
colours the figure only (evaluation); it never decides what is kept. Each row
is captioned with the filter, the kept count and how many are correct.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocorr.atomic import write_bytes_atomic

__all__ = ["KeptLabels", "save_label_figure"]

CORRECT = (40, 220, 40)
WRONG = (230, 40, 40)


@dataclass(frozen=True, eq=False)
class KeptLabels:
    """One filter's kept labels on a pair.

    Attributes:
        src_uv: ``(N, 2)`` source pixels ``(x, y)`` (original image).
        trg_uv: ``(N, 2)`` target pixels.
        correct: ``(N,)`` bool, correct by the ground truth.
    """

    src_uv: np.ndarray
    trg_uv: np.ndarray
    correct: np.ndarray

    def __post_init__(self) -> None:
        s, t, c = np.asarray(self.src_uv), np.asarray(self.trg_uv), np.asarray(self.correct)
        if s.ndim != 2 or s.shape[1] != 2 or s.shape != t.shape or c.shape != (len(s),):
            raise ValueError(f"KeptLabels: src_uv, trg_uv must be equal (N, 2) and correct "
                             f"(N,), got {s.shape}, {t.shape}, {c.shape}")


def _row(image_s: np.ndarray, image_t: np.ndarray, labels: KeptLabels, caption: str,
         height: int, max_lines: int, rng: np.random.Generator) -> np.ndarray:
    import cv2
    from PIL import Image, ImageDraw

    ss, st = height / image_s.shape[0], height / image_t.shape[0]
    a = cv2.resize(image_s, (max(1, round(image_s.shape[1] * ss)), height),
                   interpolation=cv2.INTER_AREA)
    b = cv2.resize(image_t, (max(1, round(image_t.shape[1] * st)), height),
                   interpolation=cv2.INTER_AREA)
    row = np.concatenate([a, b], axis=1).copy()
    off = a.shape[1]
    correct = np.asarray(labels.correct, dtype=bool)
    for sel, colour in ((~correct, WRONG), (correct, CORRECT)):
        idx = np.flatnonzero(sel)
        if len(idx) > max_lines:
            idx = np.sort(rng.choice(idx, max_lines, replace=False))
        for i in idx:
            p = (int(round((labels.src_uv[i, 0] + 0.5) * ss - 0.5)),
                 int(round((labels.src_uv[i, 1] + 0.5) * ss - 0.5)))
            q = (int(round((labels.trg_uv[i, 0] + 0.5) * st - 0.5)) + off,
                 int(round((labels.trg_uv[i, 1] + 0.5) * st - 0.5)))
            cv2.line(row, p, q, colour, 1, cv2.LINE_AA)
            cv2.circle(row, p, 2, colour, -1, cv2.LINE_AA)
            cv2.circle(row, q, 2, colour, -1, cv2.LINE_AA)
    im = Image.fromarray(row)
    d = ImageDraw.Draw(im)
    d.rectangle([0, 0, 7 * len(caption) + 8, 14], fill=(0, 0, 0))
    d.text((4, 2), caption, fill=(255, 255, 255))
    return np.asarray(im)


def save_label_figure(path: str | os.PathLike, image_s: np.ndarray, image_t: np.ndarray,
                      per_filter: Mapping[str, KeptLabels], *, title: str = "",
                      panel_height: int = 240, max_lines: int = 120, seed: int = 0) -> Path:
    """Write the figure (module doc) as a PNG, atomically.

    Args:
        path: output ``.png``.
        image_s: ``(H_s, W_s, 3)`` uint8 source image.
        image_t: ``(H_t, W_t, 3)`` uint8 target image.
        per_filter: filter name -> its kept labels (rows in this order).
        title: prefix of every row caption (e.g. the pair id).
        panel_height: row height in pixels.
        max_lines: at most this many lines of each colour per row (seeded subsample).
        seed: subsampling seed.

    Returns:
        The written path.

    Raises:
        ValueError: an image is not ``(H, W, 3)`` uint8, or ``per_filter`` is empty.
    """
    from PIL import Image

    for name, im in (("image_s", image_s), ("image_t", image_t)):
        im = np.asarray(im)
        if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
            raise ValueError(f"{name} must be an (H, W, 3) uint8 image, got {im.shape} {im.dtype}")
    if not per_filter:
        raise ValueError("per_filter is empty: nothing to draw")
    rng = np.random.default_rng(seed)
    rows = []
    for name, labels in per_filter.items():
        n, c = len(labels.correct), int(np.asarray(labels.correct, bool).sum())
        caption = (f"{title}  {name}: {n} kept, {c} correct (green) / {n - c} wrong (red) "
                   "by ground truth").strip()
        rows.append(_row(np.asarray(image_s), np.asarray(image_t), labels, caption,
                         panel_height, max_lines, rng))
    width = max(r.shape[1] for r in rows)
    fig = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows])
    buf = io.BytesIO()
    Image.fromarray(fig).save(buf, format="PNG")
    write_bytes_atomic(path, buf.getvalue())
    return Path(path)

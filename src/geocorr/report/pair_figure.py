"""A per-pair PNG: the two images with matches (kept green, rejected red) and a PCA view per source.

Layout (every panel scaled to ``panel_height`` pixels high)::

    [ source image | target image ]  with match lines across both
    [ PCA(source)  | PCA(target)  ]  one row per feature source (e.g. xfeat,
                                      the rendered part descriptor, the fusion)

PCA uses one basis per source shared by both images (fitted on the non-zero
cells of both), so equal colours mean similar descriptors across the pair.
Zero cells (a rendered part map off the mask, canvas padding) show the image
darkened. Drawing is PIL + OpenCV (matplotlib is not a dependency).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from geocorr.atomic import write_bytes_atomic
from geocorr.features.base import FeatureMap
from geocorr.matching.candidates import grid_foreground
from geocorr.matching.matches import Matches

__all__ = ["pca_colors", "feature_overlay", "save_pair_figure"]

KEPT = (40, 220, 40)
REJECTED = (230, 40, 40)


def pca_colors(maps: list[FeatureMap], eps: float = 1e-8,
               fit_cells: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """First three principal components of several maps' cells, in one shared basis, as RGB.

    Args:
        maps: feature maps with the same channel count.
        eps: cells with a descriptor norm below this are "empty" (black, 0).
        fit_cells: optional ``(h, w)`` bool per map: fit the basis and the
            colour range on these cells only (e.g. the object), colour all.

    Returns:
        One ``(h, w, 3)`` uint8 image per map; components are scaled jointly
        (1st..99th percentile over the fitted non-empty cells of all maps).
    """
    if not maps:
        return []
    C = maps[0].features.shape[0]
    if any(m.features.shape[0] != C for m in maps):
        raise ValueError("pca_colors: maps must have the same number of channels")
    flats = [m.features.reshape(C, -1).T.astype(np.float64) for m in maps]
    valid = [np.linalg.norm(f, axis=1) >= eps for f in flats]
    fit = valid if fit_cells is None else [
        v & np.asarray(c, dtype=bool).reshape(-1) for v, c in zip(valid, fit_cells, strict=True)]
    if sum(int(x.sum()) for x in fit) == 0:
        fit = valid
    data = np.concatenate([f[v] for f, v in zip(flats, valid, strict=True)], axis=0)
    outs = [np.zeros((*m.grid_size, 3), np.uint8) for m in maps]
    if len(data) == 0:
        return outs
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    fit_rows = np.concatenate([x[v] for x, v in zip(fit, valid, strict=True)])
    fit_unit = unit[fit_rows]
    mean = fit_unit.mean(axis=0)
    k = min(3, C)
    if len(fit_unit) > 1:
        _, _, vt = np.linalg.svd(fit_unit - mean, full_matrices=False)
        basis = vt[:k]
    else:
        basis = np.eye(C)[:k]
    # Deterministic signs: the largest-magnitude loading of each component is positive.
    basis *= np.sign(basis[np.arange(k), np.abs(basis).argmax(axis=1)])[:, None]
    proj = (unit - mean) @ basis.T
    lo = np.percentile(proj[fit_rows], 1, axis=0)
    hi = np.percentile(proj[fit_rows], 99, axis=0)
    scale = np.where(hi > lo, hi - lo, 1.0)
    start = 0
    for out, f, v in zip(outs, flats, valid, strict=True):
        n = int(v.sum())
        p = np.clip((proj[start:start + n] - lo) / scale, 0, 1)
        start += n
        rgb = np.zeros((len(f), 3))
        rgb[v, :k] = p
        if k < 3:
            rgb[v, k:] = 0.5
        out[:] = (255 * rgb).round().astype(np.uint8).reshape(out.shape)
    return outs


def feature_overlay(image: np.ndarray, fmap: FeatureMap, colors: np.ndarray,
                    alpha: float = 0.75) -> np.ndarray:
    """Blend per-cell colours over the original image.

    Args:
        image: ``(H, W, 3)`` uint8 original image.
        fmap: the map the colours belong to (its transform places the grid).
        colors: ``(h, w, 3)`` uint8, black = empty cell.
        alpha: colour opacity on non-empty cells; empty cells show the image darkened.

    Returns:
        ``(H, W, 3)`` uint8.
    """
    import cv2

    tr = fmap.transform
    H, W = tr.src_height, tr.src_width
    if image.shape[:2] != (H, W):
        raise ValueError(f"image is {image.shape[1]}x{image.shape[0]}, feature map is for "
                         f"{W}x{H}")
    canvas = cv2.resize(colors, (tr.size, tr.size), interpolation=cv2.INTER_NEAREST)
    rh, rw = tr.resized_shape
    crop = canvas[tr.top:tr.top + rh, tr.left:tr.left + rw]
    col = cv2.resize(crop, (W, H), interpolation=cv2.INTER_NEAREST).astype(np.float64)
    img = image.astype(np.float64)
    empty = ~col.any(axis=2, keepdims=True)
    out = np.where(empty, 0.35 * img, (1 - alpha) * img + alpha * col)
    return out.round().clip(0, 255).astype(np.uint8)


def _fit_height(image: np.ndarray, height: int) -> tuple[np.ndarray, float]:
    import cv2

    s = height / image.shape[0]
    w = max(1, round(image.shape[1] * s))
    return cv2.resize(image, (w, height), interpolation=cv2.INTER_AREA), s


def _label(panel: np.ndarray, text: str) -> np.ndarray:
    from PIL import Image, ImageDraw

    im = Image.fromarray(panel)
    d = ImageDraw.Draw(im)
    y = panel.shape[0] - 14  # bottom-left, away from match lines' typical start
    d.rectangle([0, y, 7 * len(text) + 8, y + 14], fill=(0, 0, 0))
    d.text((4, y + 2), text, fill=(255, 255, 255))
    return np.asarray(im)


def _check_image(image: np.ndarray, name: str) -> np.ndarray:
    im = np.asarray(image)
    if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
        raise ValueError(f"{name} must be an (H, W, 3) uint8 image, got {im.shape} {im.dtype}")
    return im


def save_pair_figure(path: str | os.PathLike, image_s: np.ndarray, image_t: np.ndarray,
                     maps: dict[str, tuple[FeatureMap, FeatureMap]],
                     matches: Matches | None = None, *, filters: tuple[str, ...] = ("cyclic",),
                     panel_height: int = 256, max_lines: int = 150, seed: int = 0,
                     title: str = "",
                     masks: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """Write the pair figure as a PNG (atomically).

    Args:
        path: output ``.png``.
        image_s: ``(H_s, W_s, 3)`` uint8 source image.
        image_t: ``(H_t, W_t, 3)`` uint8 target image.
        maps: per source name, ``(source map, target map)``; e.g. ``{"xfeat": ...,
            "geometric (rendered)": ..., "fused": ...}``. One PCA row each.
        matches: candidate matches to draw (``None``: no lines).
        filters: a match counts as kept when every named filter kept it.
        panel_height: height of every panel in pixels.
        max_lines: at most this many lines of each kind (evenly subsampled, seeded).
        seed: subsampling seed.
        title: text drawn on the first panel.
        masks: optional ``(H_s, W_s)`` and ``(H_t, W_t)`` object masks: fit each
            PCA on the object's cells only (the background otherwise dominates).

    Returns:
        The written path.
    """
    import cv2
    from PIL import Image

    image_s = _check_image(image_s, "image_s")
    image_t = _check_image(image_t, "image_t")
    top_s, ss = _fit_height(image_s, panel_height)
    top_t, st = _fit_height(image_t, panel_height)
    top = np.concatenate([top_s, top_t], axis=1).copy()
    off = top_s.shape[1]
    if matches is not None and len(matches):
        keep = matches.keep_mask(*filters)
        rng = np.random.default_rng(seed)
        for sel, color in ((~keep, REJECTED), (keep, KEPT)):
            idx = np.flatnonzero(sel)
            if len(idx) > max_lines:
                idx = np.sort(rng.choice(idx, max_lines, replace=False))
            for i in idx:
                p = (int(round((matches.src_uv[i, 0] + 0.5) * ss - 0.5)),
                     int(round((matches.src_uv[i, 1] + 0.5) * ss - 0.5)))
                q = (int(round((matches.trg_uv[i, 0] + 0.5) * st - 0.5)) + off,
                     int(round((matches.trg_uv[i, 1] + 0.5) * st - 0.5)))
                cv2.line(top, p, q, color, 1, cv2.LINE_AA)
                cv2.circle(top, p, 2, color, -1, cv2.LINE_AA)
                cv2.circle(top, q, 2, color, -1, cv2.LINE_AA)
        n_keep = int(keep.sum())
        caption = f"{title}  kept {n_keep}/{len(matches)} ({'+'.join(filters)})".strip()
    else:
        caption = title
    rows = [_label(top, caption) if caption else top]
    for name, (fs, ft) in maps.items():
        fit = None
        if masks is not None:
            fit = [grid_foreground(fs, masks[0]), grid_foreground(ft, masks[1])]
        cs, ct = pca_colors([fs, ft], fit_cells=fit)
        a, _ = _fit_height(feature_overlay(image_s, fs, cs), panel_height)
        b, _ = _fit_height(feature_overlay(image_t, ft, ct), panel_height)
        rows.append(_label(np.concatenate([a, b], axis=1), f"PCA: {name}"))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    fig = np.concatenate(rows, axis=0)

    path = Path(path)
    buf = io.BytesIO()
    Image.fromarray(fig).save(buf, format="PNG")
    write_bytes_atomic(path, buf.getvalue())
    return path

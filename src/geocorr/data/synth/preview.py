"""Contact sheet of a generated benchmark: a row per category, keypoints and mask outlines.

Each tile shows the image, the mask outline (white), the keypoints with their
ids, and — where ``Reconstructions/`` has the image — the outline of the
simulated reconstruction rendered with its predicted camera (red), which shows
the simulator's scale/translation error. Reads only public files (JPEGImages,
ImageAnnotation, Segmentation, Reconstructions), so it works on any folder in
SPair-71k's layout, including one without GroundTruth.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from geocorr.data.images import read_mask, read_rgb
from geocorr.data.synth.writer import encode_png, write_bytes
from geocorr.geometry.camera import load_camera

__all__ = ["contact_sheet", "write_preview"]


def _outline(mask: np.ndarray, size: tuple[int, int]):
    import cv2

    small = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(small, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return contours


def _reconstruction_mask(root: Path, category: str, stem: str) -> np.ndarray | None:
    import trimesh

    from geocorr.geometry.raster import rasterize

    ply = root / "Reconstructions" / category / f"{stem}.ply"
    cam_path = ply.with_suffix(".json")
    if not (ply.is_file() and cam_path.is_file()):
        return None
    mesh = trimesh.load(ply, process=False, force="mesh")
    return rasterize(np.asarray(mesh.vertices), np.asarray(mesh.faces),
                     load_camera(cam_path)).mask


def _thumbnail(root: Path, category: str, stem: str, cell: int) -> np.ndarray:
    import cv2

    image = read_rgb(root / "JPEGImages" / category / f"{stem}.jpg")
    ann = json.loads((root / "ImageAnnotation" / category / f"{stem}.json").read_text())
    H, W = image.shape[:2]
    scale = cell / max(H, W)
    size = (max(1, round(W * scale)), max(1, round(H * scale)))
    thumb = cv2.resize(image, size, interpolation=cv2.INTER_AREA).copy()
    rec = _reconstruction_mask(root, category, stem)
    if rec is not None and rec.shape == (H, W):
        cv2.drawContours(thumb, _outline(rec, size), -1, (255, 40, 40), 1)
    seg_path = root / "Segmentation" / category / f"{stem}.png"
    if seg_path.is_file():
        mask = read_mask(seg_path)
        cv2.drawContours(thumb, _outline(mask, size), -1, (255, 255, 255), 1)
    for kid, xy in ann["kps"].items():
        if xy is None:
            continue
        p = (int(round((xy[0] + 0.5) * scale - 0.5)), int(round((xy[1] + 0.5) * scale - 0.5)))
        hue = (int(kid) * 47) % 180
        colour = cv2.cvtColor(np.uint8([[[hue, 255, 255]]]), cv2.COLOR_HSV2RGB)[0, 0]
        colour = tuple(int(c) for c in colour)
        cv2.circle(thumb, p, 3, colour, -1)
        cv2.circle(thumb, p, 3, (0, 0, 0), 1)
        cv2.putText(thumb, kid, (p[0] + 3, p[1] - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.3,
                    (255, 255, 255), 1, cv2.LINE_AA)
    canvas = np.zeros((cell, cell, 3), dtype=np.uint8)
    top, left = (cell - thumb.shape[0]) // 2, (cell - thumb.shape[1]) // 2
    canvas[top:top + thumb.shape[0], left:left + thumb.shape[1]] = thumb
    cv2.putText(canvas, stem, (3, cell - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 0), 1,
                cv2.LINE_AA)
    return canvas


def contact_sheet(root: str | Path, per_category: int = 5, cell: int = 192) -> np.ndarray:
    """Build the contact sheet of a dataset folder.

    Args:
        root: dataset folder (SPair layout).
        per_category: images per row (the first ones of each category).
        cell: thumbnail side in pixels.

    Returns:
        ``(rows * cell, per_category * cell, 3)`` uint8 RGB.

    Raises:
        FileNotFoundError: no ``JPEGImages`` folder or no images.
    """
    root = Path(root)
    img_dir = root / "JPEGImages"
    if not img_dir.is_dir():
        raise FileNotFoundError(f"{img_dir}: no JPEGImages folder")
    if per_category < 1 or cell < 32:
        raise ValueError(f"per_category must be >= 1 and cell >= 32, got {per_category}, {cell}")
    rows = []
    for cat_dir in sorted(p for p in img_dir.iterdir() if p.is_dir()):
        stems = sorted(p.stem for p in cat_dir.glob("*.jpg"))[:per_category]
        if not stems:
            continue
        tiles = [_thumbnail(root, cat_dir.name, s, cell) for s in stems]
        tiles += [np.zeros((cell, cell, 3), np.uint8)] * (per_category - len(tiles))
        rows.append(np.concatenate(tiles, axis=1))
    if not rows:
        raise FileNotFoundError(f"{img_dir}: no images")
    return np.concatenate(rows, axis=0)


def write_preview(root: str | Path, path: str | Path, per_category: int = 5,
                  cell: int = 192) -> Path:
    """Write :func:`contact_sheet` of ``root`` as a PNG at ``path`` (atomically)."""
    sheet = contact_sheet(root, per_category, cell)
    write_bytes(path, encode_png(sheet))
    return Path(path)

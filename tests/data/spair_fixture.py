"""Builds a tiny SPair-71k tree in the exact official format (imported by the tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, w: int, h: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(path)


def write_spair(root: Path, pairs: list[dict], images: dict[tuple[str, str], dict],
                split: str = "test", layout: bool = True) -> Path:
    """``pairs``: dicts with SPair pair-file fields (``stem`` holds the file stem).

    ``images``: ``(category, imname) -> {"size": (W, H), "kps": {"0": [x, y] | None, ...}}``.
    """
    for (cat, imname), info in images.items():
        w, h = info["size"]
        write_image(root / "JPEGImages" / cat / imname, w, h)
        ann = {"filename": imname, "category": cat, "image_width": w, "image_height": h,
               "bndbox": [0, 0, w - 1, h - 1], "azimuth_id": 0, "kps": info["kps"],
               "pose": "Unspecified", "truncated": 0, "occluded": 0, "difficult": 0}
        p = root / "ImageAnnotation" / cat / (Path(imname).stem + ".json")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(ann))
    folder = root / "PairAnnotation" / split
    folder.mkdir(parents=True, exist_ok=True)
    stems = []
    for pair in pairs:
        pair = dict(pair)
        stem = pair.pop("stem")
        stems.append(stem)
        (folder / f"{stem}.json").write_text(json.dumps(pair))
    if layout:
        lay = root / "Layout" / "large"
        lay.mkdir(parents=True, exist_ok=True)
        (lay / f"{split}.txt").write_text("\n".join(stems) + "\n")
    return root


def spair_pair(pid: int, cat: str, src: str, trg: str, src_kps, trg_kps, ids, trg_bbox,
               src_size=(840, 630), trg_size=(840, 630), **flags) -> dict:
    d = {
        "stem": f"{pid:06d}-{Path(src).stem}-{Path(trg).stem}:{cat}",
        "pair_id": pid, "src_imname": src, "trg_imname": trg,
        "src_imsize": [src_size[0], src_size[1], 3], "trg_imsize": [trg_size[0], trg_size[1], 3],
        "src_bndbox": [0, 0, 10, 10], "trg_bndbox": list(trg_bbox),
        "src_pose": "Unspecified", "trg_pose": "Unspecified",
        "src_kps": [list(map(float, p)) for p in src_kps],
        "trg_kps": [list(map(float, p)) for p in trg_kps],
        "kps_ids": [str(i) for i in ids], "category": cat,
        "viewpoint_variation": 0, "scale_variation": 0, "truncation": 0, "occlusion": 0,
        "mirror": 0,
    }
    d.update(flags)
    return d


def standard_fixture(root: Path) -> Path:
    """Three hand-scored pairs used by the loader, PCK and CLI tests (see test_spair_scoring)."""
    pairs = [
        # A: car, target 840x630 (scale 1 at S=840), bbox side 200 -> T = 200
        spair_pair(1, "car", "c1.jpg", "c2.jpg",
                   [(10, 10), (20, 20), (30, 30), (40, 40)],
                   [(100, 100), (200, 150), (300, 190), (400, 120)],
                   [0, 2, 4, 10], trg_bbox=(100, 100, 300, 200), viewpoint_variation=2),
        # B: car, target 420x420 (scale 2), bbox 50x100 -> T = 100 px (200 canvas px)
        spair_pair(2, "car", "c2.jpg", "c3.jpg", [(1, 1), (2, 2)], [(50, 50), (100, 100)],
                   [0, 1], trg_bbox=(0, 0, 50, 100), src_size=(840, 630), trg_size=(420, 420),
                   viewpoint_variation=0),
        # C: cat, one keypoint
        spair_pair(3, "cat", "k1.jpg", "k2.jpg", [(5, 5)], [(60, 70)], [2],
                   trg_bbox=(0, 0, 100, 80), viewpoint_variation=0),
    ]
    images = {
        ("car", "c1.jpg"): {"size": (840, 630), "kps": {"0": [1, 1], "1": None}},
        ("car", "c2.jpg"): {"size": (840, 630),
                            "kps": {str(i): ([5, 5] if i in (0, 1, 2, 4, 8, 10) else None)
                                    for i in range(30)}},
        ("car", "c3.jpg"): {"size": (420, 420), "kps": {"0": [1, 2], "1": [3, 4], "2": None}},
        ("cat", "k1.jpg"): {"size": (840, 630), "kps": {"2": [5, 5]}},
        ("cat", "k2.jpg"): {"size": (840, 630), "kps": {"2": [60, 70], "3": None}},
    }
    return write_spair(root, pairs, images)


# Predictions for the standard fixture with hand-computed scores:
#   A errors (px): 0, 20 (== 0.1*T: wrong, strict <), 12, 30
#   B errors (px): 5, 10 (canvas 10, 20 vs 0.1*T = 20 canvas: 1 right, 1 wrong)
#   C error 0
STANDARD_PREDICTIONS = {
    "000001-c1-c2:car": [(100, 100), (220, 150), (300, 178), (400, 150)],
    "000002-c2-c3:car": [(53, 54), (100, 110)],
    "000003-k1-k2:cat": [(60, 70)],
}

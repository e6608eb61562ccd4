"""A tiny SPair-layout dataset + stage-1 cache built by hand (ellipsoids, textured by position)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from geocorr.geometry.camera import Camera, look_at, save_camera
from geocorr.geometry.raster import interpolate, rasterize


def _texture(v: np.ndarray) -> np.ndarray:
    """Per-vertex RGB in [0, 1] from canonical position (same point -> same colour)."""
    return 0.5 + 0.45 * np.stack([np.sin(4 * v[:, 0]), np.sin(5 * v[:, 1] + 1),
                                  np.sin(3 * v[:, 2] + 2 * v[:, 0])], axis=1)


def build(root: Path, categories=("blob",), n_images: int = 4, size: int = 64) -> tuple[Path, Path]:
    """Write ``root/data`` (JPEGImages, Layout) and ``root/cache`` (stage-1 entries)."""
    data, cache = root / "data", root / "cache"
    base = trimesh.creation.icosphere(subdivisions=2)
    for ci, cat in enumerate(categories):
        stems = []
        for k in range(n_images):
            stem = f"{cat}_{k:04d}"
            stems.append(stem)
            v = np.asarray(base.vertices) * np.array([1.4 + 0.05 * k, 0.9, 0.7 + 0.03 * ci])
            f = np.asarray(base.faces)
            az = np.radians(40.0 * k)
            eye = 4.0 * np.array([np.cos(az), np.sin(az), 0.4])
            R, t = look_at(eye, np.zeros(3))
            fl = 1.3 * size
            K = np.array([[fl, 0, (size - 1) / 2], [0, fl, (size - 1) / 2], [0, 0, 1.0]])
            cam = Camera(K, R, t, size, size)
            frag = rasterize(v, f, cam)
            rgb = interpolate(frag, f, _texture(v))
            img = np.where(frag.mask[..., None], rgb, 0.5)
            jpg = data / "JPEGImages" / cat / f"{stem}.jpg"
            jpg.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray((img * 255).astype(np.uint8)).save(jpg, quality=95)
            d = cache / cat / stem
            d.mkdir(parents=True, exist_ok=True)
            trimesh.Trimesh(v, f, process=False).export(d / "mesh.ply")
            save_camera(cam, d / "camera.json")
            Image.fromarray(frag.mask.astype(np.uint8) * 255).save(d / "mask.png")
            (d / "record.json").write_text(json.dumps({"category": cat, "stem": stem, "k": 0}))
        lay = data / "Layout" / "large"
        lay.mkdir(parents=True, exist_ok=True)
        lines = [f"{i:06d}-{stems[i]}-{stems[i + 1]}:{cat}" for i in range(len(stems) - 1)]
        with open(lay / "trn.txt", "a") as fh:
            fh.write("\n".join(lines) + "\n")
    return data, cache

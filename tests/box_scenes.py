"""Two views of a textured box, in memory or as files: the scene the match and view tests share.

Importable from any test (pytest puts ``tests/`` on ``sys.path`` for its
``conftest.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from geocorr.geometry import Camera, look_at, save_camera
from geocorr.geometry.raster import rasterize

EYES = ([5.0, 2.0, 1.5], [4.0, -3.0, 1.5])
"""Camera centres of the two views (the box is at the origin)."""


def box_scene(eye, seed: int = 0, size: tuple[int, int] = (128, 96)):
    """A 2 x 1 x 0.8 box seen from ``eye``: ``(mesh, camera, (H, W) mask, (H, W, 3) image)``.

    The box is orange on a dim noise background drawn with ``seed``; focal 120 px.
    """
    mesh = trimesh.creation.box(extents=(2.0, 1.0, 0.8)).subdivide().subdivide()
    R, t = look_at(np.asarray(eye, float), np.zeros(3))
    W, H = size
    cam = Camera(np.array([[120.0, 0, W / 2], [0, 120.0, H / 2], [0, 0, 1]]), R, t, W, H)
    mask = rasterize(mesh.vertices, mesh.faces, cam).mask
    rng = np.random.default_rng(seed)
    image = (rng.uniform(0, 255, (H, W, 3)) * 0.3).astype(np.uint8)
    image[mask] = (200, 120, 40)
    return mesh, cam, mask, image


def write_box_views(folder: Path, seed: int = 0) -> list[Camera]:
    """Write both views as ``i{n}.png``, ``k{n}.png`` (mask), ``m{n}.ply``, ``c{n}.json``, n = 1, 2.

    Returns:
        the two cameras.
    """
    cams = []
    for n, eye in enumerate(EYES, start=1):
        mesh, cam, mask, image = box_scene(eye, seed)
        Image.fromarray(image).save(folder / f"i{n}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(folder / f"k{n}.png")
        mesh.export(folder / f"m{n}.ply")
        save_camera(cam, folder / f"c{n}.json")
        cams.append(cam)
    return cams

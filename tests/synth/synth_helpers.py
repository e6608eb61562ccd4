"""Shared builders for the procedural-benchmark tests: controlled views of a car."""

from __future__ import annotations

import numpy as np

from geocorr.data.synth.groundtruth import GroundTruth
from geocorr.data.synth.render import render_shape
from geocorr.data.synth.scene import orbit_camera
from geocorr.data.synth.shapes import make_shape
from geocorr.data.synth.textures import instance_looks


def car(instance: int = 0, seed: int = 0):
    return make_shape("car", instance, seed)


def view(shape, azimuth: float, elevation: float = 15.0, size: int = 160, fill: float = 2.2):
    """Camera on an orbit, object roughly filling the frame (distance = fill * diagonal)."""
    lo, hi = shape.vertices.min(0), shape.vertices.max(0)
    diag = float(np.linalg.norm(hi - lo))
    f = 1.1 * size
    K = np.array([[f, 0, (size - 1) / 2], [0, f, (size - 1) / 2], [0, 0, 1.0]])
    return orbit_camera((lo + hi) / 2, azimuth, elevation, fill * diag, K, size, size)


def render(shape, camera, seed: int = 0):
    rng = np.random.default_rng(seed)
    looks = instance_looks(shape.category, shape.part_material, rng)
    bg = np.full((camera.height, camera.width, 3), 0.5, dtype=np.float32)
    return render_shape(shape, camera, looks, np.array([0.0, -0.5, -1.0]) / np.sqrt(1.25),
                        0.4, bg, rng)


def groundtruth(shape, camera, seed: int = 0) -> GroundTruth:
    r = render(shape, camera, seed)
    return GroundTruth(
        category=shape.category, stem=f"{shape.category}_test", vertices=shape.vertices,
        faces=shape.faces, face_part=shape.face_part, vertex_part=shape.vertex_part,
        vertex_template=shape.vertex_template, part_names=shape.part_names,
        part_material=shape.part_material, keypoint_vertices=shape.keypoint_vertices,
        camera=camera, part_map=r.part, template_map=r.template, azimuth_deg=0.0,
        elevation_deg=15.0, sim_true_k=0, sim_yaw_error_k=0, sim_true_scale=1.0,
        sim_true_translation=np.zeros(3), sim_gt_scale=1.0, sim_gt_offset=np.zeros(3))


def part_pixels(gt: GroundTruth, name: str) -> np.ndarray:
    """``(N, 2)`` pixel coordinates (x, y) showing part ``name``."""
    p = gt.part_names.index(name)
    rows, cols = np.nonzero(gt.part_map == p)
    return np.stack([cols, rows], axis=1).astype(np.float64)

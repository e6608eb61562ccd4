"""Rendering a mesh from a known azimuth, for orientation estimators.

Azimuth convention (ours, Orient Anything's, the synthetic benchmark's): in the
object frame X = front, Y = the object's left, Z = up; azimuth 0 puts the camera
on ``+X`` (the object faces the camera) and the azimuth grows as the camera
orbits counter-clockwise seen from above, towards ``+Y``. So the camera centre at
azimuth ``a`` and elevation ``e`` is ``d * (cos a cos e, sin a cos e, sin e)``
relative to the bounding-box centre.

If a mesh is yawed by ``theta`` (its front points along azimuth ``theta``), a
camera at azimuth ``psi`` sees it from apparent azimuth ``psi - theta``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geocorr.geometry.camera import Camera, fov_to_focal, look_at

__all__ = ["ViewSettings", "orbit_camera", "render_view", "rotation_z"]


@dataclass(frozen=True)
class ViewSettings:
    """How views for orientation estimation are rendered.

    Attributes:
        size: square image side in pixels. 128: at 96 the CPU template
            estimator confused front and back of buses (vote accuracy 0.62 vs
            1.00 at 128 with elevation 35 on the benchmark's 8 buses); Orient
            Anything resizes to 518 itself.
        elevation_deg: camera elevation above the object's horizontal plane.
            35 degrees shows the roof line (which differs front to back) as
            well as the sides (20 and 10 degrees were worse for buses, see
            benchmarks/results/reconstruct.md); the paper does not state it.
        fov_deg: field of view; 30 degrees is a mild perspective.
        fill: fraction of the image side covered by the bounding sphere.
    """

    size: int = 128
    elevation_deg: float = 35.0
    fov_deg: float = 30.0
    fill: float = 0.9


def rotation_z(angle_deg: float) -> np.ndarray:
    """``(3, 3)`` rotation by ``angle_deg`` about +Z (counter-clockwise seen from above)."""
    a = math.radians(angle_deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def orbit_camera(vertices: np.ndarray, azimuth_deg: float,
                 settings: ViewSettings = ViewSettings()) -> Camera:
    """Camera orbiting the mesh's bounding-box centre at ``azimuth_deg``.

    Args:
        vertices: ``(V, 3)`` object-frame vertices (Z up).
        azimuth_deg: camera azimuth (see the module docstring).
        settings: image size, elevation, field of view, fill.

    Returns:
        A :class:`Camera` of ``settings.size`` square pixels looking at the centre.
    """
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
        raise ValueError(f"vertices must have shape (V, 3) with V > 0, got {v.shape}")
    lo, hi = v.min(0), v.max(0)
    centre = 0.5 * (lo + hi)
    radius = max(0.5 * float(np.linalg.norm(hi - lo)), 1e-9)
    half = math.radians(settings.fov_deg) / 2
    dist = radius / math.sin(half * settings.fill)
    a, e = math.radians(azimuth_deg), math.radians(settings.elevation_deg)
    eye = centre + dist * np.array([math.cos(a) * math.cos(e), math.sin(a) * math.cos(e),
                                    math.sin(e)])
    R, t = look_at(eye, centre, up=(0.0, 0.0, 1.0))
    f = fov_to_focal(settings.fov_deg, settings.size)
    c = (settings.size - 1) / 2
    K = np.array([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]])
    return Camera(K, R, t, settings.size, settings.size)


def render_view(vertices: np.ndarray, faces: np.ndarray, azimuth_deg: float,
                settings: ViewSettings = ViewSettings()) -> np.ndarray:
    """Normal-shaded render of the mesh on white at a known azimuth.

    Each covered pixel shows its face's camera-frame normal, turned towards the
    camera (so winding does not matter), as ``(n + 1) / 2`` in RGB. Unlike a
    silhouette, this separates front from back of shapes whose outline is
    180-degree symmetric (buses, boats).

    Args:
        vertices: ``(V, 3)`` object-frame vertices.
        faces: ``(F, 3)`` triangle indices.
        azimuth_deg: camera azimuth.
        settings: see :class:`ViewSettings`.

    Returns:
        ``(size, size, 3)`` uint8 image, white background.
    """
    from geocorr.geometry.raster import rasterize

    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    cam = orbit_camera(v, azimuth_deg, settings)
    frags = rasterize(v, f, cam)
    img = np.full((settings.size, settings.size, 3), 255, np.uint8)
    covered = frags.face_index >= 0
    if not covered.any():
        return img
    pc = cam.to_camera(v)
    tri = pc[f]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    centroid = tri.mean(1)
    flip = np.einsum("ij,ij->i", n, centroid) > 0  # pointing away from the camera
    n[flip] *= -1
    fid = frags.face_index[covered]
    img[covered] = np.clip((n[fid] + 1.0) * 127.5, 0, 255).astype(np.uint8)
    return img

"""DIY-SC's spherical-prototype filter, as a baseline to geodesic verification.

DIY-SC maps every pixel to a direction on a unit sphere with a trained
spherical mapper and keeps a match when the two directions are within an
angle (0.15π). We have no trained mapper; the canonicalized mesh plays its
part: each candidate pixel is lifted onto its mesh by ray casting (as in
:mod:`geocorr.matching.verify`), the hit point ``X`` becomes

    ``d = normalise((X - c) / (extent / 2))``

with ``c`` the centre and ``extent`` the side lengths of the mesh's bbox
(axes normalised so elongated objects still spread over the sphere), and a
match is kept iff ``angle(d_s, d_t) < theta``. Same inputs and same
:class:`~geocorr.matching.verify.Verification` record as the geodesic filter,
so both are compared on the same candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocorr.geometry.camera import Camera
from geocorr.geometry.raycast import dominant_vertex
from geocorr.matching.verify import MeshIndex, Verification

__all__ = ["SphereSettings", "sphere_directions", "verify_sphere"]


@dataclass
class SphereSettings:
    """Settings of :func:`verify_sphere`.

    Attributes:
        theta: keep a match iff the angle between its two sphere directions is
            below this (radians); DIY-SC's default 0.15π.
    """

    theta: float = 0.15 * np.pi

    def __post_init__(self) -> None:
        if not 0 < self.theta <= np.pi:
            raise ValueError(f"theta must be in (0, pi], got {self.theta}")


def sphere_directions(points: np.ndarray, center: np.ndarray, extent: np.ndarray) -> np.ndarray:
    """Unit-sphere directions of points in a bbox-normalised frame.

    Args:
        points: ``(N, 3)`` canonical-frame points.
        center: ``(3,)`` bbox centre.
        extent: ``(3,)`` bbox side lengths (zero sides count as 1).

    Returns:
        ``(N, 3)`` float64 unit vectors (a point at the centre maps to ``+X``).
    """
    half = np.where(np.asarray(extent, float) > 0, np.asarray(extent, float) / 2, 1.0)
    p = (np.asarray(points, dtype=np.float64) - center) / half
    n = np.linalg.norm(p, axis=1, keepdims=True)
    out = np.divide(p, n, out=np.zeros_like(p), where=n > 1e-12)
    out[n[:, 0] <= 1e-12] = (1.0, 0.0, 0.0)
    return out


def verify_sphere(source: MeshIndex, target: MeshIndex, camera_s: Camera, camera_t: Camera,
                  src_uv: np.ndarray, trg_uv: np.ndarray,
                  settings: SphereSettings | None = None) -> Verification:
    """Spherical-prototype filter of ``N`` candidate matches (module doc).

    Args:
        source: source mesh index.
        target: target mesh index.
        camera_s: source camera.
        camera_t: target camera.
        src_uv: ``(N, 2)`` source pixels.
        trg_uv: ``(N, 2)`` target pixels.
        settings: see :class:`SphereSettings`.

    Returns:
        :class:`Verification`; ``errors`` are angles in radians, ``v_hat_*`` are -1.
    """
    s = settings or SphereSettings()
    src_uv = np.asarray(src_uv, dtype=np.float64)
    trg_uv = np.asarray(trg_uv, dtype=np.float64)
    if src_uv.ndim != 2 or src_uv.shape[1] != 2 or src_uv.shape != trg_uv.shape:
        raise ValueError(f"src_uv and trg_uv must both be (N, 2), got {src_uv.shape} and "
                         f"{trg_uv.shape}")
    n = len(src_uv)
    hs = source.caster.cast_pixels(camera_s, src_uv)
    ht = target.caster.cast_pixels(camera_t, trg_uv)
    hit = np.asarray(hs.hit, bool) & np.asarray(ht.hit, bool)
    errors = np.full(n, np.nan)
    idx = np.flatnonzero(hit)
    if len(idx):
        ds = sphere_directions(hs.points[idx], source.bbox_center, source.bbox_extent)
        dt = sphere_directions(ht.points[idx], target.bbox_center, target.bbox_extent)
        errors[idx] = np.arccos(np.clip(np.sum(ds * dt, axis=1), -1.0, 1.0))
    kept = hit & (np.nan_to_num(errors, nan=np.inf) < s.theta)
    v_s = np.where(hit, dominant_vertex(source.faces, hs), -1)
    v_t = np.where(hit, dominant_vertex(target.faces, ht), -1)
    neg = np.full(n, -1, dtype=np.int64)
    return Verification(errors=errors, kept=kept, hit=hit, n_missed=int(n - len(idx)), v_s=v_s,
                        v_t=v_t, v_hat_s=neg, v_hat_t=neg.copy(), threshold=float(s.theta))

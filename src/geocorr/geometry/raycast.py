"""First-hit ray casting against a triangle mesh.

The heavy lifting is Intel Embree (through ``embreex`` and trimesh's
``RayMeshIntersector``), which finds the first triangle each ray hits in
float32. Everything reported back is then recomputed in float64 from that
triangle: the ray/plane intersection gives the point and distance, and the
barycentrics follow from the point. If ``embreex`` is missing, trimesh's
pure-python intersector is used instead (same results, ~50x slower) and a
warning says so.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

from geocorr.geometry.camera import Camera

__all__ = ["RayCaster", "RayHits", "cast_rays", "dominant_vertex"]


@dataclass(frozen=True)
class RayHits:
    """First hit of each ray.

    Attributes:
        hit: ``(N,)`` bool, the ray hits the mesh.
        face: ``(N,)`` int64 index of the first face hit; -1 on a miss.
        bary: ``(N, 3)`` float64 barycentric weights of the hit point with
            respect to ``faces[face]``'s three vertices (non-negative, sum 1);
            NaN on a miss.
        points: ``(N, 3)`` float64 hit points in the mesh frame; NaN on a miss.
        distance: ``(N,)`` float64 Euclidean distance from the ray origin to
            the hit point; ``inf`` on a miss.
    """

    hit: np.ndarray
    face: np.ndarray
    bary: np.ndarray
    points: np.ndarray
    distance: np.ndarray

    def __len__(self) -> int:
        return len(self.hit)


class RayCaster:
    """Ray caster bound to one mesh; the acceleration structure is built once.

    Args:
        vertices: ``(V, 3)`` mesh vertices.
        faces: ``(F, 3)`` vertex indices.
        engine: ``"embree"`` (needs ``embreex``), ``"python"`` (trimesh's
            pure-python intersector, slow) or ``None``: embree when importable,
            else python with a warning.

    Attributes:
        engine: the engine actually used, ``"embree"`` or ``"python"``.
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray,
                 engine: Literal["embree", "python"] | None = None) -> None:
        import trimesh

        v = np.asarray(vertices, dtype=np.float64)
        f = np.asarray(faces)
        if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
            raise ValueError(f"RayCaster: vertices must have shape (V, 3), V > 0, got {v.shape}")
        if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0 or not np.issubdtype(f.dtype, np.integer):
            raise ValueError(f"RayCaster: faces must be integer (F, 3), F > 0, got {f.shape}")
        if f.min() < 0 or f.max() >= len(v):
            raise ValueError(f"RayCaster: face index out of range [0, {len(v)})")
        if not np.all(np.isfinite(v)):
            raise ValueError("RayCaster: vertices contain NaN or inf")
        self.vertices = v
        self.faces = f.astype(np.int64)
        mesh = trimesh.Trimesh(vertices=v, faces=self.faces, process=False)
        if engine not in (None, "embree", "python"):
            raise ValueError(f"RayCaster: engine must be 'embree', 'python' or None, "
                             f"got {engine!r}")
        if engine in (None, "embree"):
            try:
                from trimesh.ray.ray_pyembree import RayMeshIntersector
            except ImportError as exc:
                if engine == "embree":
                    raise ImportError("RayCaster(engine='embree') needs embreex: "
                                      "pip install embreex") from exc
                warnings.warn("embreex is not installed; ray casting falls back to trimesh's "
                              "pure-python intersector (much slower). pip install embreex",
                              RuntimeWarning, stacklevel=2)
                engine = "python"
            else:
                self._intersector = RayMeshIntersector(mesh)
                engine = "embree"
        if engine == "python":
            from trimesh.ray.ray_triangle import RayMeshIntersector as PyIntersector

            self._intersector = PyIntersector(mesh)
        self.engine: str = engine
        # per-face data for the float64 refinement
        tri = v[self.faces]
        self._v0 = tri[:, 0]
        self._e1 = tri[:, 1] - tri[:, 0]
        self._e2 = tri[:, 2] - tri[:, 0]
        self._normal = np.cross(self._e1, self._e2)

    def cast(self, origins: np.ndarray, directions: np.ndarray) -> RayHits:
        """First hit of each ray.

        Args:
            origins: ``(N, 3)`` ray origins.
            directions: ``(N, 3)`` ray directions (any non-zero length).

        Returns:
            :class:`RayHits` with ``N`` entries (empty arrays for ``N == 0``).
        """
        o = np.asarray(origins, dtype=np.float64)
        d = np.asarray(directions, dtype=np.float64)
        if o.ndim != 2 or o.shape[1] != 3 or d.shape != o.shape:
            raise ValueError(f"cast: origins and directions must both be (N, 3), got {o.shape} "
                             f"and {d.shape}")
        norm = np.linalg.norm(d, axis=1, keepdims=True)
        if np.any(norm == 0) or not np.all(np.isfinite(norm)) or not np.all(np.isfinite(o)):
            raise ValueError("cast: directions must be finite and non-zero, origins finite")
        n = len(o)
        if n == 0:
            return _empty_hits()
        d = d / norm
        face = np.asarray(self._intersector.intersects_first(o, d), dtype=np.int64).reshape(n)
        return self._refine(o, d, face)

    def cast_pixels(self, camera: Camera, uv: np.ndarray) -> RayHits:
        """Cast the rays through pixel positions of a camera.

        Args:
            camera: camera looking at the mesh (mesh in the camera's object frame).
            uv: ``(N, 2)`` pixel coordinates (integer = pixel centre).

        Returns:
            :class:`RayHits`; ``distance`` is measured from the camera centre.
        """
        uv = np.asarray(uv, dtype=np.float64)
        if uv.ndim != 2 or uv.shape[1] != 2:
            raise ValueError(f"cast_pixels: uv must have shape (N, 2), got {uv.shape}")
        if len(uv) == 0:
            return _empty_hits()
        origins, dirs = camera.pixel_rays(uv)
        return self.cast(origins, dirs)

    def _refine(self, o: np.ndarray, d: np.ndarray, face: np.ndarray) -> RayHits:
        """Recompute point, distance and barycentrics in float64 from the hit face."""
        n = len(o)
        hit = face >= 0
        points = np.full((n, 3), np.nan)
        bary = np.full((n, 3), np.nan)
        distance = np.full(n, np.inf)
        idx = np.flatnonzero(hit)
        if len(idx):
            fi = face[idx]
            v0, e1, e2, nrm = self._v0[fi], self._e1[fi], self._e2[fi], self._normal[fi]
            oi, di = o[idx], d[idx]
            denom = np.einsum("ij,ij->i", nrm, di)
            numer = np.einsum("ij,ij->i", nrm, v0 - oi)
            # grazing hit (ray in the face's plane): use the centroid's depth along the ray
            grazing = np.abs(denom) <= 1e-12 * np.linalg.norm(nrm, axis=1)
            t = np.where(grazing, np.einsum("ij,ij->i", v0 + (e1 + e2) / 3.0 - oi, di),
                         numer / np.where(grazing, 1.0, denom))
            p = oi + t[:, None] * di
            b = _barycentric(p - v0, e1, e2)
            # embree's float32 test can accept a point a hair outside its triangle
            b = np.clip(b, 0.0, None)
            total = b.sum(axis=1, keepdims=True)
            b = np.where(total > 0, b / np.where(total > 0, total, 1.0), 1.0 / 3.0)
            points[idx], bary[idx], distance[idx] = p, b, t
        face = np.where(hit, face, -1)
        return RayHits(hit=hit, face=face, bary=bary, points=points, distance=distance)


def cast_rays(vertices: np.ndarray, faces: np.ndarray, origins: np.ndarray,
              directions: np.ndarray) -> RayHits:
    """One-shot :meth:`RayCaster.cast` (builds the acceleration structure each call)."""
    return RayCaster(vertices, faces).cast(origins, directions)


def dominant_vertex(faces: np.ndarray, hits: RayHits) -> np.ndarray:
    """Vertex of the hit face with the largest barycentric weight.

    Args:
        faces: ``(F, 3)`` faces of the mesh the hits refer to.
        hits: :class:`RayHits` of ``N`` rays.

    Returns:
        ``(N,)`` int64 vertex indices; -1 on misses.
    """
    f = np.asarray(faces, dtype=np.int64)
    out = np.full(len(hits.hit), -1, dtype=np.int64)
    idx = np.flatnonzero(hits.hit)
    if len(idx):
        corner = np.argmax(hits.bary[idx], axis=1)
        out[idx] = f[hits.face[idx], corner]
    return out


def _barycentric(p: np.ndarray, e1: np.ndarray, e2: np.ndarray) -> np.ndarray:
    """Barycentrics of ``v0 + p`` in triangle ``(v0, v0 + e1, v0 + e2)``, all ``(N, 3)``."""
    d11 = np.einsum("ij,ij->i", e1, e1)
    d12 = np.einsum("ij,ij->i", e1, e2)
    d22 = np.einsum("ij,ij->i", e2, e2)
    dp1 = np.einsum("ij,ij->i", p, e1)
    dp2 = np.einsum("ij,ij->i", p, e2)
    den = d11 * d22 - d12 * d12
    den = np.where(den == 0, 1.0, den)
    b1 = (d22 * dp1 - d12 * dp2) / den
    b2 = (d11 * dp2 - d12 * dp1) / den
    return np.stack([1.0 - b1 - b2, b1, b2], axis=1)


def _empty_hits() -> RayHits:
    return RayHits(hit=np.zeros(0, dtype=bool), face=np.zeros(0, dtype=np.int64),
                   bary=np.zeros((0, 3)), points=np.zeros((0, 3)), distance=np.zeros(0))

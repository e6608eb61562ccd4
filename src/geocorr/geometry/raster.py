"""Hard z-buffer rasterization of a triangle mesh and per-vertex attribute interpolation.

"Rasterize once, gather many": :func:`rasterize` finds, for every pixel, the
nearest face, its perspective-correct barycentric coordinates and the camera
depth; :func:`interpolate` then turns any per-vertex attribute (XYZ, normals,
512-d descriptors) into an image by a weighted gather over covered pixels only.

Conventions (those of :mod:`geocorr.geometry.camera`):

* Pixel ``(row i, col j)`` is sampled at its centre ``(u, v) = (j, i)``.
* Coverage uses edge functions with an *owner rule* for samples exactly on an
  edge: each edge is evaluated in a canonical direction (lower vertex index
  first) and a sample on it belongs to exactly one of the two faces sharing
  it. Two faces that share an edge therefore leave no hole and never both
  claim a sample, and the test is bit-exact across the two faces.
* Nearest surface wins (smallest camera z); on an exact depth tie the lower
  face index wins.
* Faces are two-sided unless ``cull_backfaces`` (a face is front-facing when
  its counter-clockwise winding, i.e. its right-hand normal, points towards
  the camera).
* **Near plane**: a face with any vertex at camera ``z <= near`` is dropped
  whole (no clipping). Our scenes keep the object in front of the camera, so
  clipping is not needed; a mesh entirely behind the camera renders empty.
* Faces whose projection has zero area (degenerate or edge-on) cover nothing.
  An empty mesh gives empty fragments (all background).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np

from geocorr.geometry.camera import Camera
from geocorr.geometry.mesh_arrays import check_faces, check_mesh_arrays

__all__ = ["Fragments", "rasterize", "interpolate", "project_vertices", "DEFAULT_NEAR"]

DEFAULT_NEAR = 1e-4
"""Default near plane (camera z, scene units): faces touching ``z <= near`` are dropped."""


@dataclass(frozen=True, eq=False)
class Fragments:
    """Per-pixel result of :func:`rasterize`.

    Attributes:
        face_index: ``(H, W)`` int64 index of the visible face, ``-1`` = background.
        bary: ``(H, W, 3)`` float32 perspective-correct barycentric coordinates of
            the pixel centre in the visible face (weights of ``faces[f, 0..2]``,
            summing to 1); ``0`` on background.
        depth: ``(H, W)`` float32 camera-frame z of the surface at the pixel
            centre; ``inf`` on background.
    """

    face_index: np.ndarray
    bary: np.ndarray
    depth: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """``(H, W)`` bool, True where some face covers the pixel centre."""
        return self.face_index >= 0

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)``."""
        return self.face_index.shape  # type: ignore[return-value]


def project_vertices(vertices: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray]:
    """Object-frame vertices to pixels and camera depth, without NaN masking.

    Args:
        vertices: ``(V, 3)`` object-frame points.
        camera: the camera.

    Returns:
        ``(uv, z)``: ``(V, 2)`` float64 pixel coordinates (meaningless where
        ``z <= 0``) and ``(V,)`` camera z.
    """
    pc = np.asarray(vertices, dtype=np.float64) @ camera.R.T + camera.t
    z = pc[:, 2]
    safe = np.where(np.abs(z) > 1e-300, z, 1e-300)
    K = camera.K
    u = (K[0, 0] * pc[:, 0] + K[0, 1] * pc[:, 1]) / safe + K[0, 2]
    v = K[1, 1] * pc[:, 1] / safe + K[1, 2]
    return np.stack([u, v], axis=1), z


def _face_selection(v_uv: np.ndarray, v_z: np.ndarray, pc_faces: np.ndarray | None,
                    faces: np.ndarray, near: float, cull_backfaces: bool,
                    camera: Camera) -> np.ndarray:
    """Indices of faces that can cover pixels: in front of ``near``, non-degenerate, facing."""
    if faces.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    keep = (v_z[faces] > near).all(axis=1)
    a, b, c = v_uv[faces[:, 0]], v_uv[faces[:, 1]], v_uv[faces[:, 2]]
    area2 = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    keep &= area2 != 0
    # Entirely off-image faces never cover a sample.
    H, W = camera.height, camera.width
    umin = np.minimum(np.minimum(a[:, 0], b[:, 0]), c[:, 0])
    umax = np.maximum(np.maximum(a[:, 0], b[:, 0]), c[:, 0])
    vmin = np.minimum(np.minimum(a[:, 1], b[:, 1]), c[:, 1])
    vmax = np.maximum(np.maximum(a[:, 1], b[:, 1]), c[:, 1])
    keep &= (umax >= 0) & (umin <= W - 1) & (vmax >= 0) & (vmin <= H - 1)
    if cull_backfaces:
        assert pc_faces is not None
        keep &= _front_facing(pc_faces)
    return np.flatnonzero(keep)


def _front_facing(pc_faces: np.ndarray) -> np.ndarray:
    """``(F,)`` bool: the counter-clockwise normal of camera-frame faces ``(F, 3, 3)``
    points towards the camera centre (the origin)."""
    p0, p1, p2 = pc_faces[:, 0], pc_faces[:, 1], pc_faces[:, 2]
    n = np.cross(p1 - p0, p2 - p0)
    return np.einsum("ij,ij->i", n, p0) < 0


# ---------------------------------------------------------------- numba core
@numba.njit(cache=True, inline="always")
def _edge(ax, ay, bx, by, px, py):
    return (bx - ax) * (py - ay) - (by - ay) * (px - ax)


@numba.njit(cache=True, inline="always")
def _owns(e, dx, dy):
    # A sample exactly on an edge (e == 0) belongs to the face whose oriented
    # edge direction (dx, dy) satisfies a fixed half-plane test; the other face
    # sharing the edge sees (-dx, -dy) and does not own it.
    if e > 0.0:
        return True
    if e < 0.0:
        return False
    return dy > 0.0 or (dy == 0.0 and dx > 0.0)


@numba.njit(cache=True, inline="always")
def _span(lo, hi, q, p):
    # Narrow [lo, hi] to where the edge function p - q * x >= 0 (relaxed test).
    if q > 0.0:
        hi = min(hi, p / q)
    elif q < 0.0:
        lo = max(lo, p / q)
    elif p < 0.0:
        hi = lo - 10.0  # the whole row is outside this edge
    return lo, hi


@numba.njit(cache=True, inline="always")
def _oriented_edge(i, j, px, py, qx, qy, sgn):
    """The edge between vertices ``i`` (at ``p``) and ``j`` (at ``q``), directed from the
    lower vertex index to the higher: ``(ax, ay, bx, by, s, dx, dy)`` with ``s`` the
    face's orientation ``sgn`` flipped when the direction was, and ``d = s (b - a)``."""
    if i < j:
        return px, py, qx, qy, sgn, sgn * (qx - px), sgn * (qy - py)
    return qx, qy, px, py, -sgn, -sgn * (px - qx), -sgn * (py - qy)


@numba.njit(cache=True)
def _raster_numba(uv, z, faces, face_ok, near, H, W, face_out, bary_out, depth_out):
    """Z-buffer over all faces; fills the flat ``(H*W,)`` / ``(H*W, 3)`` outputs in place.

    Applies the same face rules as :func:`_face_selection` (near plane, zero
    area, ``face_ok`` for back-face culling) and the same per-sample test as
    the reference; each row is first narrowed to the span where all three
    edge functions are >= 0 (widened by a pixel), then tested exactly.
    """
    zbuf = np.full(H * W, np.inf)
    for f in range(faces.shape[0]):
        if not face_ok[f]:
            continue
        i0 = faces[f, 0]
        i1 = faces[f, 1]
        i2 = faces[f, 2]
        if z[i0] <= near or z[i1] <= near or z[i2] <= near:
            continue
        ax = uv[i0, 0]
        ay = uv[i0, 1]
        bx = uv[i1, 0]
        by = uv[i1, 1]
        cx = uv[i2, 0]
        cy = uv[i2, 1]
        area = _edge(ax, ay, bx, by, cx, cy)
        if area == 0.0:
            continue
        x0 = max(np.ceil(min(ax, min(bx, cx))), 0.0)
        x1 = min(np.floor(max(ax, max(bx, cx))), W - 1.0)
        y0 = max(np.ceil(min(ay, min(by, cy))), 0.0)
        y1 = min(np.floor(max(ay, max(by, cy))), H - 1.0)
        if x0 > x1 or y0 > y1:
            continue
        sgn = 1.0 if area > 0.0 else -1.0
        inv_area = 1.0 / (area * sgn)
        iz0 = 1.0 / z[i0]
        iz1 = 1.0 / z[i1]
        iz2 = 1.0 / z[i2]
        # Canonical edge directions (lower vertex index first) make the on-edge
        # decision identical for both faces sharing an edge. Edge k is opposite
        # vertex k: e0 = (i1, i2), e1 = (i2, i0), e2 = (i0, i1).
        e0ax, e0ay, e0bx, e0by, s0, d0x, d0y = _oriented_edge(i1, i2, bx, by, cx, cy, sgn)
        e1ax, e1ay, e1bx, e1by, s1, d1x, d1y = _oriented_edge(i2, i0, cx, cy, ax, ay, sgn)
        e2ax, e2ay, e2bx, e2by, s2, d2x, d2y = _oriented_edge(i0, i1, ax, ay, bx, by, sgn)
        for py in range(int(y0), int(y1) + 1):
            fy = float(py)
            # w_k(x) = p_k - q_k x  with  q_k = d_ky,  p_k = d_kx (fy - ay) + d_ky ax.
            lo, hi = x0, x1
            lo, hi = _span(lo, hi, d0y, d0x * (fy - e0ay) + d0y * e0ax)
            lo, hi = _span(lo, hi, d1y, d1x * (fy - e1ay) + d1y * e1ax)
            lo, hi = _span(lo, hi, d2y, d2x * (fy - e2ay) + d2y * e2ax)
            if lo > hi + 2.0:
                continue
            xa = max(int(np.ceil(lo)) - 1, int(x0))
            xb = min(int(np.floor(hi)) + 1, int(x1))
            row = py * W
            for px in range(xa, xb + 1):
                fx = float(px)
                w0 = s0 * _edge(e0ax, e0ay, e0bx, e0by, fx, fy)
                if not _owns(w0, d0x, d0y):
                    continue
                w1 = s1 * _edge(e1ax, e1ay, e1bx, e1by, fx, fy)
                if not _owns(w1, d1x, d1y):
                    continue
                w2 = s2 * _edge(e2ax, e2ay, e2bx, e2by, fx, fy)
                if not _owns(w2, d2x, d2y):
                    continue
                l0 = w0 * inv_area * iz0
                l1 = w1 * inv_area * iz1
                l2 = w2 * inv_area * iz2
                depth = 1.0 / (l0 + l1 + l2)
                p = row + px
                if depth < zbuf[p]:
                    zbuf[p] = depth
                    face_out[p] = f
                    bary_out[p, 0] = l0 * depth
                    bary_out[p, 1] = l1 * depth
                    bary_out[p, 2] = l2 * depth
                    depth_out[p] = depth
    return zbuf


# ------------------------------------------------------------ reference path
def _owns_np(e: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    tie = (dy > 0) | ((dy == 0) & (dx > 0))
    return (e > 0) | ((e == 0) & tie)


def _raster_reference(uv, z, faces, order, H, W, face_out, bary_out, depth_out):
    """Slow, obvious version: every pixel against every face (numpy, per face)."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    u = u.ravel()
    v = v.ravel()
    zbuf = np.full(H * W, np.inf)
    for f in order:
        idx = faces[f]
        P = uv[idx]  # (3, 2)
        a, b, c = P
        area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        if area == 0:
            continue
        sgn = 1.0 if area > 0 else -1.0
        ws = []
        inside = np.ones(H * W, dtype=bool)
        for k in range(3):
            i, j = idx[(k + 1) % 3], idx[(k + 2) % 3]
            s = sgn
            if i > j:
                i, j = j, i
                s = -sgn
            pa, pb = uv[i], uv[j]
            e = s * ((pb[0] - pa[0]) * (v - pa[1]) - (pb[1] - pa[1]) * (u - pa[0]))
            inside &= _owns_np(e, s * (pb[0] - pa[0]), s * (pb[1] - pa[1]))
            ws.append(e)
        inv_area = 1.0 / (area * sgn)
        lam = np.stack(ws, axis=1) * inv_area * (1.0 / z[idx])[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = 1.0 / lam.sum(axis=1)  # meaningless outside the face; masked below
        win = inside & (depth < zbuf)
        zbuf[win] = depth[win]
        face_out[win] = f
        bary_out[win] = lam[win] * depth[win, None]
        depth_out[win] = depth[win]
    return zbuf


def rasterize(vertices: np.ndarray, faces: np.ndarray, camera: Camera, *,
              engine: Literal["numba", "reference"] = "numba",
              cull_backfaces: bool = False, near: float = DEFAULT_NEAR) -> Fragments:
    """Z-buffer rasterize a triangle mesh seen by ``camera``.

    Args:
        vertices: ``(V, 3)`` object-frame vertex positions.
        faces: ``(F, 3)`` integer vertex indices.
        camera: the camera; the image is ``camera.height x camera.width``.
        engine: ``"numba"`` (fast: loop over faces, each face's pixel bounding
            box) or ``"reference"`` (slow: every pixel against every face,
            numpy; for tests on small images). Both apply the same rules.
        cull_backfaces: drop faces whose counter-clockwise normal points away
            from the camera.
        near: camera-z near plane; faces with any vertex at ``z <= near`` are
            dropped (no clipping).

    Returns:
        :class:`Fragments` with ``face_index (H, W)``, ``bary (H, W, 3)``,
        ``depth (H, W)``. Empty meshes, meshes behind the camera and
        zero-area faces give empty (all-background) fragments.

    Raises:
        ValueError: bad shapes, non-finite vertices, out-of-range face indices,
            unknown engine or non-positive ``near``.
    """
    if engine not in ("numba", "reference"):
        raise ValueError(f"engine must be 'numba' or 'reference', got {engine!r}")
    if not (near > 0):
        raise ValueError(f"near must be positive, got {near}")
    if not isinstance(camera, Camera):
        raise ValueError(f"camera must be a geocorr Camera, got {type(camera).__name__}")
    v, f = check_mesh_arrays(vertices, faces, where="rasterize")
    H, W = camera.height, camera.width
    face_out = np.full(H * W, -1, dtype=np.int64)
    out_dtype = np.float32 if engine == "numba" else np.float64
    bary_out = np.zeros((H * W, 3), dtype=out_dtype)
    depth_out = np.full(H * W, np.inf, dtype=out_dtype)
    if f.shape[0] > 0:
        uv, z = project_vertices(v, camera)
        pc_faces = None
        if cull_backfaces:
            pc = v @ camera.R.T + camera.t
            pc_faces = pc[f]
        if engine == "numba":
            face_ok = np.ones(f.shape[0], dtype=bool)
            if cull_backfaces:
                face_ok = _front_facing(pc_faces)
            _raster_numba(uv, z, f, face_ok, float(near), H, W, face_out, bary_out, depth_out)
        else:
            order = _face_selection(uv, z, pc_faces, f, near, cull_backfaces, camera)
            _raster_reference(uv, z, f, order, H, W, face_out, bary_out, depth_out)
    return Fragments(
        face_index=face_out.reshape(H, W),
        bary=bary_out.astype(np.float32, copy=False).reshape(H, W, 3),
        depth=depth_out.astype(np.float32, copy=False).reshape(H, W),
    )


# ------------------------------------------------------------- interpolation
@numba.njit(cache=True)
def _gather_numba(face_flat, faces, bary, attr, out):
    """``out[p] = sum_k bary[p, k] * attr[faces[f, k]]`` for covered pixels ``p``."""
    D = attr.shape[1]
    for p in range(face_flat.shape[0]):
        f = face_flat[p]
        if f < 0:
            continue
        i0 = faces[f, 0]
        i1 = faces[f, 1]
        i2 = faces[f, 2]
        b0 = bary[p, 0]
        b1 = bary[p, 1]
        b2 = bary[p, 2]
        for d in range(D):
            out[p, d] = b0 * attr[i0, d] + b1 * attr[i1, d] + b2 * attr[i2, d]


def interpolate(fragments: Fragments, faces: np.ndarray, attributes: np.ndarray) -> np.ndarray:
    """Interpolate per-vertex attributes at each covered pixel.

    Only covered pixels are computed: gather the visible face's three vertex
    rows and take the barycentric-weighted sum.

    Args:
        fragments: output of :func:`rasterize` for the same ``faces``.
        faces: ``(F, 3)`` integer vertex indices.
        attributes: ``(V, D)`` per-vertex values (any float dtype; ``(V,)`` is
            treated as ``D = 1``).

    Returns:
        ``(H, W, D)`` float32 image, ``0`` on background.

    Raises:
        ValueError: shapes disagree or a face index in ``fragments`` is out of range.
    """
    attr = np.asarray(attributes)
    if attr.ndim == 1:
        attr = attr[:, None]
    if attr.ndim != 2:
        raise ValueError(f"attributes must have shape (V, D), got {attr.shape}")
    f = check_faces(faces, where="interpolate")
    fi = fragments.face_index
    H, W = fi.shape
    D = attr.shape[1]
    # np.zeros maps fresh zero pages lazily: background rows are never touched.
    out = np.zeros((H, W, D), dtype=np.float32)
    flat = fi.reshape(-1)
    fmax = int(flat.max()) if flat.size else -1
    if fmax < 0:
        return out
    if fmax >= f.shape[0]:
        raise ValueError(f"fragments reference face {fmax} but faces has {f.shape[0]} rows")
    if f.min() < 0 or f.max() >= attr.shape[0]:
        raise ValueError(f"faces index vertices outside [0, {attr.shape[0]}) of attributes")
    attr32 = np.ascontiguousarray(attr, dtype=np.float32)
    bary = np.ascontiguousarray(fragments.bary.reshape(-1, 3))
    _gather_numba(flat, np.ascontiguousarray(f, dtype=np.int64), bary, attr32,
                  out.reshape(H * W, D))
    return out

"""Render per-vertex part descriptors into an image and onto a backbone's feature grid.

Method step 5: rasterize the mesh once with the (refined) camera -- z-buffer,
nearest surface wins, perspective-correct barycentrics -- then:

1. keep only pixels that are both covered by the mesh and inside the object
   mask (pixels outside the image do not exist, so the frustum is implied);
2. give every mask pixel that received nothing the fragment (face +
   barycentrics) of its nearest kept pixel (Euclidean distance transform);
3. on a feature grid, average the descriptors of the mask pixels whose centre
   falls in each cell (normalising only over mask pixels). A cell that
   contains no mask-pixel centre gets the value of the pixel nearest to its
   centre when that pixel is in the mask (cells smaller than pixels, i.e. an
   upsampled image) and **zeros** otherwise -- zero vectors stay zero through
   fusion and never win a cosine nearest neighbour.

Steps 1-2 work on fragments, not descriptors, so a 448-d PartField field is
never materialised at full image resolution: the grid is one sparse
``(cells, V)`` matrix times the ``(V, D)`` descriptors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.ndimage import distance_transform_edt

from geocorr.features.base import FeatureMap
from geocorr.geometry.camera import Camera
from geocorr.geometry.mesh_arrays import check_mesh_arrays
from geocorr.geometry.raster import Fragments, interpolate, rasterize

__all__ = ["FilledFragments", "fill_fragments", "render_descriptor_image", "render_descriptors"]


@dataclass(frozen=True, eq=False)
class FilledFragments:
    """Fragments restricted to the mask and nearest-filled over it.

    Attributes:
        fragments: ``Fragments`` whose ``face_index (H, W)`` is ``>= 0`` exactly on
            the mask (when anything was rendered inside it), ``bary (H, W, 3)``
            and ``depth (H, W)`` copied from the source pixel.
        rendered: ``(H, W)`` bool, pixels whose fragment is their own (covered
            by the mesh and inside the mask).
        source: ``(H, W, 2)`` int64 ``(row, col)`` of the pixel each fragment
            was taken from (itself where ``rendered``); ``-1`` off the mask.
    """

    fragments: Fragments
    rendered: np.ndarray
    source: np.ndarray


def _check_mask(mask: np.ndarray, camera: Camera) -> np.ndarray:
    m = np.asarray(mask)
    if m.shape != (camera.height, camera.width):
        raise ValueError(f"mask has shape {m.shape}, camera expects "
                         f"(H={camera.height}, W={camera.width})")
    return m.astype(bool, copy=False)


def fill_fragments(fragments: Fragments, mask: np.ndarray) -> FilledFragments:
    """Drop fragments outside ``mask`` and fill uncovered mask pixels from the nearest kept one.

    Args:
        fragments: rasterizer output ``(H, W)``.
        mask: ``(H, W)`` bool object mask.

    Returns:
        :class:`FilledFragments`. If no mask pixel is covered, nothing can be
        filled: every pixel is background.
    """
    fi = fragments.face_index
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != fi.shape:
        raise ValueError(f"mask has shape {mask.shape}, fragments are {fi.shape}")
    H, W = fi.shape
    rendered = (fi >= 0) & mask
    source = np.full((H, W, 2), -1, dtype=np.int64)
    face = np.full((H, W), -1, dtype=np.int64)
    bary = np.zeros((H, W, 3), dtype=np.float32)
    depth = np.full((H, W), np.inf, dtype=np.float32)
    if rendered.any():
        _, idx = distance_transform_edt(~rendered, return_distances=True, return_indices=True)
        rr, cc = idx[0][mask], idx[1][mask]
        source[mask] = np.stack([rr, cc], axis=1)
        face[mask] = fi[rr, cc]
        bary[mask] = fragments.bary[rr, cc]
        depth[mask] = fragments.depth[rr, cc]
    return FilledFragments(Fragments(face, bary, depth), rendered, source)


def render_descriptor_image(vertices: np.ndarray, faces: np.ndarray, vertex_desc: np.ndarray,
                            camera: Camera, mask: np.ndarray) -> np.ndarray:
    """Full-resolution descriptor image (for small ``D``: figures, tests).

    Args:
        vertices: ``(V, 3)`` object-frame vertices (already refined: scale and
            translation applied, or folded into ``camera``).
        faces: ``(F, 3)`` vertex indices.
        vertex_desc: ``(V, D)`` per-vertex descriptors.
        camera: camera of the original image (``H x W``).
        mask: ``(H, W)`` bool object mask.

    Returns:
        ``(H, W, D)`` float32, nonzero only on the mask (and zero everywhere if
        no mask pixel is covered by the mesh).
    """
    v, f = check_mesh_arrays(vertices, faces, where="render_descriptor_image")
    desc = _check_desc(vertex_desc, len(v))
    mask = _check_mask(mask, camera)
    filled = fill_fragments(rasterize(v, f, camera), mask)
    return interpolate(filled.fragments, f, desc)


def _check_desc(vertex_desc: np.ndarray, n_vertices: int) -> np.ndarray:
    d = np.asarray(vertex_desc)
    if d.ndim != 2 or d.shape[0] != n_vertices:
        raise ValueError(f"vertex_desc must have shape (V={n_vertices}, D), got {d.shape}")
    if not np.all(np.isfinite(d)):
        raise ValueError("vertex_desc contains NaN or inf")
    return d


def render_descriptors(vertices: np.ndarray, faces: np.ndarray, vertex_desc: np.ndarray,
                       camera: Camera, mask: np.ndarray, like: FeatureMap,
                       name: str = "part") -> FeatureMap:
    """Render per-vertex descriptors onto the feature grid of ``like``.

    Args:
        vertices: ``(V, 3)`` object-frame vertices (refined pose applied or
            folded into ``camera``).
        faces: ``(F, 3)`` vertex indices.
        vertex_desc: ``(V, D)`` per-vertex descriptors.
        camera: camera of the original ``H x W`` image.
        mask: ``(H, W)`` bool object mask of that image.
        like: a feature map of the same image; the result has its transform
            and grid ``(h, w)``.
        name: the returned map's source name.

    Returns:
        :class:`FeatureMap` ``(D, h, w)`` float32: per cell the mean descriptor
        over the cell's mask pixels (see the module doc for empty cells).

    Raises:
        ValueError: shapes disagree, or ``like``'s image size differs from the camera's.
    """
    v, f = check_mesh_arrays(vertices, faces, where="render_descriptors")
    desc = _check_desc(vertex_desc, len(v))
    mask = _check_mask(mask, camera)
    tr = like.transform
    if (tr.src_width, tr.src_height) != (camera.width, camera.height):
        raise ValueError(f"feature map `like` is for a {tr.src_width}x{tr.src_height} image, "
                         f"camera is {camera.width}x{camera.height}")
    h, w = like.grid_size
    filled = fill_fragments(rasterize(v, f, camera), mask).fragments
    fi, bary = filled.face_index, filled.bary
    H, W = fi.shape
    S = tr.size

    rows, cols = np.nonzero(fi >= 0)
    # Cell containing each pixel centre: canvas coordinate c -> floor((c + 0.5) * w / S).
    cu = cols * tr.scale + tr.left
    cv = rows * tr.scale + tr.top
    cj = np.floor((cu + 0.5) * w / S).astype(np.int64)
    ci = np.floor((cv + 0.5) * h / S).astype(np.int64)
    inside = (cj >= 0) & (cj < w) & (ci >= 0) & (ci < h)
    rows, cols, cell = rows[inside], cols[inside], (ci * w + cj)[inside]
    count = np.bincount(cell, minlength=h * w).astype(np.float64)

    # Cells without any mask-pixel centre: nearest pixel to the cell centre, if in the mask.
    empty = np.flatnonzero(count == 0)
    if empty.size:
        centres = like.cell_centers().reshape(-1, 2)[empty]
        pc = np.rint(centres[:, 0]).astype(np.int64)
        pr = np.rint(centres[:, 1]).astype(np.int64)
        ok = (pc >= 0) & (pc < W) & (pr >= 0) & (pr < H)
        ok[ok] = fi[pr[ok], pc[ok]] >= 0
        rows = np.concatenate([rows, pr[ok]])
        cols = np.concatenate([cols, pc[ok]])
        cell = np.concatenate([cell, empty[ok]])
        count[empty[ok]] = 1.0

    tri = f[fi[rows, cols]]                       # (P, 3) vertex ids
    wgt = bary[rows, cols].astype(np.float64) / count[cell][:, None]
    A = sp.coo_matrix((wgt.reshape(-1), (np.repeat(cell, 3), tri.reshape(-1))),
                      shape=(h * w, len(v))).tocsr()
    out = np.asarray(A @ desc.astype(np.float64), dtype=np.float32)  # (h*w, D)
    return FeatureMap(np.ascontiguousarray(out.T.reshape(-1, h, w)), tr, name)

"""The part-descriptor interface (mesh -> per-vertex features) and shared helpers.

A part descriptor sees only the shape: vertices in the (canonicalized) object
frame and triangle faces. Stage 2 renders its per-vertex output into the image
(:mod:`geocorr.features.render`) and stage 3 uses it for the cross-mesh
nearest neighbour. Implementations: :class:`geocorr.features.partfield.PartField`
(the paper's model, GPU + its repository), :class:`geocorr.features.partfield.PartFieldFiles`
(features saved by PartField's own script) and
:class:`geocorr.features.geometric.GeometricDescriptor` (CPU, no weights).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from scipy.sparse import coo_matrix

from geocorr.geometry.mesh_arrays import check_mesh_arrays

__all__ = ["PartDescriptor", "face_to_vertex_features"]


@runtime_checkable
class PartDescriptor(Protocol):
    """Mesh -> per-vertex descriptors. Implementations carry their settings.

    ``name`` identifies the source in fusion (e.g. ``"partfield"``,
    ``"geometric"``); ``cache_key`` changes whenever a setting that changes the
    output changes.
    """

    name: str

    def cache_key(self) -> str:
        """A string identifying descriptor + settings (+ weights) for caches."""
        ...

    def describe(self, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """Per-vertex descriptors.

        Args:
            vertices: ``(V, 3)`` object-frame positions.
            faces: ``(F, 3)`` integer vertex indices.

        Returns:
            ``(V, D)`` float32.
        """
        ...


def face_to_vertex_features(vertices: np.ndarray, faces: np.ndarray,
                            face_features: np.ndarray) -> np.ndarray:
    """Per-face features -> per-vertex features by area-weighted averaging.

    Vertex ``v`` gets ``sum_f A_f x_f / sum_f A_f`` over the faces ``f`` that
    contain it (``A_f`` the triangle area). Where all incident faces have zero
    area the plain mean over them is used; a vertex no face references gets
    zeros (it is never rendered, so the value does not matter).

    Args:
        vertices: ``(V, 3)`` positions.
        faces: ``(F, 3)`` vertex indices.
        face_features: ``(F, D)`` per-face values.

    Returns:
        ``(V, D)`` float32.

    Raises:
        ValueError: shapes disagree.
    """
    v, f = check_mesh_arrays(vertices, faces)
    x = np.asarray(face_features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(f):
        raise ValueError(f"face_features must have shape (F={len(f)}, D), got {x.shape}")
    V, F = len(v), len(f)
    if F == 0:
        return np.zeros((V, x.shape[1]), dtype=np.float32)
    tri = v[f]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    rows = f.reshape(-1)
    cols = np.repeat(np.arange(F), 3)
    A = coo_matrix((np.repeat(area, 3), (rows, cols)), shape=(V, F)).tocsr()
    C = coo_matrix((np.ones(3 * F), (rows, cols)), shape=(V, F)).tocsr()
    wsum = np.asarray(A.sum(axis=1)).ravel()
    csum = np.asarray(C.sum(axis=1)).ravel()
    out = np.zeros((V, x.shape[1]), dtype=np.float64)
    pos = wsum > 0
    out[pos] = (A @ x)[pos] / wsum[pos, None]
    flat = (~pos) & (csum > 0)
    if flat.any():
        out[flat] = (C @ x)[flat] / csum[flat, None]
    return out.astype(np.float32)

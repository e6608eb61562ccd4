"""Validation of raw mesh arrays: ``(V, 3)`` finite vertices and ``(F, 3)`` integer faces.

Numpy only, so every consumer of plain arrays (the rasterizer, the part
descriptors, the descriptor renderer) checks them the same way without
importing trimesh.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_mesh_arrays", "check_faces"]


def check_mesh_arrays(vertices: np.ndarray, faces: np.ndarray,
                      where: str = "mesh") -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert mesh arrays.

    Args:
        vertices: ``(V, 3)`` finite positions.
        faces: ``(F, 3)`` integer indices into ``vertices`` (``F`` may be 0).
        where: what to name in error messages.

    Returns:
        ``(vertices float64 (V, 3), faces int64 (F, 3))`` (no copy when the
        input already has that dtype).

    Raises:
        ValueError: wrong shapes, non-finite values, non-integer or out-of-range
            face indices; the message starts with ``where``.
    """
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"{where}: vertices must have shape (V, 3), got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{where}: vertices contain NaN or inf")
    return v, check_faces(faces, len(v), where)


def check_faces(faces: np.ndarray, n_vertices: int | None = None,
                where: str = "mesh") -> np.ndarray:
    """Validate and convert ``(F, 3)`` integer faces (``F`` may be 0) to int64.

    Args:
        faces: the triangle indices.
        n_vertices: when given, every index must lie in ``[0, n_vertices)``.
        where: what to name in error messages.

    Raises:
        ValueError: wrong shape, non-integer or out-of-range indices.
    """
    f = np.asarray(faces)
    if f.size == 0:
        f = f.reshape(0, 3)
    if f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"{where}: faces must have shape (F, 3), got {f.shape}")
    if f.size and not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"{where}: faces must be integer vertex indices, got dtype {f.dtype}")
    f = f.astype(np.int64, copy=False)
    if n_vertices is not None and f.size and (f.min() < 0 or f.max() >= n_vertices):
        raise ValueError(f"{where}: faces index vertices outside [0, {n_vertices}): "
                         f"min {f.min()}, max {f.max()}")
    return f

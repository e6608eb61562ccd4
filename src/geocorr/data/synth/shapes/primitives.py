"""Evenly meshed closed primitives in their own unit template frame.

Every primitive starts as the surface of the cube ``[-1, 1]^3`` meshed as a
regular grid with ``(nx, ny, nz)`` cells along the three axes (so cells are
near-square once the part is scaled to its world size), and is then mapped
onto its unit shape:

* ``box``: the cube itself.
* ``cylinder``: axis along local Z; the square cross-section is mapped onto the
  unit disk with the elliptical grid mapping
  ``(x, y) -> (x sqrt(1 - y^2/2), y sqrt(1 - x^2/2))``; side faces land on the
  wall, the Z faces become the caps.
* ``ellipsoid``: the equi-angular cube sphere (coordinates warped by
  ``tan(pi s / 4)`` then normalised), which keeps cells near-uniform.

The mapped unit-shape position is the primitive's **template coordinate**: it
lies in ``[-1, 1]^3`` and names the same physical spot on every instance,
because category builders only ever move template points through smooth
per-instance placements. Building from grids avoids the slivers one gets by
subdividing a 12-triangle box (probe lesson 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["PrimitiveKind", "UnitPrimitive", "unit_primitive", "grid_counts"]

PrimitiveKind = Literal["box", "cylinder", "ellipsoid"]


@dataclass(frozen=True, eq=False)
class UnitPrimitive:
    """A closed, outward-oriented triangle mesh of a unit primitive.

    Attributes:
        template: ``(V, 3)`` float64 vertex positions on the unit shape; these
            are the template coordinates, all in ``[-1, 1]^3``.
        faces: ``(F, 3)`` int64 vertex indices, counter-clockwise seen from
            outside (outward normals).
    """

    template: np.ndarray
    faces: np.ndarray


def grid_counts(extent: np.ndarray, edge: float, minimum: int = 2) -> tuple[int, int, int]:
    """Grid cells per axis so that cells are about ``edge`` long in the world.

    Args:
        extent: ``(3,)`` approximate world lengths of the part along its
            template X, Y, Z axes.
        edge: target edge length in world units (> 0).
        minimum: fewest cells along any axis.

    Returns:
        ``(nx, ny, nz)`` cell counts.
    """
    extent = np.asarray(extent, dtype=np.float64)
    if extent.shape != (3,) or np.any(extent <= 0) or edge <= 0:
        raise ValueError(f"grid_counts: need 3 positive extents and edge > 0, got {extent}, {edge}")
    n = np.maximum(minimum, np.ceil(extent / edge - 1e-9)).astype(int)
    return int(n[0]), int(n[1]), int(n[2])


def _cube_grid(nx: int, ny: int, nz: int) -> tuple[np.ndarray, np.ndarray]:
    """Surface grid of ``[-1, 1]^3``: lattice vertices deduplicated exactly.

    Returns:
        ``(points (V, 3), quads (Q, 4))``; each quad is counter-clockwise seen
        from outside.
    """
    counts = (nx, ny, nz)
    index = -np.ones((nx + 1, ny + 1, nz + 1), dtype=np.int64)
    lattice: list[np.ndarray] = []
    quads: list[np.ndarray] = []
    next_id = 0
    for a in range(3):
        b, c = (a + 1) % 3, (a + 2) % 3
        nb, nc = counts[b], counts[c]
        jb, jc = np.meshgrid(np.arange(nb + 1), np.arange(nc + 1), indexing="ij")
        for side in (0, counts[a]):
            ijk = np.zeros((nb + 1, nc + 1, 3), dtype=np.int64)
            ijk[..., a] = side
            ijk[..., b] = jb
            ijk[..., c] = jc
            flat = ijk.reshape(-1, 3)
            ids = index[flat[:, 0], flat[:, 1], flat[:, 2]]
            new = ids < 0
            # Within one face lattice points are unique, so ids can be assigned at once.
            ids[new] = np.arange(next_id, next_id + int(new.sum()))
            next_id += int(new.sum())
            index[flat[new, 0], flat[new, 1], flat[new, 2]] = ids[new]
            lattice.append(flat[new])
            g = ids.reshape(nb + 1, nc + 1)
            q = np.stack(
                [g[:-1, :-1], g[1:, :-1], g[1:, 1:], g[:-1, 1:]], axis=-1
            ).reshape(-1, 4)
            # (b, c) counter-clockwise has normal +a; flip on the min side.
            quads.append(q if side else q[:, ::-1])
    ijk = np.concatenate(lattice)
    points = 2.0 * ijk / np.asarray(counts, dtype=np.float64) - 1.0
    return points, np.concatenate(quads)


def _map_to_shape(points: np.ndarray, kind: PrimitiveKind) -> np.ndarray:
    """Map cube-surface points onto the unit shape of ``kind``."""
    if kind == "box":
        return points.copy()
    if kind == "cylinder":
        x, y, z = points.T
        return np.stack(
            [x * np.sqrt(1.0 - 0.5 * y * y), y * np.sqrt(1.0 - 0.5 * x * x), z], axis=1
        )
    if kind == "ellipsoid":
        q = np.tan(points * (np.pi / 4.0))
        return q / np.linalg.norm(q, axis=1, keepdims=True)
    raise ValueError(f"unknown primitive kind {kind!r}; known: box, cylinder, ellipsoid")


def _split_quads(quads: np.ndarray, shape_points: np.ndarray, extent: np.ndarray) -> np.ndarray:
    """Triangulate quads along their shorter diagonal (measured at world scale)."""
    p = shape_points * (np.asarray(extent, dtype=np.float64) / 2.0)
    d02 = np.linalg.norm(p[quads[:, 0]] - p[quads[:, 2]], axis=1)
    d13 = np.linalg.norm(p[quads[:, 1]] - p[quads[:, 3]], axis=1)
    use02 = d02 <= d13 + 1e-12
    a = np.where(use02[:, None], quads[:, [0, 1, 2]], quads[:, [1, 2, 3]])
    b = np.where(use02[:, None], quads[:, [0, 2, 3]], quads[:, [1, 3, 0]])
    return np.concatenate([a, b]).astype(np.int64)


def unit_primitive(
    kind: PrimitiveKind, counts: tuple[int, int, int], extent: np.ndarray | None = None
) -> UnitPrimitive:
    """Build an evenly meshed unit primitive.

    Args:
        kind: ``"box"``, ``"cylinder"`` (axis along Z) or ``"ellipsoid"``.
        counts: ``(nx, ny, nz)`` grid cells along each axis, each >= 1
            (>= 2 for cylinders and ellipsoids so the shape stays closed and
            non-degenerate).
        extent: optional ``(3,)`` world size used only to choose each quad's
            shorter diagonal; defaults to the counts (square cells).

    Returns:
        The closed mesh with template coordinates as vertex positions.
    """
    nx, ny, nz = (int(c) for c in counts)
    low = 1 if kind == "box" else 2
    if min(nx, ny, nz) < low:
        raise ValueError(f"unit_primitive: {kind} needs every count >= {low}, got {counts}")
    points, quads = _cube_grid(nx, ny, nz)
    shape = _map_to_shape(points, kind)
    ext = np.asarray(counts, dtype=np.float64) if extent is None else np.asarray(extent, float)
    faces = _split_quads(quads, shape, ext)
    return UnitPrimitive(template=shape, faces=faces)

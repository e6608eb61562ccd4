"""Triangle-mesh input, health checks and repairs.

Every mesh that enters geocorr (a SAM3D reconstruction, a simulated one, a
user's own file) goes through :func:`load_mesh`; the verification and
rendering stages assume the repairs of :func:`clean_mesh` (no zero-area or
duplicate faces, no unreferenced vertices), which keep cotangent weights,
barycentrics and geodesics free of NaN.

Vertex order is preserved on load (``process=False``) so per-vertex
attributes stored beside a mesh keep their meaning; only :func:`clean_mesh`
re-indexes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = [
    "MeshError",
    "MeshReport",
    "bbox_diagonal",
    "check_mesh",
    "clean_mesh",
    "face_areas",
    "load_mesh",
    "vertex_components",
    "weld_map",
]

#: Faces whose area is below ``AREA_EPS * bbox_diagonal**2`` count as zero-area.
AREA_EPS = 1e-14
#: Vertices closer than ``MERGE_EPS * bbox_diagonal`` (per coordinate) are merged.
MERGE_EPS = 1e-9


class MeshError(ValueError):
    """A mesh file or mesh array that cannot be used; the message names the source."""


@dataclass(frozen=True)
class MeshReport:
    """Health report of a triangle mesh (see :func:`check_mesh`).

    Attributes:
        n_vertices: number of vertices ``V``.
        n_faces: number of faces ``F``.
        n_components: connected components of the faces (faces sharing a vertex
            are connected); unreferenced vertices are not counted.
        n_degenerate_faces: faces with a repeated vertex index or an area below
            ``AREA_EPS * bbox_diagonal**2``.
        n_duplicate_faces: faces whose vertex set repeats an earlier face
            (either winding); the first occurrence is not counted.
        n_unreferenced_vertices: vertices used by no face.
        is_watertight: every edge is shared by exactly two faces.
        is_edge_manifold: no edge is shared by more than two faces.
        bbox_diagonal: length of the axis-aligned bounding-box diagonal (0 if
            there are no vertices).
    """

    n_vertices: int
    n_faces: int
    n_components: int
    n_degenerate_faces: int
    n_duplicate_faces: int
    n_unreferenced_vertices: int
    is_watertight: bool
    is_edge_manifold: bool
    bbox_diagonal: float

    def problems(self) -> list[str]:
        """Human-readable list of what is wrong (empty when the mesh is healthy).

        A mesh that is not watertight or has several components is reported too:
        reconstructions are expected to be closed, single surfaces, but both
        conditions are handled by the geodesic solver.
        """
        out: list[str] = []
        if self.n_faces == 0:
            out.append("mesh has no faces")
        if self.n_degenerate_faces:
            out.append(f"{self.n_degenerate_faces} degenerate (zero-area) faces")
        if self.n_duplicate_faces:
            out.append(f"{self.n_duplicate_faces} duplicate faces")
        if self.n_unreferenced_vertices:
            out.append(f"{self.n_unreferenced_vertices} unreferenced vertices")
        if not self.is_edge_manifold:
            out.append("non-manifold edges (an edge shared by more than two faces)")
        if self.n_faces and not self.is_watertight:
            out.append("not watertight (boundary or non-manifold edges)")
        if self.n_components > 1:
            out.append(f"{self.n_components} disconnected components")
        return out


def bbox_diagonal(vertices: np.ndarray) -> float:
    """Length of the axis-aligned bounding-box diagonal.

    Args:
        vertices: ``(V, 3)`` points.

    Returns:
        The diagonal length, 0.0 for no vertices.
    """
    v = _vertices(vertices, "vertices")
    if len(v) == 0:
        return 0.0
    return float(np.linalg.norm(v.max(axis=0) - v.min(axis=0)))


def face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Triangle areas.

    Args:
        vertices: ``(V, 3)``.
        faces: ``(F, 3)`` vertex indices.

    Returns:
        ``(F,)`` float64 areas.
    """
    v = _vertices(vertices, "vertices")
    f = _faces(faces, len(v), "faces")
    tri = v[f]
    return 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)


def vertex_components(n_vertices: int, faces: np.ndarray) -> np.ndarray:
    """Connected-component label of every vertex (faces sharing a vertex connect).

    Args:
        n_vertices: ``V``.
        faces: ``(F, 3)`` vertex indices.

    Returns:
        ``(V,)`` int64 labels ``0..C-1``; every unreferenced vertex is its own component.
    """
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    rows = np.concatenate([f[:, 0], f[:, 1]])
    cols = np.concatenate([f[:, 1], f[:, 2]])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_vertices, n_vertices))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def weld_map(vertices: np.ndarray) -> np.ndarray:
    """Representative of every vertex after merging coincident vertices.

    Vertices whose coordinates agree after quantisation to
    ``MERGE_EPS * bbox_diagonal`` form a group; the group's lowest index
    represents it.

    Args:
        vertices: ``(V, 3)``.

    Returns:
        ``(V,)`` int64; ``rep[i] == i`` for representatives.
    """
    v = _vertices(vertices, "vertices")
    if len(v) == 0:
        return np.zeros(0, dtype=np.int64)
    step = max(MERGE_EPS * bbox_diagonal(v), 1e-300)
    q = np.round((v - v.min(axis=0)) / step).astype(np.int64)
    _, first, inverse = np.unique(q, axis=0, return_index=True, return_inverse=True)
    return first[inverse.reshape(-1)].astype(np.int64)


def load_mesh(path: str | os.PathLike) -> trimesh.Trimesh:
    """Load any trimesh-readable triangle mesh (ply, obj, off, stl, glb, gltf, ...).

    Scenes (glb/gltf, multi-object obj) are flattened into one mesh with every
    node transform applied. Vertex order is kept as stored (no merging); run
    :func:`clean_mesh` for repairs.

    Args:
        path: mesh file.

    Returns:
        A ``trimesh.Trimesh`` with at least one face.

    Raises:
        MeshError: the file is missing, unreadable/corrupt, or holds no faces.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise MeshError(f"mesh file {path} is a directory; give a .ply, .glb or .obj file")
    if not os.path.isfile(path):
        raise MeshError(f"mesh file not found: {path}")
    try:
        scene = trimesh.load_scene(path, process=False)
    except Exception as exc:  # trimesh raises many types for bad files
        raise MeshError(f"cannot read mesh file {path}: {type(exc).__name__}: {exc}") from exc
    meshes = [g for g in scene.geometry.values() if isinstance(g, trimesh.Trimesh)]
    if not meshes or all(len(m.faces) == 0 for m in meshes):
        raise MeshError(f"mesh file {path} has no triangle faces")
    try:
        mesh = scene.to_mesh()
    except Exception as exc:
        raise MeshError(f"cannot flatten scene in {path}: {type(exc).__name__}: {exc}") from exc
    if len(mesh.faces) == 0:
        raise MeshError(f"mesh file {path} has no triangle faces")
    if not np.all(np.isfinite(mesh.vertices)):
        raise MeshError(f"mesh file {path} has non-finite vertex coordinates")
    return mesh


def check_mesh(mesh: trimesh.Trimesh) -> MeshReport:
    """Count the defects that matter downstream (see :class:`MeshReport`).

    Args:
        mesh: the mesh; not modified.

    Returns:
        A :class:`MeshReport`.
    """
    v = _vertices(mesh.vertices, "mesh.vertices")
    f = _faces(mesh.faces, len(v), "mesh.faces")
    diag = bbox_diagonal(v)
    n_v, n_f = len(v), len(f)
    degenerate = _degenerate(v, f, diag)
    duplicate = _duplicate(f)
    referenced = np.zeros(n_v, dtype=bool)
    referenced[f.ravel()] = True
    if n_f:
        labels = vertex_components(n_v, f)
        n_comp = len(np.unique(labels[referenced]))
        edges = np.sort(f[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
        _, counts = np.unique(edges, axis=0, return_counts=True)
        watertight = bool(np.all(counts == 2))
        manifold = bool(np.all(counts <= 2))
    else:
        n_comp, watertight, manifold = 0, False, True
    return MeshReport(
        n_vertices=n_v,
        n_faces=n_f,
        n_components=int(n_comp),
        n_degenerate_faces=int(degenerate.sum()),
        n_duplicate_faces=int(duplicate.sum()),
        n_unreferenced_vertices=int((~referenced).sum()),
        is_watertight=watertight,
        is_edge_manifold=manifold,
        bbox_diagonal=diag,
    )


def clean_mesh(mesh: trimesh.Trimesh, *, keep_largest_component: bool = False
               ) -> trimesh.Trimesh:
    """Repair a mesh for rendering and geodesics.

    Repairs, in order:

    1. merge vertices whose coordinates agree to ``MERGE_EPS * bbox_diagonal``
       (the first vertex of a group is kept; seams in exported meshes close);
    2. drop degenerate faces: a repeated vertex index (often created by step 1)
       or an area below ``AREA_EPS * bbox_diagonal**2`` — these give infinite
       cotangent weights and NaN geodesics;
    3. drop duplicate faces (same vertex set, either winding; the first is kept);
    4. optionally keep only the connected component with the most faces;
    5. drop unreferenced vertices (surviving vertices keep their relative order).

    Per-vertex/face visuals are not carried over; the result has plain geometry.

    Args:
        mesh: input mesh; not modified.
        keep_largest_component: keep only the component with the most faces.

    Returns:
        A new ``trimesh.Trimesh`` (``process=False``).

    Raises:
        MeshError: nothing remains after the repairs.
    """
    v = _vertices(mesh.vertices, "mesh.vertices")
    f = _faces(mesh.faces, len(v), "mesh.faces")
    diag = bbox_diagonal(v)
    f = weld_map(v)[f]                                   # 1. merge coincident vertices
    # 2. + 3. degenerate and duplicate faces
    f = f[~_degenerate(v, f, diag)]
    f = f[~_duplicate(f)]
    # 4. largest component
    if keep_largest_component and len(f):
        labels = vertex_components(len(v), f)
        face_label = labels[f[:, 0]]
        f = f[face_label == np.bincount(face_label).argmax()]
    if len(f) == 0:
        raise MeshError("clean_mesh: no faces remain after removing degenerate faces")
    # 5. unreferenced vertices
    used = np.unique(f.ravel())
    remap = np.full(len(v), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return trimesh.Trimesh(vertices=v[used].copy(), faces=remap[f], process=False)


# ---------------------------------------------------------------- helpers
def _vertices(vertices: np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise MeshError(f"{name} must have shape (V, 3), got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise MeshError(f"{name} contains NaN or inf")
    return v


def _faces(faces: np.ndarray, n_vertices: int, name: str) -> np.ndarray:
    f = np.asarray(faces)
    if f.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    if f.ndim != 2 or f.shape[1] != 3:
        raise MeshError(f"{name} must have shape (F, 3), got {f.shape}")
    if not np.issubdtype(f.dtype, np.integer):
        raise MeshError(f"{name} must hold integer vertex indices, got {f.dtype}")
    f = f.astype(np.int64)
    if f.min() < 0 or f.max() >= n_vertices:
        raise MeshError(f"{name} index out of range [0, {n_vertices})")
    return f


def _degenerate(v: np.ndarray, f: np.ndarray, diag: float) -> np.ndarray:
    if len(f) == 0:
        return np.zeros(0, dtype=bool)
    repeated = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])
    return repeated | (face_areas(v, f) <= AREA_EPS * diag * diag)


def _duplicate(f: np.ndarray) -> np.ndarray:
    if len(f) == 0:
        return np.zeros(0, dtype=bool)
    _, first = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
    dup = np.ones(len(f), dtype=bool)
    dup[first] = False
    return dup

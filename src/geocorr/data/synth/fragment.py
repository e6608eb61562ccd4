"""A fragmented copy of a mesh: the same surface cut into many separate pieces.

Learned reconstructions (and marching cubes on a noisy occupancy) often come
out as hundreds of small disconnected pieces that together still cover the
object. :func:`fragment_mesh` makes such a copy deterministically, so a method
can be scored on the fragmented copy and on the original *of the same shape*:

1. the faces are grown into ``pieces`` clusters from random seed faces
   (breadth-first over shared edges, each face joins the nearest seed), so
   every cluster is one connected patch;
2. every vertex is duplicated once per cluster that uses it, so the clusters
   no longer share vertices (each is its own connected component);
3. each cluster is moved by its own random offset of length
   ``gap * median edge length`` (uniform direction), so the pieces no longer
   meet: neighbouring borders are ``0 .. 2 * gap`` edge lengths apart or
   overlap, like the cracks of a real fragmented reconstruction, and a
   vertex weld cannot put the surface back together.

``origin`` maps every new vertex to the vertex it was copied from, which
carries per-vertex data (descriptors, ground truth) across.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

__all__ = ["FragmentedMesh", "fragment_mesh"]


@dataclass(frozen=True, eq=False)
class FragmentedMesh:
    """A mesh cut into pieces.

    Attributes:
        vertices: ``(V', 3)`` float64 vertices (each piece moved by its offset).
        faces: ``(F, 3)`` int64 faces, in the order of the input faces.
        origin: ``(V',)`` int64 input vertex each vertex was copied from.
        piece: ``(V',)`` int64 piece of each vertex, ``0 .. n_pieces - 1``.
        n_pieces: number of pieces (connected components if no piece is
            pinched; ``<= pieces`` asked for).
    """

    vertices: np.ndarray
    faces: np.ndarray
    origin: np.ndarray
    piece: np.ndarray
    n_pieces: int


def _face_adjacency(faces: np.ndarray) -> coo_matrix:
    """``(F, F)`` adjacency of faces that share an edge."""
    f = len(faces)
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]),
                    axis=1)
    owner = np.tile(np.arange(f), 3)
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    e, o = edges[order], owner[order]
    same = np.all(e[1:] == e[:-1], axis=1)
    a, b = o[:-1][same], o[1:][same]
    return coo_matrix((np.ones(len(a)), (a, b)), shape=(f, f))


def fragment_mesh(vertices: np.ndarray, faces: np.ndarray, pieces: int = 1000,
                  gap: float = 0.3, seed: int = 0) -> FragmentedMesh:
    """Cut a mesh into about ``pieces`` disconnected patches (module doc).

    Args:
        vertices: ``(V, 3)``.
        faces: ``(F, 3)`` vertex indices.
        pieces: number of seed faces (``1 <= pieces <= F``).
        gap: offset of each piece in median edge lengths (``>= 0``; 0 keeps
            the pieces in place, so their borders coincide).
        seed: seed of the seed faces and the offsets.

    Returns:
        :class:`FragmentedMesh`.

    Raises:
        ValueError: bad shapes, ``pieces`` out of range or negative ``gap``.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"fragment_mesh: vertices must be (V, 3), got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer) or len(f) == 0:
        raise ValueError(f"fragment_mesh: faces must be integer (F > 0, 3), got {f.shape}")
    f = f.astype(np.int64)
    if f.min() < 0 or f.max() >= len(v):
        raise ValueError(f"fragment_mesh: face index out of range [0, {len(v)})")
    if not 1 <= int(pieces) <= len(f):
        raise ValueError(f"fragment_mesh: pieces must be in [1, {len(f)}], got {pieces}")
    if not (np.isfinite(gap) and gap >= 0):
        raise ValueError(f"fragment_mesh: gap must be finite and >= 0, got {gap}")
    rng = np.random.default_rng(seed)
    seeds = np.sort(rng.choice(len(f), int(pieces), replace=False))
    # breadth-first growth: unit edge weights, each face joins its nearest seed
    _, _, nearest = dijkstra(_face_adjacency(f).tocsr(), directed=False, indices=seeds,
                             unweighted=True, min_only=True, return_predecessors=True)
    seed_rank = np.full(len(f), -1, dtype=np.int64)
    seed_rank[seeds] = np.arange(len(seeds))
    # faces no seed reaches (another surface component) each start their own piece
    unreached = nearest < 0
    label = np.where(unreached, -1, seed_rank[np.maximum(nearest, 0)])
    if unreached.any():
        from geocorr.geometry.mesh import vertex_components

        comp = vertex_components(len(v), f)[f[unreached, 0]]
        label[unreached] = len(seeds) + np.unique(comp, return_inverse=True)[1].reshape(-1)
    _, label = np.unique(label, return_inverse=True)
    label = label.reshape(-1)
    n_pieces = int(label.max()) + 1
    # one copy of each vertex per piece that uses it
    key = (np.repeat(label, 3) * len(v) + f.ravel())
    uniq, inv = np.unique(key, return_inverse=True)
    origin = uniq % len(v)
    piece = uniq // len(v)
    new_faces = inv.reshape(-1, 3).astype(np.int64)
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    median_edge = float(np.median(np.linalg.norm(v[edges[:, 0]] - v[edges[:, 1]], axis=1)))
    direction = rng.normal(size=(n_pieces, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    offset = gap * median_edge * direction
    return FragmentedMesh(vertices=v[origin] + offset[piece], faces=new_faces,
                          origin=origin.astype(np.int64), piece=piece.astype(np.int64),
                          n_pieces=n_pieces)

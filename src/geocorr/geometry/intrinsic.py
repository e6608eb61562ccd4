"""Intrinsic Delaunay triangulation of a mesh by edge flips.

The cotangent Laplacian of a mesh with obtuse or sliver triangles has
negative edge weights, and the heat method built on it loses accuracy: on
randomly sampled, stretched ellipsoids and an anisotropic torus its median
error against exact geodesics is 5-46 %, against 1.1-1.7 % on their intrinsic
Delaunay triangulations (``benchmarks/RESULTS.md``, geodesic accuracy).
An *intrinsic* flip replaces edge
``ij`` of the triangles ``ijk`` and ``jil`` by the straight segment ``kl``
across their planar unfolding: the surface, its vertices and its metric stay
exactly as they were, only the triangulation of it changes, so no vertex
moves and every per-vertex quantity keeps its meaning. Flipping every edge
whose opposite angles sum to more than pi (``cot a + cot b < 0``) until none
is left gives the intrinsic Delaunay triangulation (Bobenko & Springborn
2007), whose cotangent weights are all non-negative; this is what
geometry-central's ``flipToDelaunay`` does for potpourri3d's
``MeshHeatMethodDistanceSolver(use_robust=True)``.

Before flipping, lengths are *mollified* as in Sharp & Crane 2020 ("A
Laplacian for nonmanifold triangle meshes"): if some triangle violates the
triangle inequality by less than ``delta = mollify * mean edge length``,
every edge is lengthened by the smallest ``eps`` that restores the margin
``delta`` (``eps = 0`` on a healthy mesh).

The triangulation is stored without orientation: each face lists its three
vertices and the edge opposite each corner, each edge its two faces. So
inconsistently wound faces are fine. Edges with one face (boundary) or three
or more (non-manifold) are never flipped. Two flips that would break the
data model are skipped: flipping an edge whose two faces are the same face,
or one whose two opposite corners are the same vertex (the new edge would be
a loop). Flips may create two edges between the same pair of vertices; the
Laplacian then simply sums their weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["IntrinsicTriangulation", "intrinsic_delaunay", "planar_layout"]

#: Relative length margin of the mollification (geometry-central's robust heat solver
#: uses the same ``1e-5``).
MOLLIFY = 1e-5
#: An edge is flipped when the cotangents of its two opposite angles sum below
#: ``-DELAUNAY_TOL`` (a tolerance keeps co-circular quads from flipping back and forth).
DELAUNAY_TOL = 1e-10


@dataclass(frozen=True)
class IntrinsicTriangulation:
    """A triangulation of a mesh's surface given by edge lengths alone.

    Attributes:
        faces: ``(F, 3)`` int64 vertex indices of each intrinsic triangle
            (three distinct vertices, no particular winding).
        lengths: ``(F, 3)`` float64, ``lengths[f, c]`` is the intrinsic length
            of the edge opposite corner ``c`` of face ``f``.
        edges: ``(F, 3)`` int64 edge id of the edge opposite each corner; an edge
            shared by two faces has the same id in both.
        n_flips: flips made to reach it (0 when the input was already Delaunay).
    """

    faces: np.ndarray
    lengths: np.ndarray
    edges: np.ndarray
    n_flips: int

    def edge_lengths(self) -> np.ndarray:
        """``(E,)`` length of every edge, indexed by edge id."""
        out = np.empty(int(self.edges.max()) + 1)
        out[self.edges.ravel()] = self.lengths.ravel()
        return out

    def cotan_sums(self) -> np.ndarray:
        """``(E,)`` sum of the cotangents of the angles opposite each edge (one term
        for boundary edges); all ``>= -DELAUNAY_TOL`` on interior edges when the
        triangulation is Delaunay."""
        cot = corner_cotangents(self.lengths)
        return np.bincount(self.edges.ravel(), weights=cot.ravel(),
                           minlength=int(self.edges.max()) + 1)


def intrinsic_delaunay(vertices: np.ndarray, faces: np.ndarray,
                       mollify: float = MOLLIFY) -> IntrinsicTriangulation:
    """Flip a mesh's triangulation to intrinsic Delaunay (see the module docstring).

    Args:
        vertices: ``(V, 3)`` float positions.
        faces: ``(F, 3)`` int vertex indices; no repeated vertex in a face, no
            zero-area face (the geodesic solver drops those first).
        mollify: relative triangle-inequality margin, ``>= 0``.

    Returns:
        The intrinsic triangulation on the same vertices with ``F`` faces.

    Raises:
        ValueError: bad shapes, a face with a repeated vertex, or negative ``mollify``.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"intrinsic_delaunay: vertices must be (V, 3), got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer) or len(f) == 0:
        raise ValueError(f"intrinsic_delaunay: faces must be integer (F, 3), F > 0, "
                         f"got {f.shape} {f.dtype}")
    if f.min() < 0 or f.max() >= len(v):
        raise ValueError(f"intrinsic_delaunay: face index out of range [0, {len(v)})")
    f = np.ascontiguousarray(f, dtype=np.int64)
    if np.any((f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])):
        raise ValueError("intrinsic_delaunay: a face repeats a vertex")
    if not mollify >= 0:
        raise ValueError(f"intrinsic_delaunay: mollify must be >= 0, got {mollify}")
    # edge opposite corner c joins corners c+1 and c+2
    a, b = f[:, [1, 2, 0]], f[:, [2, 0, 1]]
    pairs = np.stack([np.minimum(a, b), np.maximum(a, b)], axis=-1).reshape(-1, 2)
    uniq, edge_of = np.unique(pairs, axis=0, return_inverse=True)
    edge_of = edge_of.reshape(-1)
    n_edges = len(uniq)
    elen = np.linalg.norm(v[uniq[:, 0]] - v[uniq[:, 1]], axis=1)
    edges = edge_of.reshape(-1, 3)
    if mollify > 0:
        lf = elen[edges]
        margin = lf[:, [1, 2, 0]] + lf[:, [2, 0, 1]] - lf        # (F, 3) per-corner slack
        eps = max(0.0, float(np.max(mollify * elen.mean() - margin)))
        elen = elen + eps
    # the two faces of each interior manifold edge; -1 marks "never flip"
    count = np.bincount(edge_of, minlength=n_edges)
    order = np.argsort(edge_of, kind="stable")
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    edge_faces = np.full((n_edges, 2), -1, dtype=np.int64)
    two = np.flatnonzero(count == 2)
    edge_faces[two, 0] = order[start[two]] // 3
    edge_faces[two, 1] = order[start[two] + 1] // 3
    faces_out = f.copy()
    edges_out = np.ascontiguousarray(edges, dtype=np.int64).copy()
    n_flips = int(_flip_kernel()(faces_out, edges_out, edge_faces, elen, DELAUNAY_TOL))
    return IntrinsicTriangulation(faces=faces_out, lengths=elen[edges_out], edges=edges_out,
                                  n_flips=n_flips)


def corner_cotangents(lengths: np.ndarray) -> np.ndarray:
    """Cotangent of each corner angle from the opposite edge lengths.

    Args:
        lengths: ``(F, 3)``, ``lengths[f, c]`` opposite corner ``c``.

    Returns:
        ``(F, 3)`` cotangents, ``(b**2 + c**2 - a**2) / (4 * area)``.
    """
    sq = lengths * lengths
    area = _heron(lengths)
    return (sq[:, [1, 2, 0]] + sq[:, [2, 0, 1]] - sq) / (4.0 * area[:, None])


def planar_layout(lengths: np.ndarray) -> np.ndarray:
    """Unfold each triangle into the plane from its edge lengths.

    Args:
        lengths: ``(F, 3)``, ``lengths[f, c]`` opposite corner ``c``.

    Returns:
        ``(F, 3, 3)`` corner positions with ``z = 0``: corner 0 at the origin,
        corner 1 on the +x axis, corner 2 with ``y > 0``.
    """
    l0, l1, l2 = lengths[:, 0], lengths[:, 1], lengths[:, 2]
    out = np.zeros((len(lengths), 3, 3))
    out[:, 1, 0] = l2
    x = (l1 * l1 + l2 * l2 - l0 * l0) / (2.0 * l2)
    out[:, 2, 0] = x
    # y from the area, which is accurate where sqrt(l1**2 - x**2) cancels
    out[:, 2, 1] = 2.0 * _heron(lengths) / l2
    return out


def _heron(lengths: np.ndarray) -> np.ndarray:
    """``(F,)`` triangle areas from ``(F, 3)`` edge lengths (Kahan's stable Heron)."""
    s = -np.sort(-lengths, axis=1)              # a >= b >= c
    a, b, c = s[:, 0], s[:, 1], s[:, 2]
    prod = (a + (b + c)) * (c - (a - b)) * (c + (a - b)) * (a + (b - c))
    return 0.25 * np.sqrt(np.maximum(prod, 0.0))


_KERNEL: list = []


def _flip_kernel():
    """The numba flip loop, compiled on first use (no import-time work)."""
    if _KERNEL:
        return _KERNEL[0]
    import numba

    @numba.njit(cache=False, nogil=True, inline="always")
    def _area4(a, b, c):  # pragma: no cover - numba
        # 4 * area of the triangle with sides a, b, c: Kahan's stable Heron,
        # 16 * area**2 = (a+(b+c))(c-(a-b))(c+(a-b))(a+(b-c)) for a >= b >= c
        hi = max(a, max(b, c))
        lo = min(a, min(b, c))
        mid = max(min(a, b), min(max(a, b), c))
        return np.sqrt(max((hi + (mid + lo)) * (lo - (hi - mid)) * (lo + (hi - mid))
                           * (hi + (mid - lo)), 0.0))

    @numba.njit(cache=False, nogil=True, inline="always")
    def _push(edge, stack, top, queued, edge_faces):  # pragma: no cover - numba
        if edge_faces[edge, 0] >= 0 and not queued[edge]:
            stack[top] = edge
            queued[edge] = True
            return top + 1
        return top

    @numba.njit(cache=False, nogil=True)
    def flip_all(faces, edges, edge_faces, elen, tol):  # pragma: no cover - numba
        # Lawson's flip loop over a stack of edges still to check; returns the flips made
        n_edges = elen.shape[0]
        stack = np.empty(n_edges, dtype=np.int64)
        queued = np.zeros(n_edges, dtype=np.bool_)
        top = 0
        for e in range(n_edges):
            if edge_faces[e, 0] >= 0:
                stack[top] = e
                top += 1
                queued[e] = True
        n_flips = 0
        max_flips = 100 * n_edges + 1000
        while top > 0 and n_flips < max_flips:
            top -= 1
            e = stack[top]
            queued[e] = False
            f1, f2 = edge_faces[e, 0], edge_faces[e, 1]
            if f1 < 0 or f1 == f2:
                continue
            c1 = 0
            while edges[f1, c1] != e:
                c1 += 1
            c2 = 0
            while edges[f2, c2] != e:
                c2 += 1
            a1, b1 = (c1 + 1) % 3, (c1 + 2) % 3
            k, i, j = faces[f1, c1], faces[f1, a1], faces[f1, b1]
            l_ = faces[f2, c2]
            if k == l_:
                continue
            a2, b2 = (c2 + 1) % 3, (c2 + 2) % 3
            if faces[f2, a2] != i:
                a2, b2 = b2, a2
            e_jk, e_ik = edges[f1, a1], edges[f1, b1]   # opposite i, opposite j in f1
            e_jl, e_il = edges[f2, a2], edges[f2, b2]   # opposite i, opposite j in f2
            lij, lik, ljk, lil, ljl = elen[e], elen[e_ik], elen[e_jk], elen[e_il], elen[e_jl]
            area4_k = _area4(lij, lik, ljk)
            area4_l = _area4(lij, lil, ljl)
            if area4_k <= 0.0 or area4_l <= 0.0:
                continue
            # cot of the angle opposite ij: (b**2 + c**2 - lij**2) / (4 area)
            cot_k = (lik * lik + ljk * ljk - lij * lij) / area4_k
            cot_l = (lil * lil + ljl * ljl - lij * lij) / area4_l
            if not cot_k + cot_l < -tol:
                continue
            # unfold: i at 0, j at (lij, 0), k above, l below (height = 2 area / lij)
            xk = (lik * lik - ljk * ljk + lij * lij) / (2.0 * lij)
            yk = area4_k / (2.0 * lij)
            xl = (lil * lil - ljl * ljl + lij * lij) / (2.0 * lij)
            yl = -area4_l / (2.0 * lij)
            elen[e] = np.sqrt((xk - xl) ** 2 + (yk - yl) ** 2)
            # f1 <- (k, i, l), f2 <- (k, j, l); the new edge kl is opposite i and j
            faces[f1, 0], faces[f1, 1], faces[f1, 2] = k, i, l_
            edges[f1, 0], edges[f1, 1], edges[f1, 2] = e_il, e, e_ik
            faces[f2, 0], faces[f2, 1], faces[f2, 2] = k, j, l_
            edges[f2, 0], edges[f2, 1], edges[f2, 2] = e_jl, e, e_jk
            # jk moved from f1 to f2, il from f2 to f1
            if edge_faces[e_jk, 0] == f1:
                edge_faces[e_jk, 0] = f2
            elif edge_faces[e_jk, 1] == f1:
                edge_faces[e_jk, 1] = f2
            if edge_faces[e_il, 0] == f2:
                edge_faces[e_il, 0] = f1
            elif edge_faces[e_il, 1] == f2:
                edge_faces[e_il, 1] = f1
            n_flips += 1
            # an edge is on the stack at most once, so the stack never overflows
            top = _push(e_jk, stack, top, queued, edge_faces)
            top = _push(e_ik, stack, top, queued, edge_faces)
            top = _push(e_jl, stack, top, queued, edge_faces)
            top = _push(e_il, stack, top, queued, edge_faces)
        return n_flips

    _KERNEL.append(flip_all)
    return flip_all

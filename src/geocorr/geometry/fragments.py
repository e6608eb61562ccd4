"""Distances on meshes split into many pieces (the fragment rule of :class:`GeodesicSolver`).

A reconstruction can come out as hundreds of small disconnected pieces that
together still cover the object. The spanning-tree bridge rule of
:mod:`geocorr.geometry.geodesic` joins components by *one* bridge each, so
two points a hair apart on neighbouring pieces are joined by the tree path,
which can wander around the whole object: on a flat sheet cut into 300
pieces the tree distance between vertices more than 0.2 sides apart is over
1.5x the straight line at the median (``tests/geometry/test_fragments.py``),
and the geodesic filter loses the matches whose two ends lie on different
pieces (``benchmarks/RESULTS.md``, geodesics on fragmented meshes).

The rule. A mesh is *fragmented* when it has at least ``min_components``
surface components and its largest component holds less than
``max_main_share`` of the surface area. One body with a little debris is not
fragmented (the tree path only detours into the debris), and neither are a
few large pieces (two objects, a mesh cut in two): there the per-piece
geodesics of the engine (about 1 % accurate) are kept, joined by the tree.
On a fragmented mesh the distance is the shortest path in a graph over the
surface vertices whose edges are

- the mesh edges (length = 3D length),
- every pair of vertices closer than ``r`` in 3D, whatever their component
  (length = their 3D distance), where
  ``r = min(radius * median edge length, max_radius * bbox diagonal)``: the
  scale is tied to the mesh's own sampling (a crack narrower than about two
  edges is crossed where it is, like the surface it interrupts) and capped by
  its size (a coarse mesh does not get shortcuts across the object);
- the spanning-tree bridges (so pieces further apart than ``r`` stay
  reachable and every distance is finite),

solved with Dijkstra (exact on the graph). Chords of up to ``r`` make the
path follow the surface more closely than mesh edges alone (which overshoot
by up to ~15 % on a regular triangulation), but a graph path is still a few
per cent longer than the geodesic and cuts across gaps and thin parts
narrower than ``r``; the benchmark reports both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.spatial import cKDTree

__all__ = ["FragmentSettings", "is_fragmented", "bridged_graph", "bridge_radius", "mesh_edges"]


@dataclass(frozen=True)
class FragmentSettings:
    """When a mesh counts as fragmented and how its pieces are bridged (module doc).

    Attributes:
        min_components: the mesh can be fragmented from this many surface
            components on (8).
        max_main_share: the mesh is fragmented when its largest surface
            component holds less than this share of the surface area (0.9;
            0 never switches, which keeps the spanning-tree rule everywhere).
        radius: bridge radius in median edge lengths (2.0: cracks of up to
            ~2 edges are crossed in place; the fragmented benchmark copies
            have cracks of 0-0.6 edge lengths).
        max_radius: cap of the bridge radius as a fraction of the bbox
            diagonal (0.1).
    """

    min_components: int = 8
    max_main_share: float = 0.9
    radius: float = 2.0
    max_radius: float = 0.1

    def __post_init__(self) -> None:
        if not (isinstance(self.min_components, int) and self.min_components >= 2):
            raise ValueError(f"FragmentSettings: min_components must be an integer >= 2, "
                             f"got {self.min_components!r}")
        if not 0.0 <= self.max_main_share <= 1.0:
            raise ValueError(f"FragmentSettings: max_main_share must be in [0, 1], "
                             f"got {self.max_main_share}")
        for name in ("radius", "max_radius"):
            val = getattr(self, name)
            if not (np.isfinite(val) and val > 0):
                raise ValueError(f"FragmentSettings: {name} must be finite and > 0, got {val}")


def is_fragmented(component_area: np.ndarray, settings: FragmentSettings) -> bool:
    """Whether the fragment rule applies.

    Args:
        component_area: ``(C,)`` surface area of each component.
        settings: see :class:`FragmentSettings`.

    Returns:
        ``C >= min_components`` and the largest area is below
        ``max_main_share`` of the total.
    """
    area = np.asarray(component_area, dtype=np.float64)
    if len(area) < settings.min_components:
        return False
    total = float(area.sum())
    return total > 0 and float(area.max()) < settings.max_main_share * total


def mesh_edges(faces: np.ndarray) -> np.ndarray:
    """``(E, 2)`` int64 unique undirected edges ``(i < j)`` of ``(F, 3)`` faces."""
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    e = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    return np.unique(e, axis=0)


def bridge_radius(points: np.ndarray, edges: np.ndarray, settings: FragmentSettings) -> float:
    """``r = min(radius * median edge length, max_radius * bbox diagonal)``.

    Args:
        points: ``(N, 3)`` graph nodes (vertices, or cluster centroids).
        edges: ``(E, 2)`` surface edges between them (``i != j``).
        settings: see :class:`FragmentSettings`.
    """
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    length = np.linalg.norm(points[e[:, 0]] - points[e[:, 1]], axis=1)
    median = float(np.median(length)) if len(length) else 0.0
    diag = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))
    return min(settings.radius * median, settings.max_radius * diag)


def bridged_graph(points: np.ndarray, edges: np.ndarray, radius: float,
                  chord_nodes: np.ndarray | None = None) -> csr_matrix:
    """Graph of the fragment rule: the given edges plus chords shorter than ``radius``.

    Args:
        points: ``(N, 3)`` graph nodes.
        edges: ``(E, 2)`` edges always present (mesh edges and spanning-tree
            bridges); self-loops are ignored.
        radius: chord radius ``r``.
        chord_nodes: ``(S,)`` nodes that get chords (``None`` = all; vertices
            used by no face get none).

    Returns:
        ``(N, N)`` symmetric CSR matrix of 3D edge lengths (a zero length is
        stored as 1e-300 so the edge is kept).
    """
    n = len(points)
    nodes = np.arange(n) if chord_nodes is None else np.asarray(chord_nodes, dtype=np.int64)
    pairs = cKDTree(points[nodes]).query_pairs(radius, output_type="ndarray")
    chords = nodes[pairs] if len(pairs) else np.zeros((0, 2), dtype=np.int64)
    ij = np.concatenate([np.asarray(edges, dtype=np.int64).reshape(-1, 2), chords])
    ij = np.unique(np.sort(ij, axis=1), axis=0)
    ij = ij[ij[:, 0] != ij[:, 1]]
    w = np.maximum(np.linalg.norm(points[ij[:, 0]] - points[ij[:, 1]], axis=1), 1e-300)
    g = coo_matrix((np.concatenate([w, w]), (np.concatenate([ij[:, 0], ij[:, 1]]),
                                             np.concatenate([ij[:, 1], ij[:, 0]]))),
                   shape=(n, n))
    return g.tocsr()

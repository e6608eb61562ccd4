"""Geodesic distances on triangle meshes.

Two engines:

- ``"heat"`` (default): the heat method of Crane et al., as implemented by
  geometry-central's ``HeatMethodDistanceSolver`` (what potpourri3d's
  ``MeshHeatMethodDistanceSolver`` runs with its default ``use_robust=True``
  on a manifold mesh): the operators are built on the *intrinsic Delaunay
  triangulation* of the surface (:mod:`geocorr.geometry.intrinsic`: same
  vertices and surface, interior edges flipped until every cotangent weight
  is non-negative, lengths mollified by ``1e-5``; one per surface
  component, so the bridge rule below is unchanged), cotangent Laplacian ``L``,
  lumped barycentric mass ``M``, ``t = mean edge length**2``, heat
  ``(M + t L) u = delta_s``, unit field ``X = grad u / |grad u|`` per face,
  Poisson ``L phi = div X``, ``d = phi - phi[s]``. Re-implemented here
  because potpourri3d solves one source per call: both systems are factorised
  once (SuperLU ordering) and solved for blocks of ``BLOCK`` sources with
  numba kernels, ~4x faster per source. The only deliberate difference: the
  singular Poisson system is solved with vertex 0 pinned, where
  geometry-central adds ``1e-6 * I`` (which biases its distances by ~2e-5
  relative at 642 vertices; the tests compare against potpourri3d).
  Accuracy is about 1% of the geodesic diameter on an evenly meshed
  surface, and the median relative error stays at 1.1-1.7 % on irregular
  7.2k-vertex meshes (random vertex sampling, anisotropic stretching) where
  the method on the mesh's own triangles reaches 5-46 %
  (``benchmarks/RESULTS.md``, geodesic accuracy); the result is not exactly
  symmetric (``d(a, b) != d(b, a)`` by ~1%).
  ``HeatSettings(intrinsic_delaunay=False)`` runs the method on the mesh's
  own triangles (potpourri3d's ``use_robust=False``).
- ``"exact"``: the MMP exact polyhedral algorithm via pygeodesic. Exact on
  the polyhedron, symmetric, but ~100x slower per source.

:meth:`GeodesicSolver.pairwise` and :meth:`GeodesicSolver.all_pairs` are
symmetrised: they return ``(d(a, b) + d(b, a)) / 2``. :meth:`distances` and
:func:`geodesic_distances` return the one-directional rows.

Preprocessing (the solver's own copy; the caller's arrays are untouched):
coincident vertices (equal to ``MERGE_EPS * bbox_diagonal``, e.g. the UV
seams of an exported glb) are welded, so a seam does not cut the surface;
the duplicate that is welded away then has no face and takes its twin's
distances by the isolated-vertex rule below (offset 0). Then degenerate
faces (a repeated vertex or area below ``AREA_EPS * bbox_diagonal**2``) are
dropped because their cotangent weights are infinite and poison every
distance with NaN, and duplicate faces (same vertex set) are dropped because
they would count twice in the Laplacian. Vertex indices always refer to the
caller's mesh.

Disconnected meshes (the bridge rule): the surface components (connected by
shared vertices) are joined by a minimum spanning tree whose edge between two
components is their closest vertex pair ``(p_A, p_B)`` in 3D, of length
``|p_A - p_B|``. A path from ``a`` in ``A`` to ``b`` in ``B`` follows the
unique tree path ``A = C_0, C_1, ..., C_k = B``::

    d(a, b) = d_A(a, exit_0) + |exit_0 - entry_1| + d_C1(entry_1, exit_1) + ...
              + |exit_{k-1} - entry_k| + d_B(entry_k, b)

where ``d_C`` is the geodesic distance inside component ``C``. A vertex used
by no (non-degenerate) face hangs off its nearest surface vertex ``w``:
``d(u, x) = |u - w| + d(w, x)``. Distances are therefore always finite.

Fragmented meshes (the fragment rule, :mod:`geocorr.geometry.fragments`): a
mesh with at least ``FragmentSettings.min_components`` (8) components none of
which holds ``max_main_share`` (90 %) of the area gets, with either engine,
shortest-path distances in a graph of its mesh edges, chords shorter than
``r = 2 median edge lengths`` (capped at 0.1 bbox diagonal) and the tree
bridges, because one bridge per piece sends paths between neighbouring
pieces around the object. A mesh in one piece never reaches this rule.
:meth:`GeodesicSolver.contracted_all_pairs` gives the same graph contracted
onto a vertex clustering.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial import cKDTree

from geocorr.geometry.fragments import (
    FragmentSettings,
    bridge_radius,
    bridged_graph,
    is_fragmented,
    mesh_edges,
)
from geocorr.geometry.intrinsic import intrinsic_delaunay, planar_layout
from geocorr.geometry.mesh import (
    AREA_EPS,
    bbox_diagonal,
    face_areas,
    vertex_components,
    weld_map,
)

__all__ = ["GeodesicSolver", "HeatSettings", "FragmentSettings", "geodesic_distances", "Engine"]

Engine = Literal["heat", "exact"]

#: Sources solved per block in :meth:`GeodesicSolver.pairwise` (bounds memory to
#: ``BLOCK * V`` float64).
BLOCK = 256
#: :meth:`GeodesicSolver.all_pairs` refuses larger meshes (20k x 20k float32 = 1.6 GB).
ALL_PAIRS_MAX_VERTICES = 20_000
#: Up to this many components the spanning tree compares every pair directly.
DENSE_TREE_MAX = 64


@dataclass(frozen=True)
class HeatSettings:
    """Options of the heat engine.

    Attributes:
        intrinsic_delaunay: build the Laplacian, mass and gradients on the
            intrinsic Delaunay triangulation of each component
            (:mod:`geocorr.geometry.intrinsic`) instead of the mesh's own
            triangles. Same vertices, same surface, non-negative cotangent
            weights; on irregular meshes it cuts the median error against exact
            geodesics 3.7-27x (``benchmarks/RESULTS.md``, geodesic accuracy), on
            a Delaunay mesh it changes nothing (no flip), and on a mildly
            anisotropic jittered grid it cost 0.2 points (1.22 -> 1.45 %).
            ``False`` gives potpourri3d's ``use_robust=False`` method.
        time_scale: heat time ``t = time_scale * mean_edge_length**2`` (the mean
            over the triangulation's edges), geometry-central's ``tCoef``.
    """

    intrinsic_delaunay: bool = True
    time_scale: float = 1.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.time_scale) and self.time_scale > 0):
            raise ValueError(f"HeatSettings: time_scale must be finite and > 0, "
                             f"got {self.time_scale}")


@dataclass(frozen=True)
class _Bridge:
    """Tree edge between two surface components.

    Attributes:
        a: component index on one side.
        b: component index on the other side.
        pa: global vertex index of the bridge end in ``a``.
        pb: global vertex index of the bridge end in ``b``.
        length: Euclidean length ``|v[pa] - v[pb]|``.
    """

    a: int
    b: int
    pa: int
    pb: int
    length: float


class _Factor:
    """Sparse LU (SuperLU ordering) with numba triangular solves over many right-hand sides.

    SuperLU solves one right-hand side at a time; the heat method needs
    thousands, so the factors are extracted once and applied to a row-major
    ``(n, k)`` block, which vectorises over the ``k`` columns (~4x faster per
    column than ``splu(...).solve`` at 5k vertices).
    """

    def __init__(self, matrix: csr_matrix) -> None:
        from scipy.sparse.linalg import splu

        lu = splu(matrix.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.01,
                  options={"SymmetricMode": True})
        lower, upper = lu.L.tocsr(), lu.U.tocsr()
        lower.sort_indices()
        upper.sort_indices()
        self._lower = (lower.indptr.astype(np.int64), lower.indices.astype(np.int64),
                       lower.data)
        self._upper = (upper.indptr.astype(np.int64), upper.indices.astype(np.int64),
                       upper.data)
        #: ``(n,)`` row of the permuted right-hand side that receives ``b[i]``.
        self.perm_r = lu.perm_r.astype(np.int64)
        #: ``(n,)`` row of the permuted solution that holds ``x[i]``.
        self.perm_c = lu.perm_c.astype(np.int64)

    def solve_permuted(self, y: np.ndarray) -> None:
        """In place: ``y`` holds ``Pr b`` (row ``perm_r[i]`` = ``b[i]``), ``(n, k)``
        C-contiguous; afterwards row ``perm_c[i]`` holds ``x[i]`` of ``A x = b``.

        Working in the permuted order saves two gathers of the whole block.
        """
        _kernels()["lower"](*self._lower, y)
        _kernels()["upper"](*self._upper, y)


class _HeatMethod:
    """Batched heat method on one connected surface.

    The algorithm of geometry-central's ``HeatMethodDistanceSolver`` (which
    potpourri3d's ``MeshHeatMethodDistanceSolver`` wraps), on the intrinsic
    Delaunay triangulation (``use_robust=True``) or on the mesh's own
    triangles (``use_robust=False``), per ``settings``; each intrinsic
    triangle is unfolded into its own plane, which gives the same gradients
    and divergences as the 3D triangle when nothing was flipped. Heat
    ``(M + t L) u = delta_s`` with ``t = time_scale * mean edge length**2``
    and lumped barycentric mass ``M``; per face
    ``X = grad u / |grad u|``; ``L phi = div X``; ``d = phi - phi[s]``.
    Both systems are factorised once and solved for blocks of sources.
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, settings: HeatSettings) -> None:
        n = len(vertices)
        if settings.intrinsic_delaunay:
            tri = intrinsic_delaunay(vertices, faces)
            f = tri.faces
            p = planar_layout(tri.lengths)                  # (F, 3, 3) unfolded corners
            edge_len = tri.edge_lengths()
        else:
            f = faces
            p = vertices[f]                                 # (F, 3, 3) corner positions
            edges = np.unique(np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]],
                                                      f[:, [2, 0]]]), axis=1), axis=0)
            edge_len = np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1)
        e = p[:, [2, 0, 1]] - p[:, [1, 2, 0]]               # edge opposite corner i
        cross = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
        dbl_area = np.linalg.norm(cross, axis=1)            # (F,) twice the area
        unit_n = cross / dbl_area[:, None]
        # cotangent of the angle at corner i, between the two edges leaving it
        a = p[:, [1, 2, 0]] - p
        b = p[:, [2, 0, 1]] - p
        cot = np.einsum("fij,fij->fi", a, b) / dbl_area[:, None]
        # halfedge k runs f[k] -> f[k+1]; its opposite corner is k+2
        tail, head = f, f[:, [1, 2, 0]]
        half_w = 0.5 * cot[:, [2, 0, 1]]                    # (F, 3)
        rows = np.concatenate([tail.ravel(), head.ravel(), tail.ravel(), head.ravel()])
        cols = np.concatenate([head.ravel(), tail.ravel(), tail.ravel(), head.ravel()])
        w = half_w.ravel()
        lap = csr_matrix((np.concatenate([-w, -w, w, w]), (rows, cols)), shape=(n, n))
        mass = np.bincount(f.ravel(), weights=np.repeat(dbl_area / 6.0, 3), minlength=n)
        t = settings.time_scale * float(np.mean(edge_len)) ** 2
        self.n = n
        self.faces = np.ascontiguousarray(f, dtype=np.int64)
        self.grad_basis = np.ascontiguousarray(np.cross(unit_n[:, None, :], e))  # (F, 3, 3)
        self.div_weight = np.ascontiguousarray(
            half_w[:, :, None] * (p[:, [1, 2, 0]] - p))                           # (F, 3, 3)
        heat_op = (lap * t + csr_matrix((mass, (np.arange(n), np.arange(n))), shape=(n, n)))
        self.heat = _Factor(heat_op)
        # L is singular (constants); pin vertex 0 to zero, shift per source afterwards
        self.poisson = _Factor(lap[1:, 1:]) if n > 1 else None
        if self.poisson is not None:
            self._div_row = np.concatenate([[n - 1], self.poisson.perm_r])
            self._phi_row = np.concatenate([[n - 1], self.poisson.perm_c])

    def rows_into(self, sources: np.ndarray, out: np.ndarray) -> None:
        """Distances from ``k`` local sources to every vertex, written to ``out (k, n)``."""
        k = len(sources)
        if self.poisson is None:
            out[:] = 0.0
            return
        n = self.n
        kern = _kernels()
        heat = np.zeros((n, k))
        heat[self.heat.perm_r[sources], np.arange(k)] = 1.0
        self.heat.solve_permuted(heat)
        # Poisson right-hand side in its permuted order; row n-1 is a dummy for the
        # pinned vertex 0 and ends up holding phi[0] = 0
        poisson = np.zeros((n, k))
        kern["divergence"](self.faces, self.grad_basis, self.div_weight, heat,
                           self.heat.perm_c, self._div_row, poisson)
        self.poisson.solve_permuted(poisson[: n - 1])
        poisson[n - 1] = 0.0
        kern["finish"](poisson, self._phi_row, sources, out)


class _Component:
    """One connected surface: its vertices (global ids) and a lazily built solver."""

    def __init__(self, vertex_ids: np.ndarray, vertices: np.ndarray, faces_global: np.ndarray,
                 engine: str, heat: HeatSettings) -> None:
        self.ids = vertex_ids
        local = np.full(int(vertex_ids.max()) + 1, -1, dtype=np.int64)
        local[vertex_ids] = np.arange(len(vertex_ids))
        self.vertices = np.ascontiguousarray(vertices[vertex_ids], dtype=np.float64)
        self.faces = np.ascontiguousarray(local[faces_global], dtype=np.int64)
        self.engine = engine
        self.heat = heat
        self._solver = None

    def rows(self, local_sources: np.ndarray) -> np.ndarray:
        """Distances from local vertices to every vertex of the component, ``(k, n)``."""
        local_sources = np.asarray(local_sources, dtype=np.int64)
        if self._solver is None:
            if self.engine == "heat":
                self._solver = _HeatMethod(self.vertices, self.faces, self.heat)
            else:
                from pygeodesic.geodesic import PyGeodesicAlgorithmExact

                self._solver = PyGeodesicAlgorithmExact(self.vertices, self.faces)
        out = np.empty((len(local_sources), len(self.ids)))
        if self.engine == "heat":
            for lo in range(0, len(local_sources), BLOCK):
                self._solver.rows_into(local_sources[lo : lo + BLOCK], out[lo : lo + BLOCK])
            return out
        for i, s in enumerate(local_sources):
            d, _ = self._solver.geodesicDistances(np.array([s], dtype=np.int32), None)
            out[i] = d
        out = np.where(np.isfinite(out), np.maximum(out, 0.0), 0.0)
        out[np.arange(len(local_sources)), local_sources] = 0.0
        return out


class GeodesicSolver:
    """Geodesic distances on one mesh; per-mesh preprocessing is done once.

    Args:
        vertices: ``(V, 3)`` mesh vertices.
        faces: ``(F, 3)`` vertex indices.
        engine: ``"heat"`` (fast, ~1% error), ``"exact"`` (MMP, slow) or
            ``None`` (= ``"heat"``).
        heat: options of the heat engine (ignored by ``"exact"``); ``None`` =
            ``HeatSettings()``.
        fragments: when the fragment rule replaces both engines
            (:mod:`geocorr.geometry.fragments`); ``None`` = ``FragmentSettings()``.

    Raises:
        ValueError: bad shapes, non-finite vertices, out-of-range faces, or no
            non-degenerate face.
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray,
                 engine: Engine | None = None, heat: HeatSettings | None = None,
                 fragments: FragmentSettings | None = None) -> None:
        engine = "heat" if engine is None else engine
        if engine not in ("heat", "exact"):
            raise ValueError(f"GeodesicSolver: engine must be 'heat', 'exact' or None, "
                             f"got {engine!r}")
        if heat is not None and not isinstance(heat, HeatSettings):
            raise ValueError(f"GeodesicSolver: heat must be a HeatSettings or None, "
                             f"got {type(heat).__name__}")
        if fragments is not None and not isinstance(fragments, FragmentSettings):
            raise ValueError(f"GeodesicSolver: fragments must be a FragmentSettings or None, "
                             f"got {type(fragments).__name__}")
        self.heat: HeatSettings = heat or HeatSettings()
        self.fragment_settings: FragmentSettings = fragments or FragmentSettings()
        v = np.asarray(vertices, dtype=np.float64)
        f = np.asarray(faces)
        if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
            raise ValueError(f"GeodesicSolver: vertices must have shape (V, 3), V > 0, "
                             f"got {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError("GeodesicSolver: vertices contain NaN or inf")
        if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer):
            raise ValueError(f"GeodesicSolver: faces must be integer (F, 3), got {f.shape} "
                             f"{f.dtype}")
        f = f.astype(np.int64)
        if len(f) and (f.min() < 0 or f.max() >= len(v)):
            raise ValueError(f"GeodesicSolver: face index out of range [0, {len(v)})")
        diag = bbox_diagonal(v)
        f = weld_map(v)[f]      # seams of exported meshes must not cut the surface
        if len(f):
            repeated = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])
            f = f[~repeated & (face_areas(v, f) > AREA_EPS * diag * diag)]
            f = f[np.sort(np.unique(np.sort(f, axis=1), axis=0, return_index=True)[1])]
        if len(f) == 0:
            raise ValueError("GeodesicSolver: mesh has no non-degenerate faces")
        self.engine: str = engine
        self.vertices = v
        self.faces = f
        self.n_vertices = len(v)

        on_surface = np.zeros(len(v), dtype=bool)
        on_surface[f.ravel()] = True
        labels = vertex_components(len(v), f)
        surf_labels = np.unique(labels[on_surface])
        relabel = np.full(labels.max() + 1, -1, dtype=np.int64)
        relabel[surf_labels] = np.arange(len(surf_labels))
        #: ``(V,)`` surface component of each vertex; -1 for isolated vertices.
        self.component = np.where(on_surface, relabel[labels], -1)
        face_comp = self.component[f[:, 0]]
        order = np.argsort(face_comp, kind="stable")
        splits = np.searchsorted(face_comp[order], np.arange(1, len(surf_labels)))
        self._components = [
            _Component(np.flatnonzero(self.component == c), v, f[idx], engine, self.heat)
            for c, idx in enumerate(np.split(order, splits))
        ]
        self._local = np.full(len(v), -1, dtype=np.int64)
        for comp in self._components:
            self._local[comp.ids] = np.arange(len(comp.ids))

        # isolated vertices hang off their nearest surface vertex
        iso = np.flatnonzero(~on_surface)
        self._anchor = np.arange(len(v))
        self._anchor_len = np.zeros(len(v))
        if len(iso):
            surf = np.flatnonzero(on_surface)
            dist, nn = cKDTree(v[surf]).query(v[iso])
            self._anchor[iso] = surf[nn]
            self._anchor_len[iso] = dist
        self._bridges = self._spanning_tree()
        self._adjacent: list[list[_Bridge]] = [[] for _ in self._components]
        for br in self._bridges:
            self._adjacent[br.a].append(br)
            self._adjacent[br.b].append(_Bridge(br.b, br.a, br.pb, br.pa, br.length))
        self._row_cache: dict[int, np.ndarray] = {}
        self._all_pairs: np.ndarray | None = None
        area = np.bincount(face_comp, weights=face_areas(v, f), minlength=len(self._components))
        self._on_surface = on_surface
        #: whether the fragment rule (graph distances) replaces the engine on this mesh.
        self.fragmented: bool = is_fragmented(area, self.fragment_settings)
        #: ``(V, V)`` CSR graph of the fragment rule, built on first use.
        self._graph_cache = None

    # ------------------------------------------------------------ public API
    @property
    def n_components(self) -> int:
        """Number of surface components joined by the bridge rule."""
        return len(self._components)

    @property
    def bridge_radius(self) -> float:
        """Chord radius ``r`` of the fragment rule on this mesh (0 when it does not apply)."""
        if not self.fragmented:
            return 0.0
        return bridge_radius(self.vertices, mesh_edges(self.faces), self.fragment_settings)

    def _graph(self):
        """The fragment rule's graph over the vertices (built once)."""
        if self._graph_cache is None:
            edges = np.concatenate([mesh_edges(self.faces),
                                    np.array([(p, q) for p, q, _ in self.bridges],
                                             dtype=np.int64).reshape(-1, 2)])
            self._graph_cache = bridged_graph(self.vertices, edges, self.bridge_radius,
                                              np.flatnonzero(self._on_surface))
        return self._graph_cache

    def contracted_all_pairs(self, labels: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Fragment-rule distances between groups of vertices (e.g. a vertex clustering).

        The graph of the fragment rule contracted onto the groups: one node per
        group at ``points[g]``, an edge between two groups wherever a mesh edge
        or a spanning-tree bridge joins their vertices, chords between nodes
        closer than ``r`` (from the contracted edges' median length), every
        length the 3D distance between the nodes. A clustering of a fragmented
        mesh drops the triangles it collapses, which cuts holes into the
        clustered mesh; the contracted graph keeps every connection.

        Args:
            labels: ``(V,)`` group of each vertex, ``0 .. M-1``.
            points: ``(M, 3)`` position of each group.

        Returns:
            ``(M, M)`` float32, symmetric, zero diagonal, finite.

        Raises:
            ValueError: the mesh is not fragmented, or shapes disagree.
        """
        from scipy.sparse.csgraph import dijkstra

        if not self.fragmented:
            raise ValueError("contracted_all_pairs: the fragment rule does not apply to "
                             "this mesh (use all_pairs on the clustered mesh)")
        labels = np.asarray(labels, dtype=np.int64)
        points = np.asarray(points, dtype=np.float64)
        if labels.shape != (self.n_vertices,) or points.ndim != 2 or points.shape[1] != 3 or (
                len(labels) and (labels.min() < 0 or labels.max() >= len(points))):
            raise ValueError(f"contracted_all_pairs: labels must be (V={self.n_vertices},) in "
                             f"[0, M) and points (M, 3), got {labels.shape} and {points.shape}")
        edges = np.concatenate([mesh_edges(self.faces),
                                np.array([(p, q) for p, q, _ in self.bridges],
                                         dtype=np.int64).reshape(-1, 2)])
        # isolated vertices hang off their anchor, as in the vertex-level rule
        iso = np.flatnonzero(self.component < 0)
        edges = np.concatenate([edges, np.stack([iso, self._anchor[iso]], axis=1)])
        g_edges = labels[edges]
        g_edges = g_edges[g_edges[:, 0] != g_edges[:, 1]]
        r = bridge_radius(points, g_edges, self.fragment_settings)
        graph = bridged_graph(points, g_edges, r)
        out = np.empty((len(points), len(points)), dtype=np.float32)
        for lo in range(0, len(points), BLOCK):
            idx = np.arange(lo, min(lo + BLOCK, len(points)))
            out[idx] = dijkstra(graph, directed=False, indices=idx)
        out = np.minimum(out, out.T)
        np.fill_diagonal(out, 0.0)
        if not np.isfinite(out).all():      # groups no vertex belongs to
            raise ValueError("contracted_all_pairs: some group holds no vertex")
        return out

    @property
    def bridges(self) -> list[tuple[int, int, float]]:
        """Spanning-tree bridges as ``(vertex in one component, vertex in other, length)``."""
        return [(br.pa, br.pb, br.length) for br in self._bridges]

    def distances(self, sources: np.ndarray) -> np.ndarray:
        """Geodesic distances from each source to every vertex (one direction).

        Args:
            sources: ``(S,)`` vertex indices.

        Returns:
            ``(S, V)`` float64, finite, zero at each source.
        """
        src = self._indices(sources, "sources")
        out = np.empty((len(src), self.n_vertices))
        for lo in range(0, len(src), BLOCK):
            out[lo : lo + BLOCK] = self._rows(src[lo : lo + BLOCK])
        return out

    def pairwise(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Symmetrised geodesic distance of many vertex pairs.

        One solve per unique vertex in ``a`` and ``b`` (both directions are
        solved and averaged). If :meth:`all_pairs` was computed, it is looked up.

        Args:
            a: ``(N,)`` vertex indices.
            b: ``(N,)`` vertex indices.

        Returns:
            ``(N,)`` float64 distances ``(d(a, b) + d(b, a)) / 2``.
        """
        a = self._indices(a, "a")
        b = self._indices(b, "b")
        if a.shape != b.shape:
            raise ValueError(f"pairwise: a and b must have the same length, got {len(a)} "
                             f"and {len(b)}")
        if self._all_pairs is not None:
            return self._all_pairs[a, b].astype(np.float64)
        n = len(a)
        uniq, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
        ia, ib = inv[:n], inv[n:]
        fwd = np.empty(n)
        bwd = np.empty(n)
        for lo in range(0, len(uniq), BLOCK):
            hi = min(lo + BLOCK, len(uniq))
            rows = self.distances(uniq[lo:hi])
            ma = (ia >= lo) & (ia < hi)
            fwd[ma] = rows[ia[ma] - lo, b[ma]]
            mb = (ib >= lo) & (ib < hi)
            bwd[mb] = rows[ib[mb] - lo, a[mb]]
        return 0.5 * (fwd + bwd)

    def all_pairs(self, progress: bool = False) -> np.ndarray:
        """Symmetrised distance matrix between all vertices (cached on the solver).

        Meant for meshes up to ~6000 vertices (``V**2`` float32: 144 MB at 6000).

        Args:
            progress: show a rich progress bar.

        Returns:
            ``(V, V)`` float32, symmetric, zero diagonal.

        Raises:
            ValueError: more than ``ALL_PAIRS_MAX_VERTICES`` vertices.
        """
        if self._all_pairs is not None:
            return self._all_pairs
        n = self.n_vertices
        if n > ALL_PAIRS_MAX_VERTICES:
            raise ValueError(f"all_pairs: {n} vertices exceed ALL_PAIRS_MAX_VERTICES = "
                             f"{ALL_PAIRS_MAX_VERTICES}; decimate the mesh or use pairwise()")
        out = np.empty((n, n), dtype=np.float32)
        starts = range(0, n, BLOCK)
        if progress:
            from rich.progress import track

            starts = track(starts, description="all-pairs geodesics", transient=True)
        for lo in starts:
            out[lo : lo + BLOCK] = self._rows(np.arange(lo, min(lo + BLOCK, n)))
        # symmetrise in blocks to avoid a second V x V temporary
        for lo in range(0, n, 1024):
            hi = min(lo + 1024, n)
            block = 0.5 * (out[lo:hi, lo:] + out[lo:, lo:hi].T)
            out[lo:hi, lo:] = block
            out[lo:, lo:hi] = block.T
        np.fill_diagonal(out, 0.0)
        self._all_pairs = out
        return out

    # ------------------------------------------------------------ internals
    def _indices(self, idx: np.ndarray, name: str) -> np.ndarray:
        arr = np.asarray(idx)
        if arr.size == 0:
            return np.zeros(0, dtype=np.int64)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must be a 1-D integer array of vertex indices, "
                             f"got shape {arr.shape} dtype {arr.dtype}")
        if arr.min() < 0 or arr.max() >= self.n_vertices:
            raise ValueError(f"{name}: vertex index out of range [0, {self.n_vertices})")
        return arr.astype(np.int64)

    def _bridge_row(self, vertex: int) -> np.ndarray:
        """Distances inside ``vertex``'s component from a bridge end (cached), ``(n_c,)``."""
        row = self._row_cache.get(vertex)
        if row is None:
            comp = self._components[self.component[vertex]]
            row = comp.rows(self._local[[vertex]])[0]
            self._row_cache[vertex] = row
        return row

    def _rows(self, sources: np.ndarray) -> np.ndarray:
        """Full distance rows ``(S, V)`` from vertices (bridge rule applied)."""
        anchors = self._anchor[sources]
        if self.fragmented:
            from scipy.sparse.csgraph import dijkstra

            out = dijkstra(self._graph(), directed=False, indices=anchors).reshape(
                len(sources), self.n_vertices)
        else:
            out = self._tree_rows(anchors)
        iso = np.flatnonzero(self.component < 0)
        if len(iso):
            out[:, iso] = out[:, self._anchor[iso]] + self._anchor_len[iso]
        out += self._anchor_len[sources][:, None]
        out[np.arange(len(sources)), sources] = 0.0
        return out

    def _tree_rows(self, anchors: np.ndarray) -> np.ndarray:
        """Rows ``(S, V)`` from surface vertices by the engine + spanning-tree rule
        (isolated-vertex columns left for :meth:`_rows`)."""
        out = np.empty((len(anchors), self.n_vertices))
        anchor_comp = self.component[anchors]
        for start, comp in enumerate(self._components):
            sel = np.flatnonzero(anchor_comp == start)
            if len(sel) == 0:
                continue
            first = comp.rows(self._local[anchors[sel]])                 # (k, n_start)
            if len(self._components) == 1 and len(sel) == len(anchors):
                out[:, comp.ids] = first
                continue
            out[np.ix_(sel, comp.ids)] = first
            # walk the tree outwards: (component, parent, entry vertex, distance to entry (k,))
            stack = [(start, -1, -1, np.zeros(len(sel)))]
            while stack:
                cur, parent, entry, dist_entry = stack.pop()
                for br in self._adjacent[cur]:
                    if br.b == parent:
                        continue
                    if cur == start:
                        to_exit = first[:, self._local[br.pa]]
                    else:
                        to_exit = self._bridge_row(entry)[self._local[br.pa]]
                    dist_next = dist_entry + to_exit + br.length
                    out[np.ix_(sel, self._components[br.b].ids)] = (
                        dist_next[:, None] + self._bridge_row(br.pb)[None, :])
                    stack.append((br.b, cur, br.pb, dist_next))
        return out

    def _spanning_tree(self) -> list[_Bridge]:
        """Minimum spanning tree of the components under closest-vertex-pair distance.

        Up to ``DENSE_TREE_MAX`` components every pair's closest vertices are
        found (one KD-tree query per pair); beyond that Boruvka rounds on one
        KD-tree over all surface vertices (:func:`_boruvka`). Both are exact.
        """
        c = len(self._components)
        if c == 1:
            return []
        if c > DENSE_TREE_MAX:
            surf = np.flatnonzero(self.component >= 0)
            return [_Bridge(int(self.component[p]), int(self.component[q]), int(p), int(q), d)
                    for p, q, d in _boruvka(self.vertices[surf], self.component[surf], surf)]
        trees = [cKDTree(comp.vertices) for comp in self._components]
        weight = np.zeros((c, c))
        ends: dict[tuple[int, int], tuple[int, int, float]] = {}
        for i in range(c):
            for j in range(i + 1, c):
                small, big = (i, j) if len(self._components[i].ids) <= len(
                    self._components[j].ids) else (j, i)
                dist, nn = trees[big].query(self._components[small].vertices)
                k = int(np.argmin(dist))
                p_small = int(self._components[small].ids[k])
                p_big = int(self._components[big].ids[nn[k]])
                pi, pj = (p_small, p_big) if small == i else (p_big, p_small)
                ends[(i, j)] = (pi, pj, float(dist[k]))
                # scipy treats 0 as "no edge": coincident components get a tiny weight
                weight[i, j] = max(float(dist[k]), 1e-300)
        mst = minimum_spanning_tree(csr_matrix(weight)).tocoo()
        bridges = []
        for i, j in zip(mst.row, mst.col, strict=True):
            i, j = (int(i), int(j)) if i < j else (int(j), int(i))
            pi, pj, length = ends[(i, j)]
            bridges.append(_Bridge(i, j, pi, pj, length))
        return bridges


def _boruvka(points: np.ndarray, labels: np.ndarray, ids: np.ndarray
             ) -> list[tuple[int, int, float]]:
    """Exact minimum spanning tree between labelled point groups (Boruvka).

    Each round finds, for every current group, its closest point of another
    group: points query ``k`` nearest neighbours, ``k`` doubling only for
    points whose ``k``-th neighbour is still nearer than their group's best
    foreign distance (only those could still improve it).

    Args:
        points: ``(P, 3)`` surface vertices.
        labels: ``(P,)`` component of each point, ``0..C-1``.
        ids: ``(P,)`` global vertex index of each point.

    Returns:
        ``C - 1`` bridges ``(vertex, vertex, length)``.
    """
    n = len(points)
    tree = cKDTree(points)
    parent = np.arange(int(labels.max()) + 1)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    group = labels.copy()
    bridges: list[tuple[int, int, float]] = []
    while len(np.unique(group)) > 1:
        best_d = np.full(parent.shape, np.inf)
        best_pair = np.full((len(parent), 2), -1, dtype=np.int64)
        pending = np.arange(n)
        k = min(8, n)
        while len(pending):
            dist, nn = tree.query(points[pending], k=k)
            dist, nn = dist.reshape(len(pending), k), nn.reshape(len(pending), k)
            foreign = group[nn] != group[pending][:, None]
            has = foreign.any(axis=1)
            col = np.argmax(foreign, axis=1)
            found = np.flatnonzero(has)
            d_found = dist[found, col[found]]
            g_found = group[pending[found]]
            # per group minimum: sort by distance, keep the first of each group
            order = np.lexsort((d_found, g_found))
            first = order[np.r_[True, g_found[order][1:] != g_found[order][:-1]]] if len(
                order) else order
            for i in first:
                g = g_found[i]
                if d_found[i] < best_d[g]:
                    best_d[g] = d_found[i]
                    best_pair[g] = (pending[found[i]], nn[found[i], col[found[i]]])
            unresolved = np.flatnonzero(~has)
            still = dist[unresolved, -1] < best_d[group[pending[unresolved]]]
            pending = pending[unresolved[still]]
            if k == n:
                break
            k = min(2 * k, n)
        for g in np.unique(group):
            p, q = best_pair[g]
            ra, rb = find(int(group[p])), find(int(group[q]))
            if ra != rb:                                 # ties can propose the same edge twice
                parent[max(ra, rb)] = min(ra, rb)
                bridges.append((int(ids[p]), int(ids[q]), float(best_d[g])))
        roots = np.array([find(int(x)) for x in range(len(parent))])
        group = roots[labels]
    return bridges


_KERNELS: dict = {}


def _kernels() -> dict:
    """numba kernels, compiled on first use (no import-time work)."""
    if _KERNELS:
        return _KERNELS
    import numba

    @numba.njit(cache=False, nogil=True)
    def lower(indptr, indices, data, x):  # pragma: no cover - numba
        # x <- L^-1 x, L lower triangular in CSR, x row-major (n, k)
        n, k = x.shape
        for i in range(n):
            diag = 1.0
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                if j < i:
                    c = data[p]
                    for col in range(k):
                        x[i, col] -= c * x[j, col]
                elif j == i:
                    diag = data[p]
            if diag != 1.0:
                inv = 1.0 / diag
                for col in range(k):
                    x[i, col] *= inv

    @numba.njit(cache=False, nogil=True)
    def upper(indptr, indices, data, x):  # pragma: no cover - numba
        # x <- U^-1 x, U upper triangular in CSR
        n, k = x.shape
        for i in range(n - 1, -1, -1):
            diag = 1.0
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                if j > i:
                    c = data[p]
                    for col in range(k):
                        x[i, col] -= c * x[j, col]
                elif j == i:
                    diag = data[p]
            inv = 1.0 / diag
            for col in range(k):
                x[i, col] *= inv

    @numba.njit(cache=False, nogil=True)
    def divergence(faces, grad_basis, div_weight, u, u_row, out_row, out):  # pragma: no cover
        # per face: X = grad u / |grad u|; halfedge h (f[h] -> f[h+1]) adds w_h . X to
        # its tail and subtracts it from its head. u of vertex i is row u_row[i] of u;
        # the divergence of vertex i goes to row out_row[i] of out. Inner loops run
        # over the k columns (contiguous rows) so they vectorise.
        n_faces = faces.shape[0]
        k = u.shape[1]
        for f in range(n_faces):
            a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
            ra, rb, rc = u_row[a], u_row[b], u_row[c]
            oa, ob, oc = out_row[a], out_row[b], out_row[c]
            g00, g01, g02 = grad_basis[f, 0, 0], grad_basis[f, 0, 1], grad_basis[f, 0, 2]
            g10, g11, g12 = grad_basis[f, 1, 0], grad_basis[f, 1, 1], grad_basis[f, 1, 2]
            g20, g21, g22 = grad_basis[f, 2, 0], grad_basis[f, 2, 1], grad_basis[f, 2, 2]
            w00, w01, w02 = div_weight[f, 0, 0], div_weight[f, 0, 1], div_weight[f, 0, 2]
            w10, w11, w12 = div_weight[f, 1, 0], div_weight[f, 1, 1], div_weight[f, 1, 2]
            w20, w21, w22 = div_weight[f, 2, 0], div_weight[f, 2, 1], div_weight[f, 2, 2]
            for col in range(k):
                ua, ub, uc = u[ra, col], u[rb, col], u[rc, col]
                gx = g00 * ua + g10 * ub + g20 * uc
                gy = g01 * ua + g11 * ub + g21 * uc
                gz = g02 * ua + g12 * ub + g22 * uc
                sq = gx * gx + gy * gy + gz * gz
                inv = 1.0 / np.sqrt(sq) if sq > 0.0 else 0.0
                v0 = (w00 * gx + w01 * gy + w02 * gz) * inv
                v1 = (w10 * gx + w11 * gy + w12 * gz) * inv
                v2 = (w20 * gx + w21 * gy + w22 * gz) * inv
                out[oa, col] += v0 - v2
                out[ob, col] += v1 - v0
                out[oc, col] += v2 - v1

    @numba.njit(cache=False, nogil=True)
    def finish(phi, phi_row, sources, out):  # pragma: no cover - numba
        # out[j, i] = max(phi_i - phi_source_j, 0) for column j of phi; phi of vertex i
        # is row phi_row[i]
        n = phi_row.shape[0]
        k = sources.shape[0]
        at_source = np.empty(k)
        for j in range(k):
            at_source[j] = phi[phi_row[sources[j]], j]
        for i in range(n):
            r = phi_row[i]
            for j in range(k):
                val = phi[r, j] - at_source[j]
                out[j, i] = val if val > 0.0 else 0.0

    _KERNELS.update(lower=lower, upper=upper, divergence=divergence, finish=finish)
    return _KERNELS


def geodesic_distances(vertices: np.ndarray, faces: np.ndarray, sources: np.ndarray,
                       engine: Engine | None = None) -> np.ndarray:
    """Geodesic distances from sources to every vertex (one direction).

    Args:
        vertices: ``(V, 3)``.
        faces: ``(F, 3)``.
        sources: ``(S,)`` vertex indices.
        engine: ``"heat"``, ``"exact"`` or ``None`` (= ``"heat"``).

    Returns:
        ``(S, V)`` float64; see the module docstring for the disconnected-mesh rule.
    """
    return GeodesicSolver(vertices, faces, engine=engine).distances(sources)

"""Geodesic bicyclic verification of candidate matches (method step 9-10).

For a pair's candidate pixel matches ``(p_s, p_t)``:

1. lift: cast a ray through each pixel in its own (refined, canonicalized)
   camera onto its own mesh and snap the hit to the dominant vertex of the hit
   face, giving ``v_s`` and ``v_t``; candidates whose ray misses either mesh
   are dropped (``hit`` False) and counted;
2. descriptor nearest neighbour across meshes (cosine over L2-normalised
   per-vertex part descriptors, over all vertices):
   ``v̂_t = NN_t(desc_s[v_s])`` and ``v̂_s = NN_s(desc_t[v_t])``;
3. bicyclic geodesic error, each direction normalised by its mesh's bbox
   diagonal: ``e = ½ (g_t(v̂_t, v_t) / diag_t + g_s(v̂_s, v_s) / diag_s)``;
   keep iff ``e < delta``.

Per-mesh precomputation (:func:`build_mesh_index`) is done once per image and
reused by every pair the image is in: the ray caster, the normalised
descriptors and a symmetric all-pairs geodesic matrix (heat method). Meshes
with more than ``max_geodesic_vertices`` vertices get the matrix on a
vertex-clustered copy and each full-resolution vertex reads the row of its
cluster (error about one cluster size, ~``diag / sqrt(max_geodesic_vertices)``);
after that, a pair's verification is a few gathers and two matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocorr.geometry.camera import Camera
from geocorr.geometry.geodesic import GeodesicSolver
from geocorr.geometry.mesh import bbox_diagonal
from geocorr.geometry.raycast import RayCaster, dominant_vertex

__all__ = ["VerifySettings", "MeshIndex", "Verification", "build_mesh_index", "lift_pixels",
           "verify_geodesic", "descriptor_nn"]


@dataclass
class VerifySettings:
    """Settings of the geodesic verification.

    Attributes:
        delta: keep a candidate iff its bicyclic error ``e < delta`` (fractions
            of the bbox diagonal). 0.05 from the sweep in
            ``benchmarks/results/pseudolabels.md`` (the probe: 0.02 -> 98 %
            precise, 6 % kept; 0.05 -> 95 %, 19 %).
        max_geodesic_vertices: meshes above this get their all-pairs geodesic
            matrix on a vertex-clustered copy (3000: 36 MB float32 and ~2 s of
            heat-method solves per mesh).
        nn_block: descriptor rows per similarity block (bounds memory to
            ``nn_block * V`` float32).
    """

    delta: float = 0.05
    max_geodesic_vertices: int = 3000
    nn_block: int = 4096

    def __post_init__(self) -> None:
        if not self.delta > 0:
            raise ValueError(f"delta must be > 0, got {self.delta}")
        if self.max_geodesic_vertices < 16:
            raise ValueError(f"max_geodesic_vertices must be >= 16, got "
                             f"{self.max_geodesic_vertices}")
        if self.nn_block < 1:
            raise ValueError(f"nn_block must be >= 1, got {self.nn_block}")


@dataclass(frozen=True, eq=False)
class MeshIndex:
    """Per-mesh precomputation shared by every pair the mesh is in.

    Attributes:
        vertices: ``(V, 3)`` float64 canonical-frame vertices.
        faces: ``(F, 3)`` int64.
        descriptors: ``(V, D)`` float32, L2-normalised rows (zero rows stay zero).
        diagonal: bbox diagonal of ``vertices``.
        caster: :class:`RayCaster` on the mesh.
        geodesic: ``(M, M)`` float32 symmetric geodesic matrix between nodes.
        node: ``(V,)`` int64 node (row of ``geodesic``) of each vertex
            (identity unless the mesh was clustered).
        bbox_center: ``(3,)`` centre of the axis-aligned bbox.
        bbox_extent: ``(3,)`` bbox side lengths.
    """

    vertices: np.ndarray
    faces: np.ndarray
    descriptors: np.ndarray
    diagonal: float
    caster: RayCaster
    geodesic: np.ndarray
    node: np.ndarray
    bbox_center: np.ndarray
    bbox_extent: np.ndarray

    def geodesic_pairs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``(N,)`` float64 geodesic distances between vertex arrays ``a`` and ``b``."""
        return self.geodesic[self.node[a], self.node[b]].astype(np.float64)


@dataclass(frozen=True, eq=False)
class Verification:
    """Per-candidate result of a verification filter.

    Attributes:
        errors: ``(N,)`` float64 filter error (geodesic: bicyclic error in
            diagonals; sphere: angle in radians); NaN where a ray missed.
        kept: ``(N,)`` bool, ``hit & (errors < threshold)``.
        hit: ``(N,)`` bool, both rays hit their mesh.
        n_missed: number of candidates dropped because a ray missed.
        v_s: ``(N,)`` int64 lifted source vertex, -1 on a miss.
        v_t: ``(N,)`` int64 lifted target vertex, -1 on a miss.
        v_hat_s: ``(N,)`` int64 ``NN_s(desc_t[v_t])`` (-1 on a miss or for the sphere filter).
        v_hat_t: ``(N,)`` int64 ``NN_t(desc_s[v_s])`` (-1 likewise).
        threshold: the threshold applied.
    """

    errors: np.ndarray
    kept: np.ndarray
    hit: np.ndarray
    n_missed: int
    v_s: np.ndarray
    v_t: np.ndarray
    v_hat_s: np.ndarray
    v_hat_t: np.ndarray
    threshold: float


def _normalise(desc: np.ndarray) -> np.ndarray:
    d = np.asarray(desc, dtype=np.float32)
    n = np.linalg.norm(d, axis=1, keepdims=True)
    return np.divide(d, n, out=np.zeros_like(d), where=n > 1e-8)


def build_mesh_index(vertices: np.ndarray, faces: np.ndarray, descriptors: np.ndarray,
                     settings: VerifySettings | None = None) -> MeshIndex:
    """Precompute everything verification needs about one mesh.

    Args:
        vertices: ``(V, 3)`` canonical-frame vertices.
        faces: ``(F, 3)`` vertex indices.
        descriptors: ``(V, D)`` per-vertex part descriptors.
        settings: see :class:`VerifySettings`.

    Returns:
        A :class:`MeshIndex`.

    Raises:
        ValueError: shapes disagree (names the argument).
    """
    s = settings or VerifySettings()
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    desc = np.asarray(descriptors)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
        raise ValueError(f"build_mesh_index: vertices must be (V, 3), got {v.shape}")
    if desc.ndim != 2 or len(desc) != len(v):
        raise ValueError(f"build_mesh_index: descriptors must be (V={len(v)}, D), "
                         f"got {desc.shape}")
    caster = RayCaster(v, f)
    if len(v) > s.max_geodesic_vertices:
        from geocorr.features.geometric import cluster_vertices

        cv, cf, node = cluster_vertices(v, f, s.max_geodesic_vertices)
        geo = GeodesicSolver(cv, cf).all_pairs()
    else:
        node = np.arange(len(v))
        geo = GeodesicSolver(v, f).all_pairs()
    lo, hi = v.min(axis=0), v.max(axis=0)
    return MeshIndex(vertices=v, faces=f, descriptors=_normalise(desc),
                     diagonal=bbox_diagonal(v) or 1.0, caster=caster, geodesic=geo,
                     node=np.asarray(node, dtype=np.int64), bbox_center=(lo + hi) / 2,
                     bbox_extent=hi - lo)


def lift_pixels(index: MeshIndex, camera: Camera, uv: np.ndarray):
    """Cast rays through pixels onto the mesh.

    Args:
        index: the mesh.
        camera: the mesh's camera (object frame = canonical frame).
        uv: ``(N, 2)`` pixel coordinates ``(x, y)``.

    Returns:
        ``(hits, vertex)``: the :class:`~geocorr.geometry.raycast.RayHits` and
        ``(N,)`` int64 dominant vertices (-1 on misses).
    """
    uv = np.asarray(uv, dtype=np.float64)
    if uv.ndim != 2 or uv.shape[1] != 2:
        raise ValueError(f"uv must have shape (N, 2), got {uv.shape}")
    hits = index.caster.cast_pixels(camera, uv)
    return hits, dominant_vertex(index.faces, hits)


def descriptor_nn(query: np.ndarray, database: np.ndarray, block: int = 4096) -> np.ndarray:
    """Cosine nearest neighbour of each (normalised) query row among database rows.

    Args:
        query: ``(N, D)`` float32 L2-normalised.
        database: ``(V, D)`` float32 L2-normalised.
        block: query rows per matrix product.

    Returns:
        ``(N,)`` int64 database indices (first maximum on ties).
    """
    out = np.empty(len(query), dtype=np.int64)
    for lo in range(0, len(query), block):
        out[lo : lo + block] = np.argmax(query[lo : lo + block] @ database.T, axis=1)
    return out


def verify_geodesic(source: MeshIndex, target: MeshIndex, camera_s: Camera, camera_t: Camera,
                    src_uv: np.ndarray, trg_uv: np.ndarray,
                    settings: VerifySettings | None = None) -> Verification:
    """Bicyclic geodesic verification of ``N`` candidate matches (module doc).

    Args:
        source: source mesh index.
        target: target mesh index (descriptors with the same ``D``).
        camera_s: source camera.
        camera_t: target camera.
        src_uv: ``(N, 2)`` source pixels.
        trg_uv: ``(N, 2)`` target pixels.
        settings: see :class:`VerifySettings`.

    Returns:
        :class:`Verification` with ``threshold = delta``.

    Raises:
        ValueError: shapes disagree.
    """
    s = settings or VerifySettings()
    src_uv = np.asarray(src_uv, dtype=np.float64)
    trg_uv = np.asarray(trg_uv, dtype=np.float64)
    if src_uv.shape != trg_uv.shape:
        raise ValueError(f"src_uv {src_uv.shape} and trg_uv {trg_uv.shape} differ")
    if source.descriptors.shape[1] != target.descriptors.shape[1]:
        raise ValueError(f"descriptor dims differ: {source.descriptors.shape[1]} vs "
                         f"{target.descriptors.shape[1]}")
    n = len(src_uv)
    _, v_s = lift_pixels(source, camera_s, src_uv)
    _, v_t = lift_pixels(target, camera_t, trg_uv)
    hit = (v_s >= 0) & (v_t >= 0)
    idx = np.flatnonzero(hit)
    errors = np.full(n, np.nan)
    v_hat_s = np.full(n, -1, dtype=np.int64)
    v_hat_t = np.full(n, -1, dtype=np.int64)
    if len(idx):
        a, b = v_s[idx], v_t[idx]
        # unique lifted vertices: many candidates share one after snapping
        ua, ia = np.unique(a, return_inverse=True)
        ub, ib = np.unique(b, return_inverse=True)
        ht = descriptor_nn(source.descriptors[ua], target.descriptors, s.nn_block)[ia]
        hs = descriptor_nn(target.descriptors[ub], source.descriptors, s.nn_block)[ib]
        e = 0.5 * (target.geodesic_pairs(ht, b) / target.diagonal
                   + source.geodesic_pairs(hs, a) / source.diagonal)
        errors[idx] = e
        v_hat_s[idx], v_hat_t[idx] = hs, ht
    kept = hit & (np.nan_to_num(errors, nan=np.inf) < s.delta)
    return Verification(errors=errors, kept=kept, hit=hit, n_missed=int(n - len(idx)), v_s=v_s,
                        v_t=v_t, v_hat_s=v_hat_s, v_hat_t=v_hat_t, threshold=float(s.delta))

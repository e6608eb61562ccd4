"""Geodesic bicyclic verification of candidate matches (method step 9-10).

For a pair's candidate pixel matches ``(p_s, p_t)``:

1. lift: cast a ray through each pixel in its own (refined, canonicalized)
   camera onto its own mesh and snap the hit to the dominant vertex of the hit
   face, giving ``v_s`` and ``v_t``; candidates whose ray misses either mesh
   are dropped (``hit`` False) and counted;
2. cross-mesh map, ``VerifySettings.cross_map``:

   * ``"descriptor"`` -- the paper's: nearest neighbour across meshes (cosine
     over L2-normalised per-vertex part descriptors, over all vertices),
     ``v̂_t = NN_t(desc_s[v_s])`` and ``v̂_s = NN_s(desc_t[v_t])``;
   * ``"registration"`` -- the CPU stand-in when the descriptor is the CPU
     geometric one: each canonical mesh is registered onto the other
     (:func:`register_meshes`: bbox init, affine ICP, then a smooth Gaussian-RBF
     displacement field), and ``v̂_t`` is the target vertex nearest to the
     registered ``v_s`` (likewise backwards). It follows per-instance part
     proportions that bbox-normalised coordinates cannot (a long bonnet, a
     short cabin);
3. bicyclic geodesic error, each direction normalised by its mesh's bbox
   diagonal: ``e = ½ (g_t(v̂_t, v_t) / diag_t + g_s(v̂_s, v_s) / diag_s)``;
   keep iff ``e < delta``.

Per-mesh precomputation (:func:`build_mesh_index`) is done once per image and
reused by every pair the image is in: the ray caster, the normalised
descriptors and a symmetric all-pairs geodesic matrix (heat method). Meshes
with more than ``max_geodesic_vertices`` vertices get the matrix on a
vertex-clustered copy and each full-resolution vertex reads the row of its
cluster (error about one cluster size, ~``diag / sqrt(max_geodesic_vertices)``).
A mesh in many pieces (the fragment rule of :mod:`geocorr.geometry.fragments`,
decided on the full-resolution mesh) gets graph distances instead, contracted
onto the clusters (:meth:`GeodesicSolver.contracted_all_pairs`), because the
clustering collapses triangles across the cracks and leaves holes. After
that, a pair's verification is a few gathers and two matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.spatial import cKDTree

from geocorr.features.geometric import cluster_vertices
from geocorr.geometry.camera import Camera
from geocorr.geometry.geodesic import FragmentSettings, GeodesicSolver
from geocorr.geometry.mesh import bbox_diagonal
from geocorr.geometry.raycast import RayCaster, dominant_vertex

__all__ = ["VerifySettings", "RegistrationSettings", "Registration", "MeshIndex", "Verification",
           "build_mesh_index", "lift_pixels", "verify_geodesic", "descriptor_nn", "register_meshes"]


@dataclass
class RegistrationSettings:
    """Settings of :func:`register_meshes` (defaults from the sweep in
    ``benchmarks/results/pseudolabels.md``, tuned on car, chair and dog).

    Attributes:
        n_points: vertices sampled from each mesh to fit the map (1000: ~0.1 s per
            direction; the fit is on the sample, the map then applies to any point).
        n_centres: Gaussian RBF centres of the displacement field (150).
        sigma: RBF width as a fraction of the target bbox diagonal (0.1: part-sized
            bends; 0.07 follows noise, 0.15-0.2 was a little less precise).
        smoothness: ridge weight of the field's RKHS norm, relative to the data term
            (1.0; 0.3 and 3 were within a point).
        affine_iterations: symmetric nearest-neighbour affine ICP steps (20).
        iterations: displacement-field steps (20).
        seed: seed of the vertex sampling (labels are a pure function of the pair).
    """

    n_points: int = 1000
    n_centres: int = 150
    sigma: float = 0.1
    smoothness: float = 1.0
    affine_iterations: int = 20
    iterations: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_points < 8 or self.n_centres < 1:
            raise ValueError(f"n_points must be >= 8 and n_centres >= 1, got {self.n_points}, "
                             f"{self.n_centres}")
        if not self.sigma > 0 or self.smoothness < 0:
            raise ValueError(f"sigma must be > 0 and smoothness >= 0, got {self.sigma}, "
                             f"{self.smoothness}")
        if self.affine_iterations < 0 or self.iterations < 0:
            raise ValueError("affine_iterations and iterations must be >= 0")


@dataclass
class VerifySettings:
    """Settings of the geodesic verification.

    Attributes:
        delta: keep a candidate iff its bicyclic error ``e < delta`` (fractions
            of the bbox diagonal). 0.03: the largest δ of the sweep in
            ``benchmarks/results/pseudolabels.md`` whose labels are >= 95 %
            precise by PCK@0.05 on the tuning categories (car, chair, dog of
            synth16, CPU descriptor): 95.0 % at 38 % recall; 0.05 gave 89.4 %
            at 68 %. Quantisation + vertex snapping put ~0.02 on correct
            matches, so δ much below that rejects good labels.
        max_geodesic_vertices: meshes above this get their all-pairs geodesic
            matrix on a vertex-clustered copy (3000: 36 MB float32 and ~2 s of
            heat-method solves per mesh).
        nn_block: descriptor rows per similarity block (bounds memory to
            ``nn_block * V`` float32).
        cross_map: ``"descriptor"`` (NN of part descriptors, the paper's with
            PartField; default) or ``"registration"`` (module doc). On the
            tuning categories registration maps more vertices right and lifts
            PCK@0.05 recall at δ = 0.03 from 38 to 49 % (96.5 % precise) but is
            ~5 points *less* precise by the template rule at equal recall and
            costs ~0.25 s per pair, so it is not the default.
        registration: settings of the ``"registration"`` map.
        fragments: when a mesh in many pieces gets bridged graph distances
            instead of per-piece geodesics joined by a spanning tree
            (:mod:`geocorr.geometry.fragments`; meshes in one piece are not
            affected).
    """

    delta: float = 0.03
    max_geodesic_vertices: int = 3000
    nn_block: int = 4096
    cross_map: Literal["descriptor", "registration"] = "descriptor"
    registration: RegistrationSettings = field(default_factory=RegistrationSettings)
    fragments: FragmentSettings = field(default_factory=FragmentSettings)

    def __post_init__(self) -> None:
        if not self.delta > 0:
            raise ValueError(f"delta must be > 0, got {self.delta}")
        if self.max_geodesic_vertices < 16:
            raise ValueError(f"max_geodesic_vertices must be >= 16, got "
                             f"{self.max_geodesic_vertices}")
        if self.nn_block < 1:
            raise ValueError(f"nn_block must be >= 1, got {self.nn_block}")
        if self.cross_map not in ("descriptor", "registration"):
            raise ValueError(f"cross_map must be 'descriptor' or 'registration', got "
                             f"{self.cross_map!r}")


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
    solver = GeodesicSolver(v, f, fragments=s.fragments)    # preprocessing; nothing solved yet
    if len(v) > s.max_geodesic_vertices:
        cv, cf, node = cluster_vertices(v, f, s.max_geodesic_vertices)
        if solver.fragmented:
            # the clustering collapses triangles across the cracks; the contracted
            # fragment graph keeps every connection (geometry/fragments.py)
            geo = solver.contracted_all_pairs(node, cv)
        else:
            geo = GeodesicSolver(cv, cf, fragments=s.fragments).all_pairs()
    else:
        node = np.arange(len(v))
        geo = solver.all_pairs()
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


@dataclass(frozen=True, eq=False)
class Registration:
    """A smooth map of source-frame points onto the target mesh's frame.

    ``x -> y = A x + b``, then ``y + sum_k exp(-|y - c_k|^2 / (2 s^2)) w_k``.

    Attributes:
        linear: ``(3, 3)`` the affine part ``A``.
        offset: ``(3,)`` ``b``.
        centres: ``(K, 3)`` RBF centres ``c_k`` (in the affinely mapped frame).
        weights: ``(K, 3)`` displacement weights ``w_k``.
        sigma: RBF width ``s`` (target units).
    """

    linear: np.ndarray
    offset: np.ndarray
    centres: np.ndarray
    weights: np.ndarray
    sigma: float

    def affine(self, points: np.ndarray) -> np.ndarray:
        """``(N, 3)`` affine part only."""
        return np.asarray(points, np.float64) @ self.linear.T + self.offset

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Map ``(N, 3)`` source points to ``(N, 3)`` target-frame points."""
        y = self.affine(points)
        return y + _gauss(y, self.centres, self.sigma) @ self.weights


def _gauss(p: np.ndarray, c: np.ndarray, sigma: float) -> np.ndarray:
    d2 = (p * p).sum(1)[:, None] + (c * c).sum(1)[None] - 2.0 * p @ c.T
    return np.exp(-np.maximum(d2, 0.0) / (2.0 * sigma * sigma))


def _sample(points: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    if len(points) <= n:
        return points
    return points[np.sort(rng.choice(len(points), n, replace=False))]


def _symmetric_targets(z: np.ndarray, y: np.ndarray, tree_y: cKDTree) -> np.ndarray:
    """Per point of ``z``: pull to its NN in ``y`` plus the mean pull of the ``y`` points
    whose NN it is (so thin target parts that no ``z`` point is nearest to still attract)."""
    _, j = tree_y.query(z)
    _, i = cKDTree(z).query(y)
    back = np.zeros_like(z)
    np.add.at(back, i, y - z[i])
    cnt = np.bincount(i, minlength=len(z)).astype(np.float64)
    return (y[j] - z) + back / np.maximum(cnt, 1.0)[:, None]


def register_meshes(source: np.ndarray, target: np.ndarray,
                    settings: RegistrationSettings | None = None) -> Registration:
    """Register the source point set onto the target (non-rigid, smooth, deterministic).

    Bbox initialisation (per-axis scale and centre), ``affine_iterations`` of
    affine ICP with symmetric nearest neighbours, then ``iterations`` steps of a
    Gaussian-RBF displacement field fitted by ridge regression to the symmetric
    nearest-neighbour residuals. Fitted on ``n_points`` samples of each set.

    Args:
        source: ``(N, 3)`` source points (canonical frame).
        target: ``(M, 3)`` target points (canonical frame).
        settings: see :class:`RegistrationSettings`.

    Returns:
        :class:`Registration` (call it on any source-frame points).

    Raises:
        ValueError: a point set is not ``(>=4, 3)``.
    """
    s = settings or RegistrationSettings()
    x_all = np.asarray(source, np.float64)
    y_all = np.asarray(target, np.float64)
    for name, a in (("source", x_all), ("target", y_all)):
        if a.ndim != 2 or a.shape[1] != 3 or len(a) < 4:
            raise ValueError(f"register_meshes: {name} must be (N >= 4, 3), got {a.shape}")
    rng = np.random.default_rng(s.seed)
    x = _sample(x_all, s.n_points, rng)
    y = _sample(y_all, s.n_points, rng)
    lo, hi = x_all.min(0), x_all.max(0)
    lo2, hi2 = y_all.min(0), y_all.max(0)
    lin = np.diag(np.where(hi - lo > 1e-12, (hi2 - lo2) / np.maximum(hi - lo, 1e-12), 1.0))
    off = (lo2 + hi2) / 2 - lin @ ((lo + hi) / 2)
    tree_y = cKDTree(y)
    xh = np.hstack([x, np.ones((len(x), 1))])
    for _ in range(s.affine_iterations):
        z = x @ lin.T + off
        r = _symmetric_targets(z, y, tree_y)
        m, *_ = np.linalg.lstsq(xh, z + r, rcond=None)
        lin, off = m[:3].T, m[3]
    z0 = x @ lin.T + off
    sigma = s.sigma * (float(np.linalg.norm(hi2 - lo2)) or 1.0)
    centres = _sample(z0, s.n_centres, rng)
    k = _gauss(z0, centres, sigma)
    kc = _gauss(centres, centres, sigma)
    lhs = k.T @ k + s.smoothness * len(z0) / len(centres) * kc + 1e-6 * np.eye(len(centres))
    solve = np.linalg.inv(lhs)
    w = np.zeros((len(centres), 3))
    for _ in range(s.iterations):
        z = z0 + k @ w
        w = w + solve @ (k.T @ _symmetric_targets(z, y, tree_y))
    return Registration(linear=lin, offset=off, centres=centres, weights=w, sigma=sigma)


def _cross_map(source: MeshIndex, target: MeshIndex, a: np.ndarray, b: np.ndarray,
               s: VerifySettings) -> tuple[np.ndarray, np.ndarray]:
    """``(v̂_t, v̂_s)`` for lifted vertices ``a`` (source) and ``b`` (target)."""
    ua, ia = np.unique(a, return_inverse=True)
    ub, ib = np.unique(b, return_inverse=True)
    if s.cross_map == "descriptor":
        ht = descriptor_nn(source.descriptors[ua], target.descriptors, s.nn_block)
        hs = descriptor_nn(target.descriptors[ub], source.descriptors, s.nn_block)
    else:
        fwd = register_meshes(source.vertices, target.vertices, s.registration)
        bwd = register_meshes(target.vertices, source.vertices, s.registration)
        ht = cKDTree(target.vertices).query(fwd(source.vertices[ua]))[1]
        hs = cKDTree(source.vertices).query(bwd(target.vertices[ub]))[1]
    return np.asarray(ht, np.int64)[ia], np.asarray(hs, np.int64)[ib]


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
        # maps evaluated on unique lifted vertices: many candidates share one after snapping
        ht, hs = _cross_map(source, target, a, b, s)
        e = 0.5 * (target.geodesic_pairs(ht, b) / target.diagonal
                   + source.geodesic_pairs(hs, a) / source.diagonal)
        errors[idx] = e
        v_hat_s[idx], v_hat_t[idx] = hs, ht
    kept = hit & (np.nan_to_num(errors, nan=np.inf) < s.delta)
    return Verification(errors=errors, kept=kept, hit=hit, n_missed=int(n - len(idx)), v_s=v_s,
                        v_t=v_t, v_hat_s=v_hat_s, v_hat_t=v_hat_t, threshold=float(s.delta))

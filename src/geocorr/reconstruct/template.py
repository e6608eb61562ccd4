"""CPU orientation estimator: compare against renders of a category reference mesh.

:class:`TemplateOrientationEstimator` renders a reference mesh (assumed
canonical: X front, Z up) at many azimuths with the same
:class:`~geocorr.reconstruct.views.ViewSettings` as the yaw vote, and answers
the azimuth of the most similar render. Renders are normal-shaded, not
silhouettes, so that front and back of shapes with a 180-degree symmetric
outline (buses, boats) differ.

The reference is chosen **without ground-truth pose** by
:func:`select_reference`: normalise every mesh of the category (bbox centre,
bbox diagonal), align every pair over the four yaw options ``k * 90`` with a
symmetric Chamfer distance, take the medoid. The alignment to the medoid puts
every mesh in one of four classes (its relative quarter-turn ``k_i``); the
medoid's own yaw is unknown. Assuming that the reconstructor is *mostly* right
(SAM3D's yaw usually is; flips are the minority), the canonical orientation is
the **plurality class**, and the medoid is rotated onto it. This is a prior,
not a measurement: when flipped reconstructions outnumber canonical ones in
the pool (e.g. 4 of 6 cars flipped by 180 degrees), the whole category comes
out turned. Use a large pool (the pipeline pools every image of the category
in the dataset, not only the ones being processed) and read
:attr:`ReferenceChoice.margin`; a semantic estimator (Orient Anything) does not
have this limit.

**Tie rule** (equal plurality counts): prefer the candidate whose 180-degree
twin class is larger (a front/back flip is the commonest reconstruction error,
so under that candidate more meshes are explained by the likelier error),
then the medoid's own orientation, then the smallest rotation.

**Yaw symmetry is decided per instance**, never per category
(:func:`geocorr.reconstruct.canonical.instance_symmetry`): a category may mix
rectangular (2-fold) and square (4-fold) tables. The reference is the medoid
of the meshes of the *lowest* symmetry order held by at least a quarter of
the pool (and at least 2 meshes): a square reference could not tell a
rectangular table's long side from its short one. 4-fold meshes (their
relative class is arbitrary) are left out of the class counts of a lower-order
reference; 2-fold ones are counted (a bus is 2-fold within the reconstruction
noise, yet its pairwise alignments still tell front from back). With a 2-fold
reference the plurality is decided per pair ``{c, c + 2}`` (twin counts
summed), then the larger twin; with a 4-fold one (only square meshes) there is
nothing to decide.

**Continuous frame** (:func:`geocorr.reconstruct.canonical.pool_frame`): after
the quarter turns, every pool mesh is aligned to the medoid by a small
rotation (yaw, tilt); the median of those rotations is the medoid's own frame
error, which :attr:`ReferenceChoice.frame` removes.

The same alignment directly gives each mesh's correction
(:attr:`ReferenceChoice.direct_corrections`), a baseline to the 8-view vote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from geocorr.reconstruct.canonical import (
    CanonSettings,
    InstanceSymmetry,
    centred,
    instance_symmetry,
    pool_frame,
    surface_points,
)
from geocorr.reconstruct.orientation import OrientationEstimate
from geocorr.reconstruct.views import ViewSettings, render_view, rotation_z

__all__ = ["TemplateSettings", "TemplateOrientationEstimator", "ReferenceChoice",
           "select_reference", "plurality_class", "normalized_points",
           "yaw_chamfer"]


@dataclass(frozen=True)
class TemplateSettings:
    """Settings of the template estimator and reference selection.

    Attributes:
        num_azimuths: reference renders around the object. 72 (5 degree steps)
            is well below the 45-degree decision margin of the vote.
        descriptor_size: side of the square crop the renders are compared at;
            64 (with 128 px views; 32 and 48 lost bus front/back cues).
        points: surface samples per mesh for the quarter-turn Chamfer alignment.
        seed: sampling seed (results are deterministic).
        views: render settings; must equal the yaw vote's.
    """

    num_azimuths: int = 72
    descriptor_size: int = 64
    points: int = 600
    seed: int = 0
    views: ViewSettings = field(default_factory=ViewSettings)


def _descriptor(image: np.ndarray, size: int) -> np.ndarray:
    """Crop the non-white region, pad to a square with white, resize, flatten to [0, 1]."""
    import cv2

    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3), got {img.shape}")
    fg = np.any(img < 250, axis=2)
    if not fg.any():
        return np.ones(size * size * 4, np.float32)
    rows, cols = np.flatnonzero(fg.any(1)), np.flatnonzero(fg.any(0))
    crop = img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float32) / 255.0
    m = fg[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float32)
    h, w = m.shape
    side = max(h, w)
    canvas = np.ones((side, side, 4), np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    canvas[top:top + h, left:left + w, :3] = crop
    canvas[top:top + h, left:left + w, 3] = 1.0 - m
    out = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    return out.reshape(-1)


class TemplateOrientationEstimator:
    """Nearest reference render -> azimuth.

    Args:
        vertices: ``(V, 3)`` canonical reference mesh (X front, Y left, Z up).
        faces: ``(F, 3)`` triangle indices.
        settings: see :class:`TemplateSettings`.
        symmetry: the reference's yaw symmetry order (1, 2 or 4), e.g.
            :attr:`ReferenceChoice.symmetry`; reported with every estimate so
            the vote can split ambiguous votes.

    ``confidence`` is the distance gap between the best match and the best
    match at least 90 degrees away, divided by the latter (0 = ambiguous).
    """

    name = "template"

    def __init__(self, vertices: np.ndarray, faces: np.ndarray,
                 settings: TemplateSettings = TemplateSettings(), symmetry: int = 1) -> None:
        if settings.num_azimuths < 4:
            raise ValueError(f"num_azimuths must be >= 4, got {settings.num_azimuths}")
        if symmetry not in (1, 2, 4):
            raise ValueError(f"symmetry must be 1, 2 or 4, got {symmetry}")
        self.settings = settings
        self.symmetry = int(symmetry)
        self.azimuths = np.arange(settings.num_azimuths) * (360.0 / settings.num_azimuths)
        self.bank = np.stack([
            _descriptor(render_view(vertices, faces, float(a), settings.views),
                        settings.descriptor_size) for a in self.azimuths])

    def distances(self, image: np.ndarray) -> np.ndarray:
        """``(num_azimuths,)`` mean absolute descriptor difference to each reference render."""
        d = _descriptor(image, self.settings.descriptor_size)
        return np.abs(self.bank - d[None]).mean(1)

    def estimate(self, image: np.ndarray) -> OrientationEstimate:
        """Azimuth of the nearest reference render (degrees) and a confidence."""
        dist = self.distances(image)
        j = int(np.argmin(dist))
        gap = np.abs((self.azimuths - self.azimuths[j] + 180.0) % 360.0 - 180.0)
        far = dist[gap >= 90.0]
        conf = float((far.min() - dist[j]) / max(far.min(), 1e-9)) if far.size else 0.0
        return OrientationEstimate(azimuth_deg=float(self.azimuths[j]), confidence=conf,
                                   symmetry=self.symmetry)


# ------------------------------------------------------------ reference choice
def normalized_points(vertices: np.ndarray, faces: np.ndarray, n: int, seed: int = 0
                      ) -> np.ndarray:
    """Area-weighted surface samples, centred on the bbox centre, scaled by the bbox diagonal.

    Returns:
        ``(n, 3)`` float64 points.
    """
    v = np.asarray(vertices, dtype=np.float64)
    pts = surface_points(v, faces, n, seed)
    lo, hi = v.min(0), v.max(0)
    return (pts - 0.5 * (lo + hi)) / max(float(np.linalg.norm(hi - lo)), 1e-12)


def _chamfer(a: np.ndarray, b: np.ndarray, tree_b=None) -> float:
    from scipy.spatial import cKDTree

    tree_a = cKDTree(a)
    tree_b = cKDTree(b) if tree_b is None else tree_b
    return float(tree_b.query(a)[0].mean() + tree_a.query(b)[0].mean())


def yaw_chamfer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Symmetric Chamfer distance between ``Rz(k 90) a`` and ``b`` for k = 0..3.

    Args:
        a: ``(N, 3)`` points.
        b: ``(M, 3)`` points.

    Returns:
        ``(4,)`` distances; ``argmin`` is the rotation bringing ``a`` onto ``b``.
    """
    from scipy.spatial import cKDTree

    tree_b = cKDTree(b)
    return np.array([_chamfer(a @ np.round(rotation_z(90.0 * k)).T, b, tree_b)
                     for k in range(4)])


@dataclass(frozen=True)
class ReferenceChoice:
    """Result of :func:`select_reference`.

    Attributes:
        index: position of the medoid mesh in the input list.
        reference_correction: ``k`` that makes the medoid canonical (rotate it by
            ``k * 90`` degrees about Z, after :attr:`frame`); 0 for a 4-fold
            reference.
        relative: ``(N,)`` int, ``k_i`` bringing mesh ``i`` onto the medoid.
        direct_corrections: ``(N,)`` int, ``(k_i + reference_correction) mod 4``
            (0 for a 4-fold mesh): each mesh's correction by direct alignment
            (baseline to the vote).
        cost: ``(N, N)`` best-over-k Chamfer distance between normalised meshes.
        counts: ``(4,)`` int, meshes per relative class ``k_i`` (4-fold meshes
            left out unless the reference is 4-fold); the plurality is taken
            as canonical.
        margin: plurality count minus the runner-up's (0 = tie; small = the
            category's front rests on a few meshes).
        tie_broken: the plurality was shared and the tie rule decided.
        symmetry: the reference's own yaw symmetry order: 1, 2 or 4.
        orders: ``(N,)`` int, each mesh's own order
            (:func:`~geocorr.reconstruct.canonical.instance_symmetry`).
        instances: the per-mesh :class:`InstanceSymmetry` results.
        frame: ``(3, 3)`` small rotation applied to the medoid (in its own
            frame, before the quarter turn) that removes its frame error
            relative to the pool (and, for a symmetric medoid, its tilt by its
            own axis; identity when alignment is off and the medoid is 1-fold).
        pool_rotvecs: ``(N, 3)`` degrees, each mesh's alignment onto the medoid.
        points: ``(M, 3)`` the canonical reference's centred points (for
            :func:`~geocorr.reconstruct.canonical.align_to_reference`).
    """

    index: int
    reference_correction: int
    relative: np.ndarray
    direct_corrections: np.ndarray
    cost: np.ndarray
    counts: np.ndarray
    margin: int
    tie_broken: bool
    symmetry: int
    orders: np.ndarray
    instances: tuple[InstanceSymmetry, ...]
    frame: np.ndarray
    pool_rotvecs: np.ndarray
    points: np.ndarray

    def reference_rotation(self) -> np.ndarray:
        """``(3, 3)`` rotation taking the medoid mesh to the canonical reference."""
        return np.round(rotation_z(90.0 * self.reference_correction)) @ self.frame

    def to_dict(self) -> dict:
        """JSON-ready summary (no cost matrix, no points)."""
        return {"index": int(self.index), "reference_correction": int(self.reference_correction),
                "counts": [int(c) for c in self.counts], "margin": int(self.margin),
                "tie_broken": bool(self.tie_broken), "symmetry": int(self.symmetry),
                "orders": [int(o) for o in self.orders],
                "asymmetry": [[float(x) for x in s.asymmetry] for s in self.instances],
                "frame_rotvec_deg": [float(x) for x in -np.median(self.pool_rotvecs, 0)],
                "pool_rotvecs_deg": [[float(x) for x in r] for r in self.pool_rotvecs]}


def plurality_class(counts: np.ndarray, own: int = 0) -> tuple[int, int, bool]:
    """Pick the canonical class from per-class counts (the module's tie rule).

    Args:
        counts: ``(P,)`` meshes per relative class, ``P`` in {1, 2, 4}.
        own: the medoid's own class (0: it is in class 0 by definition).

    Returns:
        ``(class, margin, tie_broken)``. Among the classes with the top count,
        prefer the one whose 180-degree twin (``c + 2`` when ``P == 4``) has
        more meshes, then ``own``, then the smallest class.
    """
    c = np.asarray(counts, dtype=np.int64).reshape(-1)
    p = len(c)
    if p not in (1, 2, 4):
        raise ValueError(f"counts must have 1, 2 or 4 classes, got {p}")
    top = int(c.max())
    tied = [k for k in range(p) if c[k] == top]
    twin = (lambda k: int(c[(k + 2) % 4])) if p == 4 else (lambda k: 0)
    best = sorted(tied, key=lambda k: (-twin(k), k != own, k))[0]
    runner = max((int(c[k]) for k in range(p) if k != best), default=0)
    return best, top - runner, len(tied) > 1


def _reference_candidates(orders: np.ndarray) -> np.ndarray:
    """Indices of the lowest order held by >= max(2, N / 4) meshes (all if none)."""
    n = len(orders)
    need = max(2, int(np.ceil(n / 4)))
    for o in (1, 2, 4):
        idx = np.flatnonzero(orders == o)
        if len(idx) >= min(need, n):
            return idx
    return np.arange(n)


def select_reference(meshes: Sequence[tuple[np.ndarray, np.ndarray]],
                     settings: TemplateSettings = TemplateSettings(),
                     canon: CanonSettings = CanonSettings()) -> ReferenceChoice:
    """Choose a category reference without ground-truth pose (see module docstring).

    Args:
        meshes: ``N >= 1`` ``(vertices (V, 3), faces (F, 3))`` pairs of one category.
        settings: sampling size and seed of the quarter-turn alignment.
        canon: per-instance symmetry and continuous alignment settings.

    Returns:
        :class:`ReferenceChoice`: the medoid of the lowest-order meshes, its
        small frame error removed, rotated onto the plurality class of the
        relative alignments (ties: see :func:`plurality_class`).
    """
    if len(meshes) == 0:
        raise ValueError("select_reference needs at least one mesh")
    pts = [normalized_points(v, f, settings.points, settings.seed) for v, f in meshes]
    n = len(pts)
    cost = np.zeros((n, n))
    best_k = np.zeros((n, n), dtype=np.int64)  # best_k[i, j]: rotate i onto j
    for i in range(n):
        for j in range(i + 1, n):
            d = yaw_chamfer(pts[i], pts[j])
            k = int(np.argmin(d))
            cost[i, j] = cost[j, i] = d[k]
            best_k[i, j] = k
            best_k[j, i] = (-k) % 4
    sym = tuple(instance_symmetry(v, f, canon) for v, f in meshes)
    orders = np.array([s.order for s in sym], dtype=np.int64)
    cand = _reference_candidates(orders)
    medoid = int(cand[np.argmin(cost[cand].sum(1))])
    order = int(orders[medoid])
    relative = best_k[:, medoid].copy()
    counted = (orders < 4) | (order == 4)  # a 4-fold mesh's class is arbitrary
    counts = np.bincount(relative[counted], minlength=4)
    if order == 4:
        mode, margin, tie = 0, 0, False
    elif order == 2:  # the pair first (a 90-degree error is visible), then the twin
        pair, margin, tie = plurality_class(counts[:2] + counts[2:])
        twin, _, twin_tie = plurality_class(np.array([counts[pair], 0, counts[pair + 2], 0]))
        mode, tie = pair + twin, tie or twin_tie
    else:
        mode, margin, tie = plurality_class(counts)
    ref_corr = (-mode) % 4
    direct = np.where(orders == 4, 0, (relative + ref_corr) % 4)
    # continuous: every mesh quarter-turned onto the medoid, then aligned to it
    # (a symmetric mesh is untilted by its own axis first and only its yaw is aligned)
    cpts = []
    for i, (v, f) in enumerate(meshes):
        p = centred(surface_points(v, f, canon.points, canon.seed))
        cpts.append(p @ (np.round(rotation_z(90.0 * relative[i])) @ sym[i].untilt()).T)
    M, rotvecs = pool_frame(cpts, medoid, canon, [s.order == 1 for s in sym])
    frame = M @ sym[medoid].untilt()
    ref_pts = cpts[medoid] @ (np.round(rotation_z(90.0 * ref_corr)) @ M).T
    return ReferenceChoice(index=medoid, reference_correction=ref_corr, relative=relative,
                           direct_corrections=direct, cost=cost, counts=counts,
                           margin=int(margin), tie_broken=bool(tie), symmetry=order,
                           orders=orders, instances=sym, frame=frame, pool_rotvecs=rotvecs,
                           points=ref_pts)

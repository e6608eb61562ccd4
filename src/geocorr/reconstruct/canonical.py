"""Per-instance canonicalisation: a mesh's own yaw symmetry, continuous alignment to a reference.

Two questions the category-level quarter-turn vote cannot answer:

1. **Which turns leave this mesh unchanged?** (:func:`instance_symmetry`.)
   Decided for every mesh on its own, never for a category: a category may
   hold rectangular tables (2-fold: a 90-degree error is visible and must be
   undone) next to square ones (4-fold: any quarter turn is as good as the
   next, so none may be applied at random).

   **Rule.** Sample the surface twice with independent seeds (``A``, ``B``,
   centred on their centroid, scaled by their RMS radius). ``C(theta)`` is
   the symmetric Chamfer distance between ``Rz(theta) A`` and ``B``. Then
   ``floor = C(0)`` is what "the same surface" costs at this sampling, and
   ``spread = max C(theta)`` over ``theta`` in 30, 45, ..., 180 degrees is the
   instance's *own variation* under yaw. Turns are about the axis within
   ``axis_tilt_deg`` of Z that fits a 180-degree turn best (a pattern search),
   so a few degrees of tilt in the reconstruction do not hide a symmetry. The asymmetry of a turn is
   ``a(theta) = (C(theta) - floor) / (spread - floor)`` (0 = the turn changes
   nothing, 1 = it changes the shape as much as any turn does). The order is
   4 when ``a(90) < symmetry_ratio`` and ``a(180) < symmetry_ratio``, 2 when
   only ``a(180) < symmetry_ratio``, else 1. A mesh that no turn changes
   (``spread < featureless_ratio * floor``: a round table, a sphere) is
   order 4: it has no yaw to recover.

2. **How far off, in degrees, is this mesh from the category's frame?**
   (:func:`align_to_reference`.) After the quarter-turn vote, a small rotation
   (yaw within ``yaw_range_deg``, tilt within ``tilt_max_deg``) minimises the
   symmetric Chamfer distance to the category reference (both point sets
   centred and RMS-scaled): a yaw grid, then a pattern search over
   ``(tilt_x, tilt_y, yaw)`` down to ``min_step_deg``. The yaw window is
   ``+-45`` degrees, exactly one quarter-turn cell, so the continuous step
   never overrules the vote, and for a 4-fold symmetric mesh it covers the
   whole period. The result keeps the residual (Chamfer after alignment, in RMS
   radii) and a confidence (how much worse the best yaw at least
   ``confidence_gap_deg`` away is). The rotation is applied only when it lowers
   the Chamfer distance by at least ``min_gain`` (1 %) of its value before and
   its confidence is at least ``min_confidence`` (0.25). A symmetric mesh (order
   2 or 4) is first untilted by its own symmetry axis
   (:meth:`InstanceSymmetry.untilt`) and only its yaw is aligned: its axis is a
   property of the mesh alone, while a Chamfer fit of tilt to a reference of
   other proportions (a coffee table against a dining table) tilts it (median
   tilt error 3.9 degrees vs 1.9 injected on the benchmark's tables).

The category reference's own frame error is averaged out by
:func:`pool_frame`: every pool mesh is aligned to the medoid, and the
medoid is corrected by the median of those alignments ("the reconstructor is
right on average", the continuous analogue of the plurality rule in
:mod:`geocorr.reconstruct.template`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from geocorr.geometry.rotation import rotvec_matrix
from geocorr.reconstruct.views import rotation_z

__all__ = ["CanonSettings", "InstanceSymmetry", "Alignment", "surface_points", "centred",
           "instance_symmetry", "align_to_reference", "pool_frame", "rotation_from_rotvec",
           "rotation_angle_deg"]


@dataclass(frozen=True)
class CanonSettings:
    """Settings of per-instance symmetry and continuous alignment.

    Attributes:
        points: surface samples per mesh for the alignment (KD-tree Chamfer).
        symmetry_points: surface samples per draw for the symmetry test.
        symmetry_ratio: a turn is a symmetry of the instance when its
            asymmetry ``a(theta)`` (see the module docstring) is below this.
            0.05, from the simulated reconstructions of a 16-per-category
            benchmark (``geocorr synth --images-per-category 16``): ``a(180)``
            is 0.008-0.058 for tables (2-fold by construction) and
            0.009-0.023 for buses (their front and back differ by less than
            the re-meshing noise), >= 0.08 for cars, >= 0.14 dogs, >= 0.25
            aeroplanes, >= 0.48 chairs; ``a(90)`` is 0.004-0.008 for tables
            with a square top (aspect <= 1.01), 0.059 at aspect 1.033 and
            >= 0.14 beyond. It errs low on purpose: a 2-fold mesh called
            order 1 merely has its 180-degree twin voted (harmless), a
            rectangular table called order 4 would keep a 90-degree error.
        featureless_ratio: ``spread / floor`` below this = no turn changes the
            mesh (order 4).
        axis_tilt_deg: the turns are about the axis within this angle of Z
            (per tilt component) that fits a 180-degree turn best, so a
            reconstruction whose up axis is a few degrees off is still found
            symmetric (10: with 5 degrees of injected tilt, half the tables
            were called order 1 about Z itself).
        align: run the continuous alignment (False: quarter turns only, as
            before this step existed).
        yaw_range_deg: half-width of the yaw search (45 = one quarter-turn cell).
        coarse_step_deg: yaw grid step of the first pass.
        tilt_max_deg: bound on each tilt component (about X and about Y).
        min_step_deg: the pattern search stops below this step.
        confidence_gap_deg: the confidence compares the best yaw with the best
            one at least this far away (modulo 90 degrees).
        min_gain: the rotation found is applied only when it lowers the
            Chamfer distance by at least this fraction of its value before (a
            rotation that explains nothing is noise). 0.01: on the benchmark
            at the simulator's exact frames, 85 % of the ungated alignments
            moved by a median 1.3 degrees for under 0.5 % gain; with 10
            degrees of injected yaw the median gain is 14 % and the gate
            changes the median error by 0.01 degree.
        min_confidence: ... and only when its confidence is at least this.
            0.25: on the realistic simulator preset (shape errors: mirrored
            hidden side, per-part scaling, fragments) the ungated alignment
            made the frame worse (median 8.5 vs 1.9 degrees on the meshes
            whose quarter turn was right; confidence median 0.19), while
            with clean shapes and 10 degrees of injected yaw (confidence
            median 0.43) it brings 9.0 down to 3.8 degrees.
        seed: sampling seed (results are deterministic).
    """

    points: int = 400
    symmetry_points: int = 1000
    symmetry_ratio: float = 0.05
    featureless_ratio: float = 1.5
    axis_tilt_deg: float = 10.0
    align: bool = True
    yaw_range_deg: float = 45.0
    coarse_step_deg: float = 5.0
    tilt_max_deg: float = 10.0
    min_step_deg: float = 0.25
    confidence_gap_deg: float = 20.0
    min_gain: float = 0.01
    min_confidence: float = 0.25
    seed: int = 0

    def __post_init__(self) -> None:
        if self.points < 10 or self.symmetry_points < 10:
            raise ValueError(f"CanonSettings.points and symmetry_points must be >= 10, got "
                             f"{self.points}, {self.symmetry_points}")
        if not 0 < self.symmetry_ratio < 1:
            raise ValueError(f"CanonSettings.symmetry_ratio must be in (0, 1), got "
                             f"{self.symmetry_ratio}")
        if not 0 < self.yaw_range_deg <= 45:
            raise ValueError(f"CanonSettings.yaw_range_deg must be in (0, 45], got "
                             f"{self.yaw_range_deg}")
        if self.coarse_step_deg <= 0 or self.min_step_deg <= 0 or self.tilt_max_deg < 0 \
                or self.axis_tilt_deg < 0:
            raise ValueError("CanonSettings: coarse_step_deg and min_step_deg must be > 0, "
                             "tilt_max_deg and axis_tilt_deg >= 0")


# ------------------------------------------------------------------ geometry
def rotation_from_rotvec(rotvec_deg: np.ndarray) -> np.ndarray:
    """``(3, 3)`` rotation of a rotation vector in degrees (axis * angle, Rodrigues)."""
    return rotvec_matrix(np.radians(np.asarray(rotvec_deg, dtype=np.float64)))


def rotation_angle_deg(R: np.ndarray) -> float:
    """Geodesic angle of a rotation matrix, degrees in ``[0, 180]``."""
    c = (float(np.trace(np.asarray(R, dtype=np.float64))) - 1.0) / 2.0
    return math.degrees(math.acos(min(1.0, max(-1.0, c))))


def surface_points(vertices: np.ndarray, faces: np.ndarray, n: int, seed: int = 0
                   ) -> np.ndarray:
    """``(n, 3)`` area-weighted surface samples of a mesh (its own frame, not normalised)."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0 or len(f) == 0:
        raise ValueError(f"mesh has no vertices or no faces (vertices {v.shape}, "
                         f"faces {f.shape})")
    tri = v[f]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    rng = np.random.default_rng(seed)
    p = area / area.sum() if area.sum() > 0 else None
    idx = rng.choice(len(f), size=n, p=p)
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    w = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)
    return np.einsum("nk,nkd->nd", w, tri[idx])


def centred(points: np.ndarray) -> np.ndarray:
    """Points minus their centroid over their RMS radius (rotation-equivariant), ``(N, 3)``."""
    p = np.asarray(points, dtype=np.float64)
    p = p - p.mean(0)
    rms = float(np.sqrt((p ** 2).sum(1).mean()))
    return p / max(rms, 1e-12)


# ------------------------------------------------------------------ symmetry
@dataclass(frozen=True)
class InstanceSymmetry:
    """Yaw symmetry of one mesh (:func:`instance_symmetry`).

    Attributes:
        order: 1, 2 or 4: the mesh looks the same after a ``360 / order`` turn.
        asymmetry: ``(2,)`` ``a(90)``, ``a(180)`` (0 = symmetric, 1 = as
            different as the most different turn).
        floor: ``C(0)``, Chamfer between two samplings (RMS-radius units).
        spread: ``max C(theta)`` over the tested turns.
        axis_deg: ``(2,)`` the turn axis as a tilt rotation vector ``(x, y)`` in
            degrees: the axis is ``T e_z`` with ``T = R(x, y, 0)``. For a
            symmetric mesh (order 2 or 4) it is the mesh's own up axis.
    """

    order: int
    asymmetry: np.ndarray
    floor: float
    spread: float
    axis_deg: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def untilt(self) -> np.ndarray:
        """``(3, 3)`` rotation taking the symmetry axis onto Z (identity for order 1)."""
        if self.order == 1:
            return np.eye(3)
        return rotation_from_rotvec(np.array([self.axis_deg[0], self.axis_deg[1], 0.0])).T

    def to_dict(self) -> dict:
        return {"order": int(self.order), "asymmetry": [float(x) for x in self.asymmetry],
                "floor": float(self.floor), "spread": float(self.spread),
                "axis_deg": [float(x) for x in self.axis_deg]}


_TURNS = (30.0, 45.0, 60.0, 90.0, 120.0, 135.0, 150.0, 180.0)


def instance_symmetry(vertices: np.ndarray, faces: np.ndarray,
                      settings: CanonSettings = CanonSettings()) -> InstanceSymmetry:
    """Yaw symmetry order of one mesh (Z up) by self-Chamfer (rule: module docstring).

    Args:
        vertices: ``(V, 3)`` mesh vertices, Z up.
        faces: ``(F, 3)`` triangle indices.
        settings: sample count, threshold.

    Returns:
        :class:`InstanceSymmetry`.
    """
    from scipy.spatial import cKDTree

    raw_a = surface_points(vertices, faces, settings.symmetry_points, settings.seed)
    raw_b = surface_points(vertices, faces, settings.symmetry_points, settings.seed + 1)
    both = np.concatenate([raw_a, raw_b])  # one centre and scale for both draws
    c0 = both.mean(0)
    r0 = max(float(np.sqrt(((both - c0) ** 2).sum(1).mean())), 1e-12)
    a, b = (raw_a - c0) / r0, (raw_b - c0) / r0
    ta, tb = cKDTree(a), cKDTree(b)

    def cost(deg: float, axis: tuple[float, float] = (0.0, 0.0)) -> float:
        T = rotation_from_rotvec(np.array([axis[0], axis[1], 0.0]))
        R = T @ rotation_z(deg) @ T.T  # a turn about Z tilted by the axis rotation vector
        return float(tb.query(a @ R.T)[0].mean() + ta.query(b @ R)[0].mean())

    # the turn axis: Z, or within axis_tilt_deg of it where a 180-degree turn fits best
    # (a reconstruction whose up axis is tilted a few degrees is still symmetric about
    # its own axis)
    axis, best = (0.0, 0.0), cost(180.0)
    step = settings.axis_tilt_deg / 2
    while step >= 0.5 - 1e-9:
        moved = False
        for d in ((step, 0.0), (-step, 0.0), (0.0, step), (0.0, -step)):
            cand = (axis[0] + d[0], axis[1] + d[1])
            if max(abs(cand[0]), abs(cand[1])) > settings.axis_tilt_deg + 1e-9:
                continue
            c_try = cost(180.0, cand)
            if c_try < best:
                axis, best, moved = cand, c_try, True
                break
        if not moved:
            step /= 2
    floor = cost(0.0)
    c = {t: cost(t, axis) for t in _TURNS}
    spread = max(c.values())
    ax = np.array(axis)
    if spread < settings.featureless_ratio * floor:
        return InstanceSymmetry(4, np.zeros(2), floor, spread, ax)
    asym = np.array([c[90.0] - floor, c[180.0] - floor]) / (spread - floor)
    asym = np.clip(asym, 0.0, None)
    r = settings.symmetry_ratio
    order = 4 if (asym[0] < r and asym[1] < r) else 2 if asym[1] < r else 1
    return InstanceSymmetry(order, asym, floor, spread, ax)


# ------------------------------------------------------------------ alignment
@dataclass(frozen=True)
class Alignment:
    """A small rotation bringing a mesh onto the reference (:func:`align_to_reference`).

    Attributes:
        rotation: ``(3, 3)`` ``A``: ``A @ x`` puts the mesh's (centred) points on
            the reference's.
        rotvec_deg: ``(3,)`` the same as a rotation vector in degrees
            ``(tilt about X, tilt about Y, yaw)``.
        residual: symmetric Chamfer after alignment, in RMS radii (shape
            difference to the reference plus sampling noise).
        residual_before: the same before the rotation.
        confidence: ``(C_alt - C_best) / C_alt`` with ``C_alt`` the best cost
            at a yaw at least ``confidence_gap_deg`` from the optimum
            (0 = flat profile, the yaw is a guess; ~0.3+ = a clear minimum).
        evaluations: Chamfer evaluations spent.
        applied: False when the gain was below ``min_gain`` or the confidence
            below ``min_confidence``: then the rotation is the identity and
            the residual the one before.
    """

    rotation: np.ndarray
    rotvec_deg: np.ndarray
    residual: float
    residual_before: float
    confidence: float
    evaluations: int
    applied: bool = True

    @property
    def angle_deg(self) -> float:
        return rotation_angle_deg(self.rotation)

    def to_dict(self) -> dict:
        return {"rotvec_deg": [float(x) for x in self.rotvec_deg],
                "yaw_deg": float(self.rotvec_deg[2]),
                "tilt_deg": float(math.hypot(self.rotvec_deg[0], self.rotvec_deg[1])),
                "angle_deg": float(self.angle_deg), "residual": float(self.residual),
                "residual_before": float(self.residual_before),
                "confidence": float(self.confidence), "evaluations": int(self.evaluations),
                "applied": bool(self.applied)}


def align_to_reference(points: np.ndarray, reference: np.ndarray,
                       settings: CanonSettings = CanonSettings(), tilt: bool = True
                       ) -> Alignment:
    """Small rotation (yaw, tilt) minimising the Chamfer distance to the reference.

    Args:
        points: ``(N, 3)`` the mesh's centred points (:func:`centred`), after
            its quarter-turn correction.
        reference: ``(M, 3)`` the reference's centred points, canonical frame.
        settings: search ranges and steps.
        tilt: also search the tilt (False: yaw only, e.g. for a symmetric mesh
            whose own axis already fixed its tilt, :meth:`InstanceSymmetry.untilt`).

    Returns:
        :class:`Alignment` (identity when ``settings.align`` is False).
    """
    from scipy.spatial import cKDTree

    p = np.asarray(points, dtype=np.float64)
    q = np.asarray(reference, dtype=np.float64)
    tp, tq = cKDTree(p), cKDTree(q)
    cache: dict[tuple[float, float, float], float] = {}

    def cost(w: tuple[float, float, float]) -> float:
        key = tuple(round(x, 6) for x in w)
        if key not in cache:
            R = rotation_from_rotvec(np.array(w))
            cache[key] = float(tq.query(p @ R.T)[0].mean() + tp.query(q @ R)[0].mean())
        return cache[key]

    c0 = cost((0.0, 0.0, 0.0))
    if not settings.align:
        return Alignment(np.eye(3), np.zeros(3), c0, c0, 0.0, 1)
    yr, tmax = settings.yaw_range_deg, (settings.tilt_max_deg if tilt else 0.0)
    n = int(math.floor(yr / settings.coarse_step_deg))
    yaws = settings.coarse_step_deg * np.arange(-n, n + 1)
    profile = np.array([cost((0.0, 0.0, float(y))) for y in yaws])
    best = np.array([0.0, 0.0, float(yaws[int(np.argmin(profile))])])
    fbest = cost(tuple(best))
    step = settings.coarse_step_deg / 2
    bounds = np.array([tmax, tmax, yr])
    while step >= settings.min_step_deg:
        moved = False
        for axis in (2, 0, 1):
            if axis < 2 and tmax <= 0:
                continue
            for sgn in (1.0, -1.0):
                w = best.copy()
                w[axis] += sgn * step
                if abs(w[axis]) > bounds[axis] + 1e-9:
                    continue
                f = cost(tuple(w))
                if f < fbest - 1e-12:
                    best, fbest, moved = w, f, True
                    break
        if not moved:
            step /= 2
    # distance modulo a quarter turn: the two ends of the window are one yaw for a
    # 4-fold mesh, and beyond a quarter turn is the vote's business anyway
    gap = np.abs(yaws - best[2]) % 90.0
    far = np.minimum(gap, 90.0 - gap) >= settings.confidence_gap_deg
    alt = float(profile[far].min()) if far.any() else fbest
    conf = max(0.0, (alt - fbest) / max(alt, 1e-12))
    if c0 - fbest < settings.min_gain * c0 or conf < settings.min_confidence:
        # explains nothing, or no clear minimum (a shape unlike the reference): leave it
        return Alignment(np.eye(3), np.zeros(3), c0, c0, conf, len(cache), applied=False)
    return Alignment(rotation_from_rotvec(best), best, fbest, c0, conf, len(cache))


def pool_frame(points: Sequence[np.ndarray], reference: int,
               settings: CanonSettings = CanonSettings(),
               tilt: Sequence[bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Correction of the reference's small frame error: median of the pool's alignments.

    Args:
        points: centred point sets of the pool, each already quarter-turned
            onto the reference (``points[reference]`` is the reference).
        reference: index of the reference in ``points``.
        settings: alignment settings.
        tilt: per mesh, whether its tilt is searched (default: all).

    Returns:
        ``(M (3, 3), rotvecs (N, 3) degrees)``: ``M @ x`` puts the reference's
        points in the pool's average frame; ``rotvecs[i]`` aligns mesh ``i``
        onto the reference.
    """
    if not settings.align:
        return np.eye(3), np.zeros((len(points), 3))
    ref = points[reference]
    tilt = [True] * len(points) if tilt is None else list(tilt)
    rv = np.array([np.zeros(3) if i == reference else
                   align_to_reference(p, ref, settings, tilt[i]).rotvec_deg
                   for i, p in enumerate(points)])
    return rotation_from_rotvec(-np.median(rv, axis=0)), rv

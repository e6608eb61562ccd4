"""Quarter turns from what the images saw: a pool consensus over the seen halves.

A single-image reconstructor invents the side of the object its camera did
not see. SAM 3D often makes it the mirror image of the seen side (the
``realistic`` simulator preset does so with p 0.7, about the vertical plane
through the centre that faces the camera: docs/synth.md). A front-seen car
then has two fronts, and anything that compares whole meshes (the
quarter-turn Chamfer alignment, the 8-view template renders, the self-Chamfer
symmetry test) compares invented geometry as if it were real. On the
``realistic`` benchmark this made the template vote wrong on 27 % of the
images (benchmarks/RESULTS.md, "Per-instance canonicalisation").

**Rule.** Each mesh's *seen half* is the half-space in front of the vertical
plane through its bounding-box centre facing its camera (``facing``: the
horizontal direction from the centre to the camera centre, in the mesh's
frame). Two meshes, each turned by its candidate quarter turn, are compared
only where *both* were seen: the points of each that lie in both seen
half-spaces (a wedge), each point's distance to the *other* mesh's whole
surface samples (so a wedge edge does not cut a point off from its
neighbour), averaged both ways. A pair whose wedge holds fewer than
``min_points`` points of either mesh (the two cameras looked at opposite
sides) is not compared.

The pool decides jointly, by coordinate descent from the reconstructor's own
frames (every correction 0: the reconstructor is right on most images):
each mesh takes the quarter turn ``k`` minimising the **median** over the
other meshes (at their current turns) of the seen-wedge distance; repeat
until no mesh changes (at most ``iterations`` rounds; if the turns still
oscillate then, the last round's stand). The median makes the
cost robust to the minority of pool meshes that are still turned wrong or
badly reshaped. The consensus fixes turns only relative to each other; the
absolute turn is the **plurality** one (the reconstructor is mostly right:
:func:`~geocorr.reconstruct.template.plurality_class`), as for the
reference (:mod:`geocorr.reconstruct.template`).

How the yaw vote uses it (:func:`geocorr.reconstruct.yaw_vote.seen_side_decision`):
the consensus and the 8-view vote are independent cues, and the
reconstructor's frame is right on most images, so a turn is applied only
when both name it. Alone, the consensus tells a 90-degree turn from a 0/180
one well (a car's side and front differ in shape) but front from back less
well (a procedural car's front and back halves differ by less than a
mirrored, warped reconstruction does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from geocorr.geometry.camera import Camera
from geocorr.reconstruct.views import rotation_z

__all__ = ["SeenSideSettings", "SeenSideConsensus", "facing_direction", "seen_side_consensus"]


@dataclass(frozen=True)
class SeenSideSettings:
    """Settings of the seen-half consensus.

    Attributes:
        enabled: use the consensus in the yaw decision (False: the 8-view
            template vote alone, as before this step existed).
        points: surface samples per mesh (bbox-centred, diagonal-scaled, as
            for the reference's quarter-turn alignment).
        min_points: a pair is compared only when its seen wedge holds at
            least this many points of each mesh (90 of 600: a wedge narrower
            than about 27 degrees is skipped).
        iterations: at most this many rounds of coordinate descent.
        seed: sampling seed (results are deterministic).
    """

    enabled: bool = True
    points: int = 600
    min_points: int = 90
    iterations: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.points < 10 or not 1 <= self.min_points <= self.points:
            raise ValueError(f"SeenSideSettings: need points >= 10 and 1 <= min_points <= "
                             f"points, got {self.points}, {self.min_points}")
        if self.iterations < 1:
            raise ValueError(f"SeenSideSettings.iterations must be >= 1, got {self.iterations}")


@dataclass(frozen=True)
class SeenSideConsensus:
    """Result of :func:`seen_side_consensus` for a pool of ``N`` meshes.

    Attributes:
        corrections: ``(N,)`` int, the quarter turn ``k`` (rotate by ``k * 90``
            degrees about +Z) of each mesh, absolute (plurality gauge).
        cost: ``(N, 4)`` median seen-wedge distance of each *absolute*
            candidate ``k`` at the final turns of the others (NaN: no pool
            mesh overlapped).
        compared: ``(N,)`` pool meshes compared at the chosen turn.
        rounds: rounds of coordinate descent run.
        converged: no mesh changed in the last round.
        gauge: the relative class made absolute (the plurality rule).
    """

    corrections: np.ndarray
    cost: np.ndarray
    compared: np.ndarray
    rounds: int
    converged: bool
    gauge: int


def facing_direction(vertices: np.ndarray, camera: Camera) -> np.ndarray:
    """Horizontal unit vector from the mesh's bbox centre towards its camera, ``(3,)``.

    Args:
        vertices: ``(V, 3)`` mesh vertices (Z up) that ``camera`` renders.
        camera: the image's camera (object-to-camera ``R``, ``t``).

    Returns:
        ``(3,)`` with zero Z; ``(1, 0, 0)`` if the camera is straight above
        the centre (no horizontal direction).
    """
    v = np.asarray(vertices, dtype=np.float64)
    centre = 0.5 * (v.min(0) + v.max(0))
    eye = -np.asarray(camera.R, np.float64).T @ np.asarray(camera.t, np.float64)
    d = eye - centre
    d[2] = 0.0
    n = float(np.linalg.norm(d))
    return d / n if n > 1e-12 else np.array([1.0, 0.0, 0.0])


def seen_side_consensus(points: Sequence[np.ndarray], facing: Sequence[np.ndarray],
                        settings: SeenSideSettings = SeenSideSettings()) -> SeenSideConsensus:
    """Joint quarter turns of a pool from its seen halves (rule: module docstring).

    Args:
        points: ``N`` arrays ``(P_i, 3)``: each mesh's surface samples, centred
            on its bbox centre and scaled by its bbox diagonal
            (:func:`~geocorr.reconstruct.template.normalized_points`).
        facing: ``N`` ``(3,)`` horizontal unit vectors towards each camera
            (:func:`facing_direction`).
        settings: see :class:`SeenSideSettings`.

    Returns:
        :class:`SeenSideConsensus`.
    """
    from scipy.spatial import cKDTree

    from geocorr.reconstruct.template import plurality_class

    n = len(points)
    if n == 0 or len(facing) != n:
        raise ValueError(f"seen_side_consensus needs N >= 1 point sets and N facing "
                         f"directions, got {n} and {len(facing)}")
    rz = [np.round(rotation_z(90.0 * k)) for k in range(4)]
    pts = [[np.asarray(p, np.float64) @ r.T for r in rz] for p in points]
    face = [[r @ np.asarray(f, np.float64) for r in rz] for f in facing]
    trees = [[cKDTree(p) for p in row] for row in pts]
    side = [[pts[i][k] @ face[i][k] > 0 for k in range(4)] for i in range(n)]
    m = settings.min_points

    def wedge(i: int, ki: int, j: int, kj: int) -> float | None:
        a, b = pts[i][ki], pts[j][kj]
        sa = side[i][ki] & (a @ face[j][kj] > 0)
        sb = side[j][kj] & (b @ face[i][ki] > 0)
        if sa.sum() < m or sb.sum() < m:
            return None
        return float(trees[j][kj].query(a[sa])[0].mean() + trees[i][ki].query(b[sb])[0].mean())

    def costs(i: int, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out, cnt = np.full(4, np.nan), np.zeros(4, np.int64)
        for k in range(4):
            vals = [w for j in range(n) if j != i for w in [wedge(i, k, j, int(c[j]))]
                    if w is not None]
            if vals:
                out[k], cnt[k] = float(np.median(vals)), len(vals)
        return out, cnt

    c = np.zeros(n, np.int64)
    cost = np.full((n, 4), np.nan)
    cnt = np.zeros((n, 4), np.int64)
    rounds, converged = 0, False
    while rounds < settings.iterations and not converged:
        rounds += 1
        new = c.copy()
        for i in range(n):
            cost[i], cnt[i] = costs(i, c)
            if np.isfinite(cost[i]).any():
                new[i] = int(np.nanargmin(cost[i]))
        converged = bool((new == c).all())
        c = new
    if not converged:  # costs at the final turns
        for i in range(n):
            cost[i], cnt[i] = costs(i, c)
    g, _, _ = plurality_class(np.bincount(c, minlength=4))
    # c_i is relative to the gauge class g: absolute k_i = c_i - g; cost columns shift alike
    absolute = (c - g) % 4
    cost_abs = cost[:, (np.arange(4) + g) % 4]
    compared = cnt[np.arange(n), c]
    return SeenSideConsensus(corrections=absolute, cost=cost_abs, compared=compared,
                             rounds=rounds, converged=converged, gauge=int(g))

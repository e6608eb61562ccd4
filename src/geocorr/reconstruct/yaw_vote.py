"""Eight-view yaw vote (method.md, stage 1 step 4).

Render the mesh at known azimuths ``psi_k = k * 360 / n`` (``n = 8``: 45 degree
steps), ask an :class:`~geocorr.reconstruct.orientation.OrientationEstimator`
for each render's apparent azimuth ``phi_k``. If the mesh is yawed by ``theta``
(its front points along ``theta``), then ``phi_k = psi_k - theta``, so every view
suggests the correction ``c = phi_k - psi_k = -theta``. Each view votes for the
``c`` in {0, 90, 180, 270} closest to ``phi_k - psi_k`` (circularly); the
majority wins, ties are broken by summed confidence, and the vote margin is
reported.

A correction ``k`` means **rotate the mesh by ``k * 90`` degrees about +Z** (its own
frame, counter-clockwise seen from above): ``X' = Rz(k 90) X``. A camera that
rendered ``X`` renders ``X'`` identically after ``R' = R Rz(k 90)^T``.

Symmetry (Orient Anything's order alpha, or the template estimator's category
order): 1 = a clear front; 0 = no front (the view carries no azimuth:
skipped); 2 or 4 = azimuth ambiguous modulo 180 or 90 degrees: the view's vote
(weight ``VoteSettings.symmetric_weight``; 0 skips it) is split evenly over
its 2 or 4 equivalent corrections. An order-2 vote thus still separates
``{k, k+2}`` from ``{k+1, k+3}`` without preferring ``k`` over ``k+2``; the
tie between them goes to the smaller rotation (``k`` in {0, 1}): the
correction is only defined modulo the symmetry.

**The mesh's own symmetry** (``instance_order``, decided per instance by
:func:`geocorr.reconstruct.canonical.instance_symmetry`, never per category):

* order 4 (a square or round table): no quarter turn is distinguishable from
  the next, so none is applied (``k = 0``, margin 0) — the mesh is never
  turned at random;
* order 2 (a rectangular table; also a bus, whose reconstructed front and back
  differ by less than the reconstruction noise): the vote first decides the
  *pair* ``{c, c + 2}`` (twin tallies summed: a 90-degree error is visible
  and is undone), then, within the pair, the twin leading by at least
  ``VoteSettings.twin_margin`` views wins (an appearance cue the geometry
  cannot see, e.g. a bus's windscreen), otherwise the smaller rotation
  ``c`` in {0, 1} (a symmetric shape is not turned by 180 degrees on noise).

**With the seen-side consensus** (:mod:`geocorr.reconstruct.seen_side`, on by
default for the CPU template estimator; :func:`seen_side_decision`). The
8 renders show the whole mesh, hidden side included, and a reconstructor
invents that side (often as the mirror image of the seen one), so the vote
alone errs on such meshes; the consensus compares only seen halves but
cannot always tell front from back. The two cues are independent, and the
reconstructor's own frame is right on most images, so a turn is applied only
on evidence:

1. the mesh is 4-fold symmetric: ``k = 0`` (as above);
2. the vote and the consensus name the same ``k``: that ``k``, except that
   a 180-degree turn also needs the vote to lead ``k = 0`` by ``twin_margin``
   views (the twin rule of 2-fold meshes above: front and back are what both
   cues confuse when the reconstructor mirrored the seen side);
3. they name turns of different pairs (one says 90 degrees where the other
   says 0/180): ``k = 0``, the reconstructor's frame;
4. same pair ``{0, 2}``, different twins: ``k = 0``;
5. same pair ``{1, 3}`` (both see a 90-degree error, they differ on its
   sign): the vote's twin if it leads by ``twin_margin`` views, else the
   consensus's (lower seen-half cost).

A mesh whose own geometry is 2-fold keeps the vote's decision (its twin
tallies are summed, so a 90-degree error is already visible, and it has no
front for the cues to disagree about; at oracle the consensus overruled a
rectangular table's right 90-degree correction). Without consensus costs (no
pool mesh shares a seen side with this one) the vote decides alone too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from geocorr.reconstruct.orientation import OrientationEstimate, OrientationEstimator
from geocorr.reconstruct.seen_side import SeenSideSettings
from geocorr.reconstruct.views import ViewSettings, render_view, rotation_z

__all__ = ["VoteSettings", "YawVote", "vote_yaw", "canonicalize_yaw", "apply_yaw_correction",
           "correction_for", "seen_side_decision"]


@dataclass(frozen=True)
class VoteSettings:
    """Settings of the yaw vote.

    Attributes:
        num_views: renders around the object; 8 (45 degree steps) is the
            paper's. Must be a positive multiple of 4 so every correction is
            sampled symmetrically.
        symmetric_weight: total weight of a vote whose estimate reports
            symmetry order 2 or 4, split evenly over the equivalent
            corrections. 1 (default): such a vote cannot prefer a correction
            over its 180/90-degree twin, but an order-2 vote still rules out
            the 90-degree ones (the benchmark's tables need it); 0 skips them.
        twin_margin: for a mesh of yaw symmetry order 2, the lead (in
            weighted views) one 180-degree twin needs over the other to be
            chosen; below it the smaller rotation is kept. 4 of 8 views
            (6 against 2).
        views: how the renders are made (size, elevation, field of view).
        seen_side: the pool consensus over seen halves that the vote is
            combined with (module docstring; ``enabled=False``: the vote alone).
    """

    num_views: int = 8
    symmetric_weight: float = 1.0
    twin_margin: float = 4.0
    views: ViewSettings = field(default_factory=ViewSettings)
    seen_side: SeenSideSettings = field(default_factory=SeenSideSettings)

    def __post_init__(self) -> None:
        if self.num_views <= 0 or self.num_views % 4:
            raise ValueError(f"num_views must be a positive multiple of 4, got {self.num_views}")
        if self.symmetric_weight < 0:
            raise ValueError(f"symmetric_weight must be >= 0, got {self.symmetric_weight}")
        if self.twin_margin < 0:
            raise ValueError(f"twin_margin must be >= 0, got {self.twin_margin}")


@dataclass(frozen=True)
class YawVote:
    """Outcome of the vote.

    Attributes:
        correction: winning ``k`` in {0, 1, 2, 3}: rotate the mesh by ``k * 90``
            degrees about +Z.
        tally: ``(4,)`` weighted vote count per ``k``.
        margin: winner's count minus the runner-up's (0 on a tie); for a mesh of
            symmetry order 2 between the two pairs ``{c, c + 2}``; 0 for order 4.
        tie_broken: the top count was shared and confidence (or the preference
            for the smaller rotation) decided.
        view_azimuths: ``(n,)`` render azimuths ``psi_k`` in degrees.
        estimated: ``(n,)`` estimated azimuths ``phi_k`` in degrees.
        view_votes: ``(n,)`` int, the ``k`` each view voted for (for a split
            symmetric vote, the nearest of its equivalent corrections), ``-1``
            if skipped.
        weights: ``(n,)`` vote weights (0 for skipped views).
        instance_order: the mesh's own yaw symmetry order the vote respected.
        rule: how ``correction`` was decided: ``"vote"`` (the vote alone) or,
            by :func:`seen_side_decision`, ``"symmetric"``, ``"agree"``,
            ``"disagree"``, ``"pair0"``, ``"twin_vote"``, ``"twin_seen"``.
        vote_correction: the 8-view vote's own winner (``correction`` before
            the seen-side decision).
        seen_cost: ``(4,)`` the consensus's seen-half cost per ``k`` (NaN
            where none), or ``None`` without a consensus.
    """

    correction: int
    tally: np.ndarray
    margin: float
    tie_broken: bool
    view_azimuths: np.ndarray
    estimated: np.ndarray
    view_votes: np.ndarray
    weights: np.ndarray
    instance_order: int = 1
    rule: str = "vote"
    vote_correction: int | None = None
    seen_cost: np.ndarray | None = None

    @property
    def correction_deg(self) -> int:
        return 90 * self.correction

    def to_dict(self) -> dict:
        return {
            "correction": int(self.correction),
            "correction_deg": int(self.correction_deg),
            "tally": [float(x) for x in self.tally],
            "margin": float(self.margin),
            "tie_broken": bool(self.tie_broken),
            "view_azimuths": [float(x) for x in self.view_azimuths],
            "estimated": [float(x) for x in self.estimated],
            "view_votes": [int(x) for x in self.view_votes],
            "weights": [float(x) for x in self.weights],
            "instance_order": int(self.instance_order),
            "rule": self.rule,
            "vote_correction": int(self.correction if self.vote_correction is None
                                   else self.vote_correction),
            "seen_cost": None if self.seen_cost is None else
            [None if not np.isfinite(x) else float(x) for x in self.seen_cost],
        }


def correction_for(view_azimuth_deg: float, estimated_deg: float) -> int:
    """The ``k`` whose ``k * 90`` is circularly closest to ``estimated - view``."""
    d = (estimated_deg - view_azimuth_deg) % 360.0
    return int(np.floor(d / 90.0 + 0.5)) % 4


def vote_yaw(view_azimuths: Sequence[float], estimates: Sequence[OrientationEstimate],
             symmetric_weight: float = 1.0, instance_order: int = 1,
             twin_margin: float = 4.0) -> YawVote:
    """Tally per-view votes into one correction (pure; no rendering).

    Args:
        view_azimuths: ``(n,)`` render azimuths ``psi_k`` in degrees.
        estimates: ``n`` estimates, one per render.
        symmetric_weight: total weight of estimates with symmetry order 2 or 4,
            split evenly over their 2 or 4 equivalent corrections.
        instance_order: the mesh's own yaw symmetry order (1, 2 or 4; see the
            module docstring).
        twin_margin: order 2: lead a 180-degree twin needs to be chosen.

    Returns:
        :class:`YawVote`. Ties in the weighted count go to the candidate with
        the larger summed confidence (a missing confidence counts as 1); if
        still tied, to the smallest rotation (k = 0 first: leave the mesh alone
        when the evidence is balanced). No valid vote at all gives ``k = 0``,
        margin 0.
    """
    psi = np.asarray(view_azimuths, dtype=np.float64).reshape(-1)
    if instance_order not in (1, 2, 4):
        raise ValueError(f"instance_order must be 1, 2 or 4, got {instance_order}")
    if len(estimates) != len(psi):
        raise ValueError(f"{len(psi)} view azimuths but {len(estimates)} estimates")
    n = len(psi)
    votes = np.full(n, -1, dtype=np.int64)
    weights = np.zeros(n)
    phi = np.zeros(n)
    tally = np.zeros(4)
    conf_sum = np.zeros(4)
    for i, (p, est) in enumerate(zip(psi, estimates, strict=True)):
        phi[i] = est.azimuth_deg
        if est.symmetry == 0:
            continue
        w = symmetric_weight if est.symmetry in (2, 4) else 1.0
        if w <= 0:
            continue
        k = correction_for(p, est.azimuth_deg)
        votes[i] = k
        weights[i] = w
        order = est.symmetry if est.symmetry in (2, 4) else 1
        conf = 1.0 if est.confidence is None else float(est.confidence)
        for j in range(order):
            kj = (k + j * (4 // order)) % 4
            tally[kj] += w / order
            conf_sum[kj] += w / order * conf
    def pick(keys, tal, con):
        ranked = sorted(keys, key=lambda k: (-tal[k], -con[k], k))
        top = tal[ranked[0]]
        runner = max((tal[k] for k in keys if k != ranked[0]), default=0.0)
        tied = int(np.sum(np.isclose([tal[k] for k in keys], top))) > 1
        return ranked[0], float(top - runner), tied and top > 0

    if instance_order == 4:  # every quarter turn looks the same: never turn at random
        best, margin, tie = 0, 0.0, False
    elif instance_order == 2:  # pair {c, c+2} first, then a clear twin or the smaller
        pair_t = [tally[0] + tally[2], tally[1] + tally[3]]
        pair_c = [conf_sum[0] + conf_sum[2], conf_sum[1] + conf_sum[3]]
        c, margin, tie = pick(range(2), pair_t, pair_c)
        best = c + 2 if tally[c + 2] - tally[c] >= max(twin_margin, 1e-9) else c
    else:
        best, margin, tie = pick(range(4), tally, conf_sum)
    return YawVote(correction=best, tally=tally, margin=margin, tie_broken=tie,
                   view_azimuths=psi, estimated=phi, view_votes=votes, weights=weights,
                   instance_order=int(instance_order))


def seen_side_decision(vote: YawVote, seen_cost: np.ndarray | None,
                       twin_margin: float = 4.0) -> YawVote:
    """Combine the 8-view vote with the seen-side consensus (rules: module docstring).

    Args:
        vote: the 8-view vote (:func:`vote_yaw`), with the mesh's symmetry order.
        seen_cost: ``(4,)`` consensus cost per absolute ``k``
            (:attr:`~geocorr.reconstruct.seen_side.SeenSideConsensus.cost`
            row; NaN = no comparison), or ``None``.
        twin_margin: lead (views) the vote needs to pick a twin of pair ``{1, 3}``.

    Returns:
        The vote with ``correction`` decided, ``rule``, ``vote_correction``
        and ``seen_cost`` filled.
    """
    kv = int(vote.correction)
    cost = None if seen_cost is None else np.asarray(seen_cost, np.float64).reshape(4)

    def done(k: int, rule: str) -> YawVote:
        return replace(vote, correction=int(k), rule=rule, vote_correction=kv, seen_cost=cost)

    if vote.instance_order == 4:
        return done(0, "symmetric")
    if vote.instance_order == 2 or cost is None or not np.isfinite(cost).any():
        return done(kv, "vote")
    kc = int(np.nanargmin(cost))
    t = vote.tally
    if kc == kv == 2 and t[2] - t[0] < max(twin_margin, 1e-9):
        return done(0, "pair0")  # 180 degrees: both cues, and the vote's twin lead
    if kc == kv:
        return done(kv, "agree")
    if (kc - kv) % 2:
        return done(0, "disagree")
    if kv % 2 == 0:
        return done(0, "pair0")
    if abs(t[kv] - t[kc]) >= max(twin_margin, 1e-9):
        return done(kv if t[kv] > t[kc] else kc, "twin_vote")
    return done(kc, "twin_seen")


def canonicalize_yaw(vertices: np.ndarray, faces: np.ndarray, estimator: OrientationEstimator,
                     settings: VoteSettings = VoteSettings(), instance_order: int = 1) -> YawVote:
    """Render ``num_views`` views of the mesh, estimate each azimuth, vote.

    Args:
        vertices: ``(V, 3)`` mesh vertices (Z up).
        faces: ``(F, 3)`` triangle indices.
        estimator: any :class:`OrientationEstimator`.
        settings: see :class:`VoteSettings`.
        instance_order: the mesh's own yaw symmetry order (module docstring).

    Returns:
        :class:`YawVote`; apply it with :func:`apply_yaw_correction`.
    """
    psi = np.arange(settings.num_views) * (360.0 / settings.num_views)
    estimates = [estimator.estimate(render_view(vertices, faces, float(p), settings.views))
                 for p in psi]
    return vote_yaw(psi, estimates, settings.symmetric_weight, instance_order,
                    settings.twin_margin)


def apply_yaw_correction(vertices: np.ndarray, camera_R: np.ndarray, k: int
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Rotate the mesh by ``k * 90`` degrees about +Z and update the camera rotation.

    Args:
        vertices: ``(V, 3)`` mesh vertices.
        camera_R: ``(3, 3)`` object-to-camera rotation that renders ``vertices``.
        k: correction in {0, 1, 2, 3} (any integer is taken modulo 4).

    Returns:
        ``(vertices', R')`` with ``vertices' = vertices @ Rz^T`` and
        ``R' = R Rz^T``; ``R' X' + t == R X + t`` for every vertex.
    """
    Rz = rotation_z(90.0 * (int(k) % 4))
    # Snap to exact 0/±1 entries so repeated corrections do not accumulate error.
    Rz = np.round(Rz)
    v = np.asarray(vertices, dtype=np.float64) @ Rz.T
    return v, np.asarray(camera_R, dtype=np.float64) @ Rz.T

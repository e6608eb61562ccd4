"""Seen-half consensus (reconstruct/seen_side.py) and its combination with the yaw vote."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from geocorr.geometry.camera import Camera, look_at
from geocorr.reconstruct.canonical import surface_points
from geocorr.reconstruct.seen_side import (
    SeenSideSettings,
    facing_direction,
    seen_side_consensus,
)
from geocorr.reconstruct.template import yaw_chamfer
from geocorr.reconstruct.views import rotation_z
from geocorr.reconstruct.yaw_vote import YawVote, seen_side_decision


def car_points(n: int = 600, seed: int = 0) -> np.ndarray:
    """A car-like shape (body, cabin set back, a nose; X front) as surface samples."""
    body = trimesh.creation.box([2.0, 0.9, 0.4])
    body.apply_translation([0, 0, 0.2])
    cabin = trimesh.creation.box([0.8, 0.8, 0.4])
    cabin.apply_translation([-0.35, 0, 0.6])
    nose = trimesh.creation.box([0.3, 0.5, 0.15])
    nose.apply_translation([1.15, 0, 0.1])
    m = trimesh.util.concatenate([body, cabin, nose])
    return surface_points(np.asarray(m.vertices), np.asarray(m.faces), n, seed)


def normalise(p: np.ndarray) -> np.ndarray:
    lo, hi = p.min(0), p.max(0)
    return (p - 0.5 * (lo + hi)) / np.linalg.norm(hi - lo)


def true_frame_scale(p: np.ndarray) -> np.ndarray:
    """Scaled, about the object's own centre (where the simulator's mirror plane
    passes): the consensus compares points centred where the facing plane is."""
    return p / 2.86


def reconstruction(true: np.ndarray, azimuth: float, k_err: int, mirror: bool):
    """What a reconstructor returns: seen from ``azimuth`` (true frame), hidden half
    replaced by the seen half's mirror image, then the frame turned so that a
    correction of ``k_err`` quarter turns undoes it. Returns ``(points, facing)``."""
    a = np.radians(azimuth)
    n = np.array([np.cos(a), np.sin(a), 0.0])
    c = 0.5 * (true.min(0) + true.max(0))
    p = true - c
    if mirror:
        seen = p[p @ n > 0]
        p = np.concatenate([seen, seen - 2.0 * np.outer(seen @ n, n)])
    R = np.round(rotation_z(-90.0 * k_err))
    return true_frame_scale(p @ R.T), R @ n


def test_mirrored_hidden_side_fools_a_whole_shape_comparison():
    """The premise: a front-seen car whose back is its mirrored front is as far from
    the true car turned by 180 degrees as unturned (whole-shape Chamfer cannot tell)."""
    true = normalise(car_points())
    p, _ = reconstruction(car_points(seed=1), 10.0, 0, mirror=True)
    d = yaw_chamfer(normalise(p), true)
    assert abs(d[2] - d[0]) < 0.25 * d[0]
    clean, _ = reconstruction(car_points(seed=1), 10.0, 0, mirror=False)
    d = yaw_chamfer(normalise(clean), true)
    assert d[2] > 2.0 * d[0]  # without the mirror, the shape tells front from back


def test_consensus_recovers_known_quarter_turns_of_mirrored_reconstructions():
    """A pool of 12 mirrored cars seen all around, 4 with known quarter-turn errors:
    the consensus names every error (and leaves the 8 right ones alone)."""
    errors = [0, 1, 0, 0, 2, 0, 3, 0, 0, 1, 0, 0]
    azimuths = np.arange(12) * 30.0 + 10.0
    pts, face = [], []
    for i, (az, k) in enumerate(zip(azimuths, errors, strict=True)):
        p, n = reconstruction(car_points(seed=10 + i), az, k, mirror=True)
        pts.append(p)
        face.append(n)
    cons = seen_side_consensus(pts, face)
    assert cons.corrections.tolist() == errors
    assert cons.converged
    assert cons.cost.shape == (12, 4)
    assert (cons.compared >= 1).all()


def test_consensus_takes_the_plurality_as_right():
    """A turn shared by every mesh is invisible to a consensus: the plurality is taken
    as right (the reconstructor is right on most images), so a pool turned by one more
    quarter than its true errors yields the errors relative to the plurality."""
    errors = [0, 0, 0, 0, 2, 0]
    pts, face = [], []
    for i, (az, k) in enumerate(zip(np.arange(6) * 60.0 + 5.0, errors, strict=True)):
        p, n = reconstruction(car_points(seed=30 + i), az, (k + 1) % 4, mirror=False)
        pts.append(p)
        face.append(n)
    cons = seen_side_consensus(pts, face)
    assert cons.corrections.tolist() == errors


def test_pairs_facing_away_are_not_compared():
    """Two meshes seen from opposite sides share no seen wedge: no cost at k = 0."""
    a, na = reconstruction(car_points(seed=1), 0.0, 0, mirror=False)
    b, nb = reconstruction(car_points(seed=2), 180.0, 0, mirror=False)
    cons = seen_side_consensus([a, b], [na, nb])
    assert np.isnan(cons.cost[0, 0]) and np.isnan(cons.cost[1, 0])
    assert np.isfinite(cons.cost[0, 2])  # turned by 180 degrees they face the same way


def test_facing_direction_is_horizontal_towards_the_camera():
    v = np.array([[-1.0, -1.0, 0.0], [1.0, 1.0, 1.0]])  # bbox centre (0, 0, 0.5)
    eye = np.array([3.0, 4.0, 10.0])
    R, t = look_at(eye, np.array([0.0, 0.0, 0.5]))
    cam = Camera(np.array([[100.0, 0, 50], [0, 100.0, 50], [0, 0, 1]]), R, t, 100, 100)
    np.testing.assert_allclose(facing_direction(v, cam), [0.6, 0.8, 0.0], atol=1e-9)


def test_settings_and_inputs_are_checked():
    with pytest.raises(ValueError, match="min_points"):
        SeenSideSettings(points=100, min_points=200)
    with pytest.raises(ValueError, match="iterations"):
        SeenSideSettings(iterations=0)
    with pytest.raises(ValueError, match="facing"):
        seen_side_consensus([np.zeros((10, 3))], [])


# ------------------------------------------------------------------ decision
def vote(k: int, tally, order: int = 1) -> YawVote:
    return YawVote(correction=k, tally=np.asarray(tally, float), margin=1.0, tie_broken=False,
                   view_azimuths=np.arange(8) * 45.0, estimated=np.zeros(8),
                   view_votes=np.zeros(8, int), weights=np.ones(8), instance_order=order)


@pytest.mark.parametrize("k_vote, tally, cost, want, rule", [
    (1, [1, 6, 0, 1], [0.3, 0.1, 0.3, 0.2], 1, "agree"),            # both see a 90-degree error
    (3, [2, 0, 0, 6], [0.1, 0.3, 0.2, 0.3], 0, "disagree"),         # 270 vs 0: keep the frame
    (2, [3, 0, 5, 0], [0.1, 0.3, 0.2, 0.3], 0, "pair0"),            # 180 needs both cues
    (2, [0, 0, 8, 0], [0.3, 0.4, 0.1, 0.4], 2, "agree"),            # ... and gets it with both
    (2, [3, 0, 5, 0], [0.3, 0.4, 0.1, 0.4], 0, "pair0"),            # ... and a lead of 4 views
    (1, [0, 7, 0, 1], [0.3, 0.2, 0.3, 0.1], 1, "twin_vote"),        # the vote leads by 6 views
    (1, [0, 5, 0, 3], [0.3, 0.2, 0.3, 0.1], 3, "twin_seen"),        # lead 2 < 4: the seen cost
    (1, [0, 5, 0, 3], [np.nan] * 4, 1, "vote"),                     # no consensus: the vote
])
def test_seen_side_decision_rules(k_vote, tally, cost, want, rule):
    out = seen_side_decision(vote(k_vote, tally), np.array(cost), twin_margin=4.0)
    assert (out.correction, out.rule, out.vote_correction) == (want, rule, k_vote)
    d = out.to_dict()
    assert d["rule"] == rule and d["vote_correction"] == k_vote and len(d["seen_cost"]) == 4


def test_seen_side_decision_never_turns_a_four_fold_mesh():
    out = seen_side_decision(vote(0, [2, 2, 2, 2], order=4), np.array([0.3, 0.1, 0.3, 0.3]))
    assert (out.correction, out.rule) == (0, "symmetric")


def test_seen_side_decision_leaves_a_two_fold_mesh_to_its_pair_vote():
    """A rectangular table's 90-degree error, seen by the summed twin tallies, is undone
    even where the consensus prefers 0 (an oracle table did exactly this)."""
    out = seen_side_decision(vote(1, [1, 3, 1, 3], order=2), np.array([0.086, 0.119, 0.145, 0.119]))
    assert (out.correction, out.rule) == (1, "vote")

"""Yaw vote: pure tally logic, sign convention with an oracle estimator, symmetry handling."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from geocorr.reconstruct.orientation import OrientationEstimate, OrientationEstimator
from geocorr.reconstruct.template import (
    TemplateOrientationEstimator,
    TemplateSettings,
    plurality_class,
    select_reference,
)
from geocorr.reconstruct.views import ViewSettings, render_view, rotation_z
from geocorr.reconstruct.yaw_vote import (
    VoteSettings,
    apply_yaw_correction,
    canonicalize_yaw,
    correction_for,
    vote_yaw,
)

PSI = np.arange(8) * 45.0


def toy_car(length=2.0, seed=None):
    """A body with a cabin set back and a low nose: front (+X) differs from back."""
    rng = np.random.default_rng(seed)
    j = (lambda: 1.0 + 0.08 * rng.standard_normal()) if seed is not None else (lambda: 1.0)
    body = trimesh.creation.box([length * j(), 0.9 * j(), 0.4 * j()])
    body.apply_translation([0, 0, 0.2])
    cabin = trimesh.creation.box([0.8 * j(), 0.8 * j(), 0.4 * j()])
    cabin.apply_translation([-0.35 * length / 2, 0, 0.6])
    nose = trimesh.creation.box([0.3, 0.5, 0.15])
    nose.apply_translation([length / 2 + 0.15, 0, 0.1])
    m = trimesh.util.concatenate([body, cabin, nose])
    return np.asarray(m.vertices), np.asarray(m.faces)


def test_correction_for_is_circular():
    assert correction_for(0, 0) == 0
    assert correction_for(45, 130) == 1
    assert correction_for(315, 40) == 1  # 40 - 315 = -275 = 85 (mod 360)
    assert correction_for(90, 0) == 3
    assert correction_for(0, 224) == 2 and correction_for(0, 226) == 3


def test_vote_majority_and_margin():
    est = [OrientationEstimate((p + 180) % 360) for p in PSI]
    est[0] = OrientationEstimate(10.0)  # one outlier votes 0
    v = vote_yaw(PSI, est)
    assert v.correction == 2 and v.margin == 6 and not v.tie_broken
    assert list(v.tally) == [1, 0, 7, 0]


def test_vote_tie_broken_by_confidence_then_smallest_k():
    est = ([OrientationEstimate((p + 90) % 360, confidence=0.9) for p in PSI[:4]]
           + [OrientationEstimate((p + 270) % 360, confidence=0.2) for p in PSI[4:]])
    v = vote_yaw(PSI, est)
    assert v.correction == 1 and v.tie_broken and v.margin == 0
    est = ([OrientationEstimate((p + 90) % 360) for p in PSI[:4]]
           + [OrientationEstimate((p + 270) % 360) for p in PSI[4:]])
    assert vote_yaw(PSI, est).correction == 1  # equal confidence -> smaller k
    empty = vote_yaw(PSI, [OrientationEstimate(0.0, symmetry=0)] * 8)
    assert empty.correction == 0 and empty.margin == 0 and (empty.view_votes == -1).all()


def test_vote_symmetry_skip_and_downweight():
    good = [OrientationEstimate((p + 90) % 360, symmetry=1) for p in PSI[:3]]
    sym = [OrientationEstimate((p + 270) % 360, symmetry=2) for p in PSI[3:]]
    v = vote_yaw(PSI, good + sym, symmetric_weight=0.0)
    assert v.correction == 1 and list(v.view_votes[3:]) == [-1] * 5
    no_front = [OrientationEstimate((p + 270) % 360, symmetry=0) for p in PSI[3:]]
    v = vote_yaw(PSI, good + no_front, symmetric_weight=1.0)  # order 0 is always skipped
    assert list(v.tally) == [0, 3, 0, 0]


def test_vote_symmetry_weights_exact():
    good = [OrientationEstimate((p + 90) % 360, symmetry=1) for p in PSI[:3]]
    sym = [OrientationEstimate((p + 270) % 360, symmetry=4) for p in PSI[3:]]
    # five order-4 votes of weight 0.5, each split 4 ways: 0.625 per correction
    v = vote_yaw(PSI, good + sym, symmetric_weight=0.5)
    assert list(v.tally) == [0.625, 3.625, 0.625, 0.625] and v.correction == 1
    assert list(v.view_votes[3:]) == [3] * 5 and list(v.weights) == [1] * 3 + [0.5] * 5
    with pytest.raises(ValueError, match="estimates"):
        vote_yaw(PSI, good)


def test_vote_order2_splits_over_twins_and_keeps_quarter_turns():
    # order-2 estimates all say "correction 3 (or 1)": the vote rules out 0/2, cannot
    # tell 1 from 3, and takes the smaller representative
    sym = [OrientationEstimate((p + 270) % 360, symmetry=2) for p in PSI]
    v = vote_yaw(PSI, sym)
    assert list(v.tally) == [0, 4, 0, 4] and v.correction == 1 and v.tie_broken
    assert v.margin == 0
    # one clear-front view among them decides between the twins
    v = vote_yaw(PSI, sym[:7] + [OrientationEstimate((PSI[7] + 270) % 360, symmetry=1)])
    assert list(v.tally) == [0, 3.5, 0, 4.5] and v.correction == 3


def test_noisy_estimator_still_wins():
    rng = np.random.default_rng(0)
    wins = 0
    for _ in range(50):
        est = [OrientationEstimate((p - 270 + rng.normal(0, 25)) % 360) for p in PSI]
        wins += vote_yaw(PSI, est).correction == 1  # theta = 270 -> correction 90
    assert wins >= 48


class _LookupOracle:
    """Knows the true canonical mesh: answers by rendering it at every degree."""

    name = "oracle"

    def __init__(self, vertices, faces, views):
        self.inner = TemplateOrientationEstimator(vertices, faces,
                                                  TemplateSettings(num_azimuths=72, views=views))

    def estimate(self, image):
        return self.inner.estimate(image)


@pytest.mark.parametrize("k_true", [0, 1, 2, 3])
def test_vote_recovers_known_yaw_sign(k_true):
    v, f = toy_car()
    views = ViewSettings(size=64)
    oracle = _LookupOracle(v, f, views)
    assert isinstance(oracle, OrientationEstimator)
    yawed = v @ rotation_z(90.0 * k_true).T  # mesh rotated by +k*90 about Z
    vote = canonicalize_yaw(yawed, f, oracle, VoteSettings(views=views))
    assert vote.correction == (-k_true) % 4
    assert vote.margin >= 6
    R = np.eye(3)
    fixed, R2 = apply_yaw_correction(yawed, R, vote.correction)
    np.testing.assert_allclose(fixed, v, atol=1e-9)
    # the updated camera rotation renders the corrected mesh exactly like before
    np.testing.assert_allclose(fixed @ R2.T, yawed @ R.T, atol=1e-9)


def test_render_view_azimuth_convention():
    # At azimuth 90 the camera is on +Y (object's left): the front (+X nose) points to
    # image-left, so the left half of the image holds the low nose.
    v, f = toy_car()
    img = render_view(v, f, 90.0, ViewSettings(size=64, elevation_deg=0.0))
    fg = np.any(img < 250, axis=2)
    cols = np.flatnonzero(fg.any(0))
    # cabin sits towards the back (+image right at azimuth 90): top rows occupied on the right
    top_rows = fg[: fg.shape[0] // 2]
    top_cols = np.flatnonzero(top_rows.any(0))
    assert top_cols.mean() > cols.mean()


def test_select_reference_majority_canonical():
    rng = np.random.default_rng(3)
    meshes, truth = [], []
    for i in range(7):
        v, f = toy_car(length=2.0 + 0.2 * rng.standard_normal(), seed=i)
        k = [0, 0, 0, 0, 1, 2, 0][i]
        meshes.append((v @ rotation_z(90.0 * k).T * (1 + i * 0.1), f))
        truth.append((-k) % 4)
    choice = select_reference(meshes, TemplateSettings(points=300))
    assert list(choice.direct_corrections) == truth
    assert choice.cost.shape == (7, 7)


def test_select_reference_flipped_medoid_comes_out_canonical():
    # the medoid (the un-jittered mean shape) is the one mesh turned by 180 degrees,
    # the plurality of the others is canonical -> the reference is turned back
    ks = [2, 0, 0, 0, 0, 1, 2, 3]
    meshes = []
    for i, k in enumerate(ks):
        v, f = toy_car(seed=None if i == 0 else 10 + i)
        meshes.append((v @ rotation_z(90.0 * k).T * (1 + 0.1 * i) + i, f))
    choice = select_reference(meshes, TemplateSettings(points=300))
    assert choice.index == 0 and choice.reference_correction == 2
    assert list(choice.direct_corrections) == [(-k) % 4 for k in ks]
    assert list(choice.counts) == [2, 1, 4, 1] and choice.margin == 2
    assert choice.symmetry == 1 and not choice.tie_broken
    assert choice.to_dict()["counts"] == [2, 1, 4, 1]


def test_plurality_tie_rule():
    assert plurality_class([3, 1, 1, 1]) == (0, 2, False)
    # 0 and 1 tie: class 1's 180-degree twin (3) holds more meshes than class 0's (2)
    assert plurality_class([3, 3, 0, 2]) == (1, 0, True)
    # full tie, equal twins: the medoid's own class, then the smallest
    assert plurality_class([2, 2, 2, 2]) == (0, 0, True)
    assert plurality_class([2, 2, 2, 2], own=3) == (3, 0, True)
    assert plurality_class([1, 4]) == (1, 3, False)
    with pytest.raises(ValueError, match="classes"):
        plurality_class([1, 2, 3])


def toy_table(seed):
    """Top + four legs: symmetric under 180 degrees by construction."""
    rng = np.random.default_rng(seed)
    lx, ly, h = rng.uniform(1.2, 2.0), rng.uniform(0.6, 1.0), rng.uniform(0.4, 0.8)
    parts = [trimesh.creation.box([lx, ly, 0.05])]
    parts[0].apply_translation([0, 0, h])
    for sx in (-1, 1):
        for sy in (-1, 1):
            leg = trimesh.creation.box([0.06, 0.06, h])
            leg.apply_translation([sx * (lx / 2 - 0.1), sy * (ly / 2 - 0.1), h / 2])
            parts.append(leg)
    m = trimesh.util.concatenate(parts)
    return np.asarray(m.vertices), np.asarray(m.faces)


def test_select_reference_detects_yaw_symmetry():
    ks = [0, 2, 1, 0, 2, 3]
    tables = [(toy_table(i)[0] @ rotation_z(90.0 * k).T, toy_table(i)[1])
              for i, k in enumerate(ks)]
    choice = select_reference(tables, TemplateSettings(points=300))
    # every table is 2-fold on its own (per instance, not per category)
    assert choice.symmetry == 2 and list(choice.orders) == [2] * 6
    assert all(s.asymmetry[1] < 0.05 < s.asymmetry[0] for s in choice.instances)
    # corrections are right modulo 180 degrees
    assert all((d + k) % 2 == 0 for d, k in zip(choice.direct_corrections, ks, strict=True))
    cars = [(toy_car(seed=i)[0] @ rotation_z(90.0 * k).T, toy_car(seed=i)[1])
            for i, k in enumerate(ks)]
    assert select_reference(cars, TemplateSettings(points=300)).symmetry == 1
    est = TemplateOrientationEstimator(*tables[0], TemplateSettings(num_azimuths=8,
                                                                    views=ViewSettings(size=32)),
                                       symmetry=2)
    assert est.estimate(render_view(*tables[0], 0.0, ViewSettings(size=32))).symmetry == 2
    with pytest.raises(ValueError, match="symmetry"):
        TemplateOrientationEstimator(*tables[0], symmetry=3)

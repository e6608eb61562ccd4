"""Yaw vote: pure tally logic, sign convention with an oracle estimator, symmetry handling."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from geocorr.reconstruct.orientation import OrientationEstimate, OrientationEstimator
from geocorr.reconstruct.template import (
    TemplateOrientationEstimator,
    TemplateSettings,
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
    v = vote_yaw(PSI, good + sym, symmetric_weight=0.5)
    assert list(v.tally) == [0, 3, 0, 2.5] and v.correction == 1
    v = vote_yaw(PSI, good + sym, symmetric_weight=1.0)
    assert v.correction == 3
    with pytest.raises(ValueError, match="estimates"):
        vote_yaw(PSI, good)


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

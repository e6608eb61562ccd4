"""Per-instance canonicalisation: symmetry order of one mesh, quarter turns that respect it,
continuous (yaw + tilt) alignment to the category reference, the pool's average frame."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from geocorr.reconstruct.canonical import (
    CanonSettings,
    align_to_reference,
    centred,
    instance_symmetry,
    pool_frame,
    rotation_angle_deg,
    rotation_from_rotvec,
    surface_points,
)
from geocorr.reconstruct.orientation import OrientationEstimate
from geocorr.reconstruct.template import (
    TemplateOrientationEstimator,
    TemplateSettings,
    select_reference,
)
from geocorr.reconstruct.views import ViewSettings, rotation_z
from geocorr.reconstruct.yaw_vote import VoteSettings, canonicalize_yaw, vote_yaw

PSI = np.arange(8) * 45.0


def table(lx: float, ly: float, h: float = 0.7, leg: float = 0.06):
    """Box top + four legs: 2-fold symmetric about Z, 4-fold when ``lx == ly``."""
    top = trimesh.creation.box([lx, ly, 0.05])
    top.apply_translation([0, 0, h])
    parts = [top]
    for sx in (-1, 1):
        for sy in (-1, 1):
            b = trimesh.creation.box([leg, leg, h])
            b.apply_translation([sx * (lx / 2 - 0.1), sy * (ly / 2 - 0.1), h / 2])
            parts.append(b)
    m = trimesh.util.concatenate(parts)
    return np.asarray(m.vertices), np.asarray(m.faces)


def car(length: float = 2.0):
    """Body, a cabin set back, a low nose: no yaw symmetry."""
    body = trimesh.creation.box([length, 0.9, 0.4])
    body.apply_translation([0, 0, 0.2])
    cabin = trimesh.creation.box([0.8, 0.8, 0.4])
    cabin.apply_translation([-0.35 * length / 2, 0, 0.6])
    nose = trimesh.creation.box([0.3, 0.5, 0.15])
    nose.apply_translation([length / 2 + 0.15, 0, 0.1])
    m = trimesh.util.concatenate([body, cabin, nose])
    return np.asarray(m.vertices), np.asarray(m.faces)


def turned(mesh, deg):
    v, f = mesh
    return v @ rotation_z(deg).T, f


# ------------------------------------------------------------------ symmetry
def test_instance_symmetry_orders():
    assert instance_symmetry(*table(1.6, 0.9)).order == 2  # rectangular
    assert instance_symmetry(*table(1.0, 1.0)).order == 4  # square
    assert instance_symmetry(*table(1.1, 1.0)).order == 2  # 10 % longer: still visible
    assert instance_symmetry(*car()).order == 1
    cyl = trimesh.creation.cylinder(radius=0.5, height=0.3, sections=64)
    assert instance_symmetry(cyl.vertices, cyl.faces).order == 4  # no yaw at all
    # invariant to the mesh's own yaw, scale and position
    s = instance_symmetry(*turned(table(1.6, 0.9), 37.0))
    assert s.order == 2 and s.asymmetry[1] < 0.05 < s.asymmetry[0]
    v, f = car()
    assert instance_symmetry(3.0 * v + 5.0, f).order == 1
    with pytest.raises(ValueError, match="symmetry_ratio"):
        CanonSettings(symmetry_ratio=1.5)


@pytest.mark.parametrize("rotvec", [(6.0, 0.0, 0.0), (0.0, -5.0, 20.0), (4.0, 3.0, 0.0)])
def test_tilted_table_keeps_its_symmetry_and_its_axis_untilts_it(rotvec):
    # about Z itself a table tilted by a few degrees is not symmetric (order 1, as the
    # benchmark's tables were with 5 degrees of injected tilt); about its own axis it is
    v, f = table(1.6, 0.9)
    R = rotation_from_rotvec(rotvec)
    s = instance_symmetry(v @ R.T, f)
    assert s.order == 2
    assert instance_symmetry(v @ R.T, f, CanonSettings(axis_tilt_deg=0.0)).order == 1
    U = s.untilt() @ R  # what is left after untilting: a pure yaw
    assert np.degrees(np.arccos(min(1.0, U[2, 2]))) < 1.0
    assert s.to_dict()["axis_deg"] == pytest.approx(list(s.axis_deg))


# ------------------------------------------------------------------ the vote
def test_vote_order4_never_turns_and_order2_takes_the_pair_then_a_clear_twin():
    est = [OrientationEstimate((p + 90) % 360) for p in PSI]  # every view says k = 1
    assert vote_yaw(PSI, est).correction == 1
    v4 = vote_yaw(PSI, est, instance_order=4)
    assert v4.correction == 0 and v4.margin == 0 and v4.instance_order == 4
    # order 2: a unanimous vote for 3 is clear evidence against its twin 1
    est3 = [OrientationEstimate((p + 270) % 360) for p in PSI]
    assert vote_yaw(PSI, est3, instance_order=2).correction == 3
    # 5 against 3 for the twins is below the twin margin (4): the smaller rotation stays
    mix = est3[:5] + [OrientationEstimate((p + 90) % 360) for p in PSI[5:]]
    v2 = vote_yaw(PSI, mix, instance_order=2)
    assert v2.correction == 1 and list(v2.tally) == [0, 3, 0, 5] and v2.margin == 8
    assert vote_yaw(PSI, mix, instance_order=2, twin_margin=2).correction == 3
    # a 90-degree error is still undone for order 2 (pair {1, 3} against {0, 2})
    pair = [OrientationEstimate((p + 90) % 360) for p in PSI[:3]] + \
        [OrientationEstimate((p + 270) % 360) for p in PSI[3:6]] + \
        [OrientationEstimate(p) for p in PSI[6:]]
    assert vote_yaw(PSI, pair, instance_order=2).correction == 1
    assert vote_yaw(PSI, pair).correction in (1, 3)
    with pytest.raises(ValueError, match="instance_order"):
        vote_yaw(PSI, est, instance_order=3)


VIEWS = ViewSettings(size=64)


@pytest.fixture(scope="module")
def rect_estimator():
    return TemplateOrientationEstimator(*table(1.6, 0.9), TemplateSettings(num_azimuths=36,
                                                                          views=VIEWS))


@pytest.mark.parametrize("k_err", [1, 3])
def test_rectangular_table_90_degree_error_is_undone(rect_estimator, k_err):
    mesh = turned(table(1.5, 0.85), 90.0 * k_err)
    order = instance_symmetry(*mesh).order
    assert order == 2
    vote = canonicalize_yaw(*mesh, rect_estimator, VoteSettings(views=VIEWS), order)
    # right modulo the table's own 180-degree symmetry
    assert (vote.correction + k_err) % 2 == 0


def test_two_fold_table_at_180_is_left_alone(rect_estimator):
    mesh = turned(table(1.5, 0.85), 180.0)
    vote = canonicalize_yaw(*mesh, rect_estimator, VoteSettings(views=VIEWS),
                            instance_symmetry(*mesh).order)
    assert vote.correction == 0  # the same shape: not turned on noise


def test_square_table_is_not_turned(rect_estimator):
    for k_err in (1, 2, 3):
        mesh = turned(table(0.9, 0.9), 90.0 * k_err)
        order = instance_symmetry(*mesh).order
        assert order == 4
        vote = canonicalize_yaw(*mesh, rect_estimator, VoteSettings(views=VIEWS), order)
        assert vote.correction == 0


def test_mixed_category_per_instance_not_per_category():
    # the case: rectangular and square tables in one category. The per-category
    # rule found these 7 jointly 4-fold (median self-Chamfer under 90 degrees) and kept
    # the rectangular table's 90-degree error (direct corrections all 0)
    rect = [table(1.6, 0.9), table(1.4, 0.8), table(1.8, 1.0)]
    square = [table(1.0, 1.0), table(0.8, 0.8), table(1.2, 1.2), table(0.9, 0.9)]
    ks = [0, 1, 0, 1, 3, 0, 2]
    meshes = [turned(m, 90.0 * k) for m, k in zip(rect + square, ks, strict=True)]
    choice = select_reference(meshes, TemplateSettings(points=300),
                              CanonSettings(align=False))
    assert list(choice.orders) == [2, 2, 2, 4, 4, 4, 4]
    assert choice.index in (0, 1, 2) and choice.symmetry == 2  # a rectangular reference
    # the rectangular table turned by 90 degrees is corrected (modulo 180), squares stay
    d = choice.direct_corrections
    assert (d[1] + ks[1]) % 2 == 0 and d[0] % 2 == 0 and d[2] % 2 == 0
    assert list(d[3:]) == [0, 0, 0, 0]
    assert sum(choice.counts) == 3  # the squares' arbitrary classes are not counted
    assert choice.to_dict()["orders"] == [2, 2, 2, 4, 4, 4, 4]


# ------------------------------------------------------------- continuous step
@pytest.mark.parametrize("rotvec", [(0.0, 0.0, 12.0), (4.0, 0.0, -20.0), (0.0, -3.0, 33.0)])
def test_alignment_recovers_a_known_small_rotation(rotvec):
    v, f = car()
    ref = centred(surface_points(v, f, 400, seed=0))
    R = rotation_from_rotvec(rotvec)
    pts = centred(surface_points(v @ R.T, f, 400, seed=7))  # other samples, same shape
    a = align_to_reference(pts, ref)
    assert rotation_angle_deg(a.rotation @ R) < 1.5  # A undoes R
    assert a.residual < a.residual_before and a.confidence > 0.1
    assert a.to_dict()["yaw_deg"] == pytest.approx(-rotvec[2], abs=1.5)
    off = align_to_reference(pts, ref, CanonSettings(align=False))
    assert off.angle_deg == 0 and off.residual == off.residual_before


def test_alignment_that_explains_nothing_is_not_applied():
    v, f = car()
    ref = centred(surface_points(v, f, 400, seed=0))
    same = centred(surface_points(v, f, 400, seed=7))  # the exact frame, other samples
    a = align_to_reference(same, ref)
    assert not a.applied and a.angle_deg == 0 and a.residual == a.residual_before
    forced = align_to_reference(same, ref, CanonSettings(min_gain=0.0))
    assert forced.applied and forced.residual < forced.residual_before
    off = centred(surface_points(v @ rotation_z(10.0).T, f, 400, seed=7))
    assert align_to_reference(off, ref).applied


def test_alignment_of_a_square_table_stays_within_the_quarter_cell():
    # a 4-fold shape: any yaw within +-45 degrees is matched to the nearest axis
    v, f = table(1.0, 1.0)
    ref = centred(surface_points(*table(0.8, 0.8), 400, seed=0))
    for yaw in (-30.0, 20.0, 44.0):
        pts = centred(surface_points(v @ rotation_z(yaw).T, f, 400, seed=3))
        a = align_to_reference(pts, ref)
        assert abs(a.rotvec_deg[2]) <= 45.0 + 1e-9
        resid = (a.rotvec_deg[2] + yaw + 45.0) % 90.0 - 45.0
        assert abs(resid) < 2.0


def test_pool_frame_takes_the_median_rotation():
    # the reference is off by +10 degrees of yaw, the others by -6, 0, 4, 8, -2: the
    # alignments to it are 16, 10, 6, 2, 12 (and 0 for itself); their median, 8, is the
    # reference's own error against the pool's median frame (+2)
    v, f = car()
    yaws = [10.0, -6.0, 0.0, 4.0, 8.0, -2.0]
    pts = [centred(surface_points(v @ rotation_z(y).T, f, 400, seed=i))
           for i, y in enumerate(yaws)]
    M, rv = pool_frame(pts, 0, CanonSettings(min_gain=0.0))
    np.testing.assert_allclose(rv[1:, 2], [16, 10, 6, 2, 12], atol=1.5)
    assert rotation_angle_deg(M @ rotation_z(10.0) @ rotation_z(2.0).T) < 1.5

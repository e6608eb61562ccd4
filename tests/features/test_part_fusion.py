"""Part fusion in one place: the stage-1 confidence rule and the fused similarity it gives."""

import numpy as np
import pytest
import trimesh

from geocorr.features.base import FeatureMap
from geocorr.features.part_confidence import (
    ConfidenceSettings,
    render_iou,
    stage1_confidence,
)
from geocorr.features.part_fusion import PartFusionSettings, fuse_part, part_share
from geocorr.geometry.camera import Camera, look_at
from geocorr.geometry.image_transform import resize_and_pad
from geocorr.geometry.raster import rasterize

W = H = 64


def _record(margin=8.0, tally=(8.0, 0.0, 0.0, 0.0), conf=0.5, residual=0.05, order=1,
            failed=False):
    return {"margin": margin, "yaw": {"tally": list(tally)}, "yaw_symmetry": order,
            "canonical": {"confidence": conf, "residual": residual},
            "refine": {"failed": failed}, "failed": failed}


def test_perfect_confidence_is_one_and_missing_signals_count_as_one():
    assert stage1_confidence(1.0, _record()).value == 1.0
    c = stage1_confidence(0.95)  # no record (a user's mesh): only the IoU is known
    assert (c.yaw, c.canonical, c.residual, c.symmetry, c.value) == (1.0, 1.0, 1.0, 1.0, 1.0)
    old = {"margin": 8.0, "yaw": {"tally": [8, 0, 0, 0]}}  # record without a canonical step
    assert stage1_confidence(0.95, old).value == 1.0
    assert stage1_confidence(0.95, _record(failed=True)).value == 0.0
    with pytest.raises(ValueError, match="iou"):
        stage1_confidence(1.5)


@pytest.mark.parametrize("signal, values, increasing", [
    ("iou", [0.3, 0.5, 0.6, 0.7, 0.8, 0.85, 0.95], True),
    ("margin", [0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0], True),
    ("conf", [0.0, 0.05, 0.1, 0.2, 0.3, 0.6], True),
    ("residual", [0.0, 0.1, 0.2, 0.3, 0.45, 0.6, 1.0], False),
    ("order", [1, 2, 4], False),
])
def test_confidence_is_monotone_in_each_signal(signal, values, increasing):
    def value(x):
        if signal == "iou":
            return stage1_confidence(x, _record()).value
        return stage1_confidence(0.95, _record(**{signal: x})).value

    v = np.array([value(x) for x in values])
    d = np.diff(v) if increasing else -np.diff(v)
    assert (d >= 0).all() and (d > 0).any(), v
    assert v.max() == 1.0 and v.min() < 0.5


def test_confidence_factors_by_hand():
    s = ConfidenceSettings()
    c = stage1_confidence(0.675, _record(margin=2.0, conf=0.15, residual=0.375, order=2), s)
    # fit (0.675-0.5)/(0.85-0.5) = 0.5; yaw (2/8)/0.5 = 0.5; canonical 0.15/0.3 = 0.5;
    # residual 1 - (0.375-0.15)/(0.6-0.15) = 0.5; symmetry 1/2
    assert (c.fit, c.yaw, c.canonical, c.residual, c.symmetry) == pytest.approx((0.5,) * 5)
    assert c.value == pytest.approx(0.5 ** 5)
    assert part_share(c, PartFusionSettings(part_weight=0.8)) == pytest.approx(0.8 * 0.5 ** 5)
    assert part_share(None, PartFusionSettings(part_weight=0.8)) == 0.8


def _scene(offset_px: float = 0.0):
    """An ellipsoid seen by a camera; its mask, shifted by ``offset_px`` pixels when asked."""
    mesh = trimesh.creation.icosphere(subdivisions=2)
    v = np.asarray(mesh.vertices) * np.array([1.4, 0.8, 0.6])
    f = np.asarray(mesh.faces)
    R, t = look_at(np.array([3.0, 1.0, 1.0]), np.zeros(3))
    K = np.array([[1.2 * H, 0, (W - 1) / 2], [0, 1.2 * H, (H - 1) / 2], [0, 0, 1.0]])
    cam = Camera(K, R, t, W, H)
    mask = rasterize(v, f, cam).mask
    if offset_px:
        mask = np.roll(mask, int(offset_px), axis=1)
    return v, f, cam, mask


def _fmap(seed: int, c: int = 8, grid: int = 16) -> FeatureMap:
    x = np.random.default_rng(seed).normal(size=(c, grid, grid)).astype(np.float32)
    return FeatureMap(x, resize_and_pad(W, H, grid * 4), "xfeat")


def test_render_iou_of_the_own_silhouette_is_one_and_falls_with_a_shift():
    v, f, cam, mask = _scene()
    assert render_iou(v, f, cam, mask) == 1.0
    assert render_iou(v, f, cam, np.roll(mask, 12, axis=1)) < 0.6
    with pytest.raises(ValueError, match="mask has shape"):
        render_iou(v, f, cam, mask[:-1])


def test_perfect_confidence_gives_the_constant_weight_fusion():
    v, f, cam, mask = _scene()
    fm = _fmap(0)
    gamma = 0.7
    conf = fuse_part(fm, v, f, cam, mask, PartFusionSettings(part_weight=gamma),
                     record=_record())
    const = fuse_part(fm, v, f, cam, mask, PartFusionSettings(part_weight=gamma,
                                                              confidence=None))
    assert conf.confidence.value == 1.0 and conf.share == gamma and const.share == gamma
    np.testing.assert_array_equal(conf.fused.features, const.fused.features)
    # an object cell: fused dot = (1 - gamma) cos_2D + gamma cos_part
    on = np.flatnonzero(np.linalg.norm(conf.part.features, axis=0).ravel() > 0)
    i, j = on[0], on[len(on) // 2]
    x2, xp = fm.features.reshape(fm.features.shape[0], -1), conf.part.features.reshape(
        conf.part.features.shape[0], -1)

    def cos(x, a, b):
        return x[:, a] @ x[:, b] / np.linalg.norm(x[:, a]) / np.linalg.norm(x[:, b])

    u = conf.fused.features.reshape(conf.fused.features.shape[0], -1)
    assert u[:, i] @ u[:, j] == pytest.approx(
        (1 - gamma) * cos(x2, i, j) + gamma * cos(xp, i, j), abs=1e-5)


def test_a_bad_reconstruction_gets_a_low_weight():
    v, f, cam, _ = _scene()
    _, _, _, shifted = _scene(offset_px=14)  # the mesh sits beside the mask
    fm = _fmap(1)
    good = fuse_part(fm, v, f, cam, rasterize(v, f, cam).mask, record=_record())
    bad = fuse_part(fm, v, f, cam, shifted, record=_record())
    assert good.share == PartFusionSettings().part_weight
    assert bad.confidence.iou < 0.5 and bad.share == 0.0
    # same channels as any other image, the 2D block at full weight, the part block zero
    assert bad.fused.features.shape == good.fused.features.shape
    c2 = fm.features.shape[0]
    np.testing.assert_allclose(np.linalg.norm(bad.fused.features[:c2], axis=0), 1.0, rtol=1e-5)
    assert not bad.fused.features[c2:].any()
    # a failed yaw vote (4 against 4) or a refinement flagged as failed: low weight too
    tie = fuse_part(fm, v, f, cam, rasterize(v, f, cam).mask,
                    record=_record(margin=0.0, tally=(4, 4, 0, 0)))
    assert tie.share == 0.0


def test_pair_similarity_counts_the_part_as_far_as_both_meshes_are_trusted():
    v, f, cam, mask = _scene()
    a = fuse_part(_fmap(2), v, f, cam, mask, record=_record())
    b = fuse_part(_fmap(3), v, f, cam, mask, record=_record(conf=0.075))  # canonical factor 1/4
    sa, sb = a.share, b.share
    assert sb == pytest.approx(sa / 4)
    c2 = a.fused.features.shape[0] - a.part.features.shape[0]
    ua = a.fused.features.reshape(a.fused.features.shape[0], -1)
    ub = b.fused.features.reshape(b.fused.features.shape[0], -1)
    i = int(np.flatnonzero(np.linalg.norm(a.part.features, axis=0).ravel() > 0)[3])
    d2 = ua[:c2, i] @ ub[:c2, i] / np.sqrt((1 - sa) * (1 - sb))
    dp = ua[c2:, i] @ ub[c2:, i] / np.sqrt(sa * sb)
    assert ua[:, i] @ ub[:, i] == pytest.approx(
        np.sqrt((1 - sa) * (1 - sb)) * d2 + np.sqrt(sa * sb) * dp, abs=1e-6)
    assert abs(dp) <= 1 + 1e-5 and abs(d2) <= 1 + 1e-5


def test_settings_validate():
    with pytest.raises(ValueError, match="part_weight"):
        PartFusionSettings(part_weight=1.5)
    with pytest.raises(ValueError, match="iou_min"):
        ConfidenceSettings(iou_min=0.9, iou_ok=0.8)

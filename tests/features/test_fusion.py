"""Fusion math: default weights, weights are similarity shares, zeros stay zero, resampling."""

import numpy as np
import pytest

from geocorr.features.base import FeatureMap
from geocorr.features.fusion import FusionSettings, fuse, resample, resolve_weights
from geocorr.geometry.image_transform import resize_and_pad


def _map(C, h, w, name, seed=0, tr=None):
    tr = tr or resize_and_pad(80, 60, 64)
    f = np.random.default_rng(seed).normal(size=(C, h, w)).astype(np.float32)
    return FeatureMap(f, tr, name)


def test_default_weights():
    from geocorr.features.part_fusion import PartFusionSettings

    s = FusionSettings(part_weight=1 / 6)
    assert resolve_weights(["dinov2", "sd", "partfield"], s) == pytest.approx(
        {"dinov2": 5 / 12, "sd": 5 / 12, "partfield": 1 / 6})
    assert resolve_weights(["xfeat"], s) == {"xfeat": 1.0}
    assert resolve_weights(["xfeat", "geometric"], s) == pytest.approx(
        {"xfeat": 5 / 6, "geometric": 1 / 6})
    # one default for the part weight: the fusion default is PartFusionSettings'
    gamma = PartFusionSettings().part_weight
    assert FusionSettings().part_weight == gamma
    assert resolve_weights(["xfeat", "geometric"], FusionSettings()) == pytest.approx(
        {"xfeat": 1 - gamma, "geometric": gamma})
    assert resolve_weights(["xfeat", "geometric"], FusionSettings(part_weight=0.5)) == {
        "xfeat": 0.5, "geometric": 0.5}
    with pytest.raises(ValueError, match="geometric"):
        resolve_weights(["xfeat", "geometric"], FusionSettings(weights={"xfeat": 1.0}))
    with pytest.raises(ValueError, match=">= 0"):
        FusionSettings(weights={"a": -1.0})


def test_weights_are_similarity_shares_and_zeros_stay_zero():
    a = _map(6, 8, 8, "xfeat", 0)
    b = _map(3, 8, 8, "geometric", 1)
    b.features[:, 0, :] = 0.0  # a part map off the mask
    fused = fuse({"xfeat": a, "geometric": b}, FusionSettings(weights={"xfeat": 0.7,
                                                                       "geometric": 0.3}))
    assert fused.features.shape == (9, 8, 8) and fused.name == "xfeat+geometric"
    na = np.linalg.norm(fused.features[:6], axis=0)
    nb = np.linalg.norm(fused.features[6:], axis=0)
    np.testing.assert_allclose(na, np.sqrt(0.7), rtol=1e-5)
    np.testing.assert_allclose(nb[1:], np.sqrt(0.3), rtol=1e-5)
    assert not fused.features[6:, 0, :].any()
    # Direction preserved: block = sqrt(w) * x / |x|.
    x = a.features[:, 3, 4]
    np.testing.assert_allclose(fused.features[:6, 3, 4], np.sqrt(0.7) * x / np.linalg.norm(x),
                               rtol=1e-5)
    # The dot product of two fused cells is the weighted sum of the per-source cosines
    # (with weights 0.7 / 0.3, not 0.49 / 0.09 as when blocks were scaled by w).
    def cos(u, v):
        return float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))

    c2d = cos(a.features[:, 3, 4], a.features[:, 5, 6])
    cpart = cos(b.features[:, 3, 4], b.features[:, 5, 6])
    dot = float(fused.features[:, 3, 4] @ fused.features[:, 5, 6])
    assert dot == pytest.approx(0.7 * c2d + 0.3 * cpart, abs=1e-5)


def test_zero_weight_drops_the_source():
    a, b = _map(4, 8, 8, "xfeat"), _map(2, 8, 8, "geometric", 1)
    fused = fuse({"xfeat": a, "geometric": b}, FusionSettings(weights={"xfeat": 1,
                                                                       "geometric": 0}))
    assert fused.features.shape[0] == 4 and fused.name == "xfeat"


def test_resampling_onto_the_reference_grid_is_exact_for_linear_fields():
    tr = resize_and_pad(80, 60, 64)
    ref = FeatureMap(np.zeros((1, 16, 16), np.float32), tr, "ref")
    # A coarse map whose features are linear in original-image (u, v): bilinear sampling is
    # exact inside the grid's convex hull.
    coarse = FeatureMap(np.zeros((2, 8, 8), np.float32), tr, "coarse")
    uv = coarse.cell_centers()
    coarse.features[0] = 2.0 * uv[..., 0] + 1.0
    coarse.features[1] = -0.5 * uv[..., 1]
    out = resample(coarse, ref)
    assert out.shape == (2, 16, 16)
    c = ref.cell_centers()
    xy = coarse.uv_to_cell(c.reshape(-1, 2)).reshape(16, 16, 2)
    inside = (xy[..., 0] >= 0) & (xy[..., 0] <= 7) & (xy[..., 1] >= 0) & (xy[..., 1] <= 7)
    assert inside.sum() > 100
    np.testing.assert_allclose(out[0][inside], (2.0 * c[..., 0] + 1.0)[inside], rtol=1e-5)
    np.testing.assert_allclose(out[1][inside], (-0.5 * c[..., 1])[inside], rtol=1e-5,
                               atol=1e-5)
    # Same grid: passthrough.
    np.testing.assert_array_equal(resample(coarse, coarse), coarse.features)


def test_fuse_rejects_maps_of_different_images():
    a = _map(2, 8, 8, "xfeat")
    b = _map(2, 8, 8, "geometric", tr=resize_and_pad(81, 60, 64))
    with pytest.raises(ValueError, match="81x60"):
        fuse({"xfeat": a, "geometric": b})
    with pytest.raises(ValueError, match="at least one"):
        fuse({})

"""The pair figure: shared PCA basis, overlay placement, kept/rejected line colours, atomic PNG."""

import numpy as np
import pytest
from PIL import Image

from geocorr.features.base import FeatureMap
from geocorr.geometry.image_transform import resize_and_pad
from geocorr.matching.matches import Matches
from geocorr.report.pair_figure import feature_overlay, pca_colors, save_pair_figure


def _fm(f, W=64, H=48):
    return FeatureMap(np.asarray(f, np.float32), resize_and_pad(W, H, 64), "x")


def test_pca_basis_is_shared_and_zeros_stay_black():
    rng = np.random.default_rng(0)
    f = rng.normal(size=(6, 4, 4))
    f[:, 0, 0] = 0
    g = f[:, ::-1, :].copy()  # the same descriptors, rows flipped
    cs, ct = pca_colors([_fm(f), _fm(g)])
    assert cs.shape == (4, 4, 3) and cs.dtype == np.uint8
    np.testing.assert_array_equal(ct, cs[::-1])
    assert not cs[0, 0].any()
    # Scaling a descriptor does not change its colour (PCA of unit vectors).
    h = f.copy()
    h[:, 1, 1] *= 5
    np.testing.assert_array_equal(pca_colors([_fm(h), _fm(g)])[0], cs)


def test_overlay_places_cells_on_the_image():
    img = np.full((48, 64, 3), 100, np.uint8)
    col = np.zeros((4, 4, 3), np.uint8)
    col[1:3, :] = 255  # canvas rows 16..47 -> image rows 8..39 (image is padded by 8)
    out = feature_overlay(img, _fm(np.zeros((1, 4, 4))), col, alpha=1.0)
    assert out.shape == (48, 64, 3)
    assert (out[10:38] == 255).all()
    assert (out[:7] == 35).all() and (out[41:] == 35).all()  # empty cells: darkened image


def test_figure_draws_kept_green_and_rejected_red(tmp_path):
    img_s = np.zeros((48, 64, 3), np.uint8)
    img_t = np.zeros((48, 64, 3), np.uint8)
    src = np.array([[10.0, 10.0], [50.0, 25.0]])
    trg = np.array([[20.0, 30.0], [5.0, 5.0]])
    z2 = np.zeros((2, 2))
    m = Matches(src, trg, src, np.ones(2, np.float32), z2, np.array([1.0, 1.0]),
                np.zeros(2, np.int64), np.zeros(2, np.int64),
                kept={"cyclic": np.array([True, False])})
    maps = {"xfeat": (_fm(np.random.default_rng(1).normal(size=(5, 4, 4))),
                      _fm(np.random.default_rng(2).normal(size=(5, 4, 4))))}
    out = save_pair_figure(tmp_path / "fig" / "pair.png", img_s, img_t, maps, m,
                           panel_height=48, title="t")
    fig = np.asarray(Image.open(out).convert("RGB"))
    assert fig.shape == (96, 128, 3)
    g = fig[10, 10]
    assert g[1] > 150 and g[0] < 100  # kept match start: green
    r = fig[25, 50]
    assert r[0] > 150 and r[1] < 100  # rejected match start: red
    assert not list((tmp_path / "fig").glob(".*tmp"))
    with pytest.raises(ValueError, match="image_s"):
        save_pair_figure(tmp_path / "x.png", img_s[..., 0], img_t, {}, None)


def test_pca_fit_cells_restrict_the_basis():
    rng = np.random.default_rng(3)
    f = rng.normal(size=(4, 4, 4))
    fit = np.zeros((4, 4), bool)
    fit[1:3, 1:3] = True
    a = pca_colors([_fm(f)], fit_cells=[fit])[0]
    # Same basis when the other cells change: colours of the fitted cells are unchanged.
    g = f.copy()
    g[:, 0, :] = rng.normal(size=(4, 4)) * 10
    b = pca_colors([_fm(g)], fit_cells=[fit])[0]
    np.testing.assert_array_equal(a[fit], b[fit])

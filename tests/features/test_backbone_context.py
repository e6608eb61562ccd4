import numpy as np
import pytest

from geocorr.features.base import FeatureMap
from geocorr.features.context import (
    ContextSettings,
    add_context,
    context_channels,
    object_cells,
)
from geocorr.geometry.image_transform import resize_and_pad


def _fmap(C=3, n=8, seed=0, width=80, height=80):
    f = np.random.default_rng(seed).normal(size=(C, n, n)).astype(np.float32)
    return FeatureMap(f, resize_and_pad(width, height, 8 * n), "t")


def _slow_masked_pool(f, cells, window):
    C, h, w = f.shape
    r = window // 2
    out = np.zeros_like(f)
    for i in range(h):
        for j in range(w):
            sel = cells[max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1]
            vals = f[:, max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1][:, sel]
            if vals.shape[1]:
                out[:, i, j] = vals.mean(axis=1)
    return out


def test_disabled_is_identity():
    fm = _fmap()
    assert add_context(fm, ContextSettings()) is fm
    assert context_channels(64, ContextSettings()) == 64


def test_layout_against_slow_reference():
    fm = _fmap(C=4, n=10, width=80, height=80)
    mask = np.zeros((80, 80), dtype=bool)
    mask[16:64, 8:48] = True  # cells rows 2..7, cols 1..5
    s = ContextSettings(enabled=True, pool_windows=(3,), pool_weight=0.5, object_weight=0.25,
                        position_weight=2.0)
    out = add_context(fm, s, mask=mask).features
    assert out.shape[0] == context_channels(4, s) == 4 * 3 + 2
    cells = object_cells(fm, mask=mask)
    assert cells.sum() == 6 * 5 and cells[2:8, 1:6].all()
    np.testing.assert_array_equal(out[:4], fm.features)
    ref = _slow_masked_pool(fm.features, cells, 3)
    n = np.linalg.norm(ref, axis=0, keepdims=True)
    ref = np.where(n > 0, 0.5 * ref / np.where(n > 0, n, 1), 0)
    np.testing.assert_allclose(out[4:8], ref, atol=1e-5)
    mean = fm.features[:, cells].mean(axis=1)
    np.testing.assert_allclose(out[8:12, 0, 0], 0.25 * mean / np.linalg.norm(mean), atol=1e-6)
    # position: box corners at (-1, -1) and (+1, +1), scaled by 2
    np.testing.assert_allclose(out[12:, 2, 1], [-2.0, -2.0], atol=1e-6)
    np.testing.assert_allclose(out[12:, 7, 5], [2.0, 2.0], atol=1e-6)


def test_bbox_and_whole_image_fallbacks():
    fm = _fmap(width=160, height=80)  # image occupies canvas rows 16..47
    whole = object_cells(fm)
    assert whole[2:6].all() and not whole[:2].any() and not whole[6:].any()
    boxed = object_cells(fm, bbox=np.array([0, 0, 79, 79]))
    assert boxed[2:6, :4].all() and not boxed[:, 4:].any()
    with pytest.raises(ValueError, match="bbox"):
        object_cells(fm, bbox=np.array([5, 5, 1, 1]))
    with pytest.raises(ValueError, match="mask must be"):
        object_cells(fm, mask=np.ones((10, 10), bool))


def test_position_separates_mirror_cells():
    """A mirror-symmetric local map: only the context tells left from right."""
    f = np.random.default_rng(1).normal(size=(3, 8, 4)).astype(np.float32)
    f = np.concatenate([f, f[:, :, ::-1]], axis=2)
    fm = FeatureMap(f, resize_and_pad(64, 64, 64), "t")
    out = add_context(fm, ContextSettings(enabled=True)).features
    assert np.allclose(f[:, 3, 1], f[:, 3, 6])
    assert not np.allclose(out[:, 3, 1], out[:, 3, 6])

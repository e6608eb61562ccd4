import numpy as np
import pytest
import torch

from geocorr.features.context import ContextSettings, context_channels
from geocorr.features.xfeat import (
    XFeatBackbone,
    XFeatSettings,
    default_xfeat_weights,
    load_xfeat_network,
)


def _image(h=192, w=256, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, size=(h // 8, w // 8, 3), dtype=np.uint8)
    return np.kron(img, np.ones((8, 8, 1), dtype=np.uint8))


@pytest.fixture(scope="module")
def backbone():
    return XFeatBackbone(XFeatSettings(grid_size=32))


def test_shape_norm_and_transform(backbone):
    img = _image()
    f = backbone.extract(img)
    assert f.shape == (64, 32, 32)
    assert f.features.dtype == np.float32
    assert f.name == "xfeat"
    np.testing.assert_allclose(np.linalg.norm(f.features, axis=0), 1.0, atol=1e-5)
    t = f.transform
    assert t.size == 256 and t.scale == pytest.approx(1.0)
    assert (t.left, t.top) == (0, 32)  # 192 rows centred on a 256 canvas


def test_perturbation_moves_the_right_cell(backbone):
    """A bright blob at image pixel (u, v) changes most the cell that covers (u, v)."""
    img = np.full((192, 256, 3), 100, dtype=np.uint8)
    base = backbone.extract(img).features
    for u, v in [(60.0, 40.0), (200.0, 150.0)]:
        pert = img.copy()
        pert[int(v) - 4 : int(v) + 4, int(u) - 4 : int(u) + 4] = 250
        f = backbone.extract(pert)
        change = np.linalg.norm(f.features - base, axis=0)
        i, j = np.unravel_index(np.argmax(change), change.shape)
        cx, cy = f.uv_to_cell(np.array([[u, v]]))[0]
        assert abs(j - cx) <= 1.0 and abs(i - cy) <= 1.0


def test_weights_load_strictly(tmp_path):
    state = torch.load(default_xfeat_weights(), weights_only=True, map_location="cpu")
    state.pop(next(iter(state)))
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(RuntimeError, match="Missing key"):
        load_xfeat_network(bad)
    with pytest.raises(FileNotFoundError, match="XFeat weights not found"):
        load_xfeat_network(tmp_path / "absent.pt")


def test_cache_key_tracks_settings_and_weights(tmp_path):
    a = XFeatBackbone()
    assert a.cache_key() != XFeatBackbone(XFeatSettings(grid_size=32)).cache_key()
    ctx = XFeatBackbone(XFeatSettings(context=ContextSettings(enabled=True)))
    assert a.cache_key() != ctx.cache_key()
    other = tmp_path / "xfeat.pt"
    other.write_bytes(default_xfeat_weights().read_bytes() + b"\0")
    assert a.cache_key() != XFeatBackbone(XFeatSettings(weights=str(other))).cache_key()


def test_context_channels_and_bad_input(backbone):
    ctx = XFeatBackbone(XFeatSettings(grid_size=32, context=ContextSettings(enabled=True)))
    img = _image()
    mask = np.zeros(img.shape[:2], dtype=bool)
    mask[40:150, 60:200] = True
    f = ctx.extract(img, mask=mask)
    assert f.shape[0] == context_channels(64, ctx.settings.context)
    np.testing.assert_allclose(f.features[:64], backbone.extract(img).features, atol=1e-6)
    with pytest.raises(ValueError, match="image must be"):
        backbone.extract(img[..., 0])
    with pytest.raises(ValueError, match="uint8"):
        backbone.extract(img.astype(np.float32))

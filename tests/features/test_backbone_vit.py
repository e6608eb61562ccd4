"""DINOv2/DINOv3 extraction path on tiny random-weight models saved with save_pretrained."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from geocorr.features.vit import IMAGENET_MEAN, IMAGENET_STD, ViTBackbone, ViTSettings  # noqa: E402

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("vit")
    torch.manual_seed(0)
    v2 = transformers.Dinov2Model(transformers.Dinov2Config(patch_size=14, image_size=56, **TINY))
    v2.save_pretrained(root / "dinov2")
    v3 = transformers.DINOv3ViTModel(transformers.DINOv3ViTConfig(
        patch_size=16, image_size=64, num_register_tokens=4, **TINY))
    v3.save_pretrained(root / "dinov3")
    return {"dinov2": (root / "dinov2", 14), "dinov3": (root / "dinov3", 16)}


def _image():
    rng = np.random.default_rng(0)
    return rng.integers(60, 200, size=(90, 150, 3), dtype=np.uint8)


@pytest.mark.parametrize("kind", ["dinov2", "dinov3"])
def test_matches_manual_forward(model_dirs, kind):
    path, p = model_dirs[kind]
    b = ViTBackbone(ViTSettings(model=str(path), image_size=10 * p, name=kind))
    img = _image()
    f = b.extract(img)
    assert f.shape == (32, 10, 10) and f.name == kind and f.transform.size == 10 * p
    # reference: the model's own forward on a hand-built canvas
    t = f.transform
    canvas = np.zeros((10 * p, 10 * p, 3), np.float32)
    h, w = t.resized_shape
    import cv2

    canvas[t.top : t.top + h, t.left : t.left + w] = cv2.resize(img, (w, h)) / 255.0
    canvas = (canvas - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    x = torch.from_numpy(canvas.transpose(2, 0, 1)[None].astype(np.float32))
    with torch.no_grad():
        tokens = b.model(pixel_values=x).last_hidden_state[0]
    skip = 1 + (4 if kind == "dinov3" else 0)
    assert tokens.shape[0] == skip + 100
    ref = tokens[skip:].reshape(10, 10, 32).permute(2, 0, 1).numpy()
    np.testing.assert_allclose(f.features, ref, atol=1e-4)


@pytest.mark.parametrize("kind", ["dinov2", "dinov3"])
def test_token_to_cell_order(model_dirs, kind):
    """Perturbing the image under one cell changes that cell the most."""
    path, p = model_dirs[kind]
    b = ViTBackbone(ViTSettings(model=str(path), image_size=10 * p))
    img = np.full((90, 150, 3), 128, np.uint8)
    base = b.extract(img).features
    centers = ViTBackbone(ViTSettings(model=str(path), image_size=10 * p)).extract(img)
    for cell in [(3, 1), (6, 8), (4, 5)]:
        u, v = np.round(centers.cell_centers()[cell]).astype(int)
        pert = img.copy()
        pert[v - 3 : v + 4, u - 3 : u + 4] = 255
        change = np.linalg.norm(b.extract(pert).features - base, axis=0)
        assert np.unravel_index(np.argmax(change), change.shape) == cell


def test_padding_is_normalised_black(model_dirs):
    path, p = model_dirs["dinov2"]
    b = ViTBackbone(ViTSettings(model=str(path), image_size=10 * p))
    x, t = b.preprocess(_image())
    assert t.top > 0 and t.left == 0
    black = (-np.array(IMAGENET_MEAN) / np.array(IMAGENET_STD)).astype(np.float32)
    np.testing.assert_allclose(x[0, :, : t.top].mean(dim=(1, 2)).numpy(), black, atol=1e-6)
    np.testing.assert_allclose(x[0, :, -t.top :].mean(dim=(1, 2)).numpy(), black, atol=1e-6)


def test_intermediate_layer_and_errors(model_dirs, tmp_path):
    path, p = model_dirs["dinov3"]
    img = _image()
    last = ViTBackbone(ViTSettings(model=str(path), image_size=10 * p)).extract(img).features
    normed = ViTBackbone(ViTSettings(model=str(path), image_size=10 * p, layer=-1,
                                     final_norm=True)).extract(img).features
    np.testing.assert_allclose(normed, last, atol=1e-5)
    raw = ViTBackbone(ViTSettings(model=str(path), image_size=10 * p, layer=1)).extract(img)
    assert raw.shape == (32, 10, 10) and not np.allclose(raw.features, last)
    with pytest.raises(ValueError, match="multiple of the patch size"):
        ViTBackbone(ViTSettings(model=str(path), image_size=10 * p + 1)).extract(img)
    with pytest.raises(ValueError, match="out of range"):
        ViTBackbone(ViTSettings(model=str(path), image_size=10 * p, layer=7)).extract(img)
    with pytest.raises(FileNotFoundError, match="not found"):
        ViTBackbone(ViTSettings(model=str(tmp_path / "absent"))).extract(img)
    with pytest.raises(FileNotFoundError, match="offline"):
        ViTBackbone(ViTSettings(model="nobody-e1/not-a-model")).extract(img)


def test_cache_key_tracks_settings(model_dirs):
    path, _ = model_dirs["dinov2"]
    k = ViTBackbone(ViTSettings(model=str(path))).cache_key()
    assert str(path.resolve()) in k and "model.safetensors" in k
    assert k != ViTBackbone(ViTSettings(model=str(path), layer=5)).cache_key()
    assert k != ViTBackbone(ViTSettings(model=str(path), image_size=420)).cache_key()


def test_bfloat16_model(model_dirs):
    path, p = model_dirs["dinov2"]
    img = _image()
    ref = ViTBackbone(ViTSettings(model=str(path), image_size=10 * p)).extract(img).features
    b = ViTBackbone(ViTSettings(model=str(path), image_size=10 * p, dtype="bfloat16"))
    f = b.extract(img)
    assert next(b.model.parameters()).dtype == torch.bfloat16
    assert f.features.dtype == np.float32
    assert np.abs(f.features - ref).max() < 0.1 * np.abs(ref).max()
    assert b.cache_key() != ViTBackbone(ViTSettings(model=str(path))).cache_key()

"""Stable Diffusion extraction path on a tiny random-weight SD directory (unet/vae/clip)."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

from geocorr.features.sd import SDBackbone, SDSettings, crop_offsets  # noqa: E402


@pytest.fixture(scope="module")
def sd_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("sd")
    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        sample_size=8, block_out_channels=(8, 16, 24, 24), layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=16, attention_head_dim=2, norm_num_groups=4)
    unet.save_pretrained(root / "unet")
    vae = diffusers.AutoencoderKL(
        block_out_channels=(8, 8, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=4)
    vae.save_pretrained(root / "vae")
    text = transformers.CLIPTextModel(transformers.CLIPTextConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=16, projection_dim=16))
    text.save_pretrained(root / "text_encoder")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    tok = transformers.CLIPTokenizer(str(root / "vocab.json"), str(root / "merges.txt"),
                                     model_max_length=16)
    tok.save_pretrained(root / "tokenizer")
    return root


def _settings(sd_dir, **kw):
    return SDSettings(model=str(sd_dir), **{"image_size": 64, "output_grid": 4, **kw})


def _image():
    return np.random.default_rng(0).integers(0, 255, (60, 100, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def loaded(sd_dir):
    b = SDBackbone(_settings(sd_dir))
    b.components()
    return b


def _reference(parts, image, prompt, size, grid, t=50):
    """The recipe written out by hand: canvas, VAE mean, noising from the betas, hooks, resize."""
    import cv2

    unet, vae, text, tok = (parts[k] for k in ("unet", "vae", "text_encoder", "tokenizer"))
    h, w = image.shape[:2]
    scale = size / max(h, w)
    rh, rw = round(h * scale), round(w * scale)
    canvas = -np.ones((size, size, 3), np.float32)
    top, left = (size - rh) // 2, (size - rw) // 2
    canvas[top : top + rh, left : left + rw] = cv2.resize(image, (rw, rh)) / 127.5 - 1.0
    x = torch.from_numpy(canvas.transpose(2, 0, 1)[None].copy())
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    acp = torch.cumprod(1 - betas, 0)[t].float()
    got = {}
    hooks = {"s3": unet.up_blocks[2].attentions[1], "s4": unet.up_blocks[1].attentions[1],
             "s5": unet.up_blocks[0].resnets[1]}
    handles = [m.register_forward_hook(lambda _m, _i, o, n=name: got.__setitem__(
        n, (o[0] if isinstance(o, tuple) else getattr(o, "sample", o))))
        for name, m in hooks.items()]
    with torch.no_grad():
        lat = vae.encode(x).latent_dist.mean * 0.18215
        noise = torch.randn(lat.shape, generator=torch.Generator().manual_seed(42))
        noisy = acp.sqrt() * lat + (1 - acp).sqrt() * noise
        ids = tok(prompt, padding="max_length", max_length=16, return_tensors="pt").input_ids
        unet(noisy, torch.tensor([t]), encoder_hidden_states=text(ids)[0])
    for h in handles:
        h.remove()
    return {n: torch.nn.functional.interpolate(v, size=(grid, grid), mode="bilinear")[0].numpy()
            for n, v in got.items()}


def test_matches_hand_written_recipe(loaded):
    b = loaded.replace(prompt="a photo of a {category}")
    layers = b.extract_layers(_image(), category="car")
    ref = _reference(b.components(), _image(), "a photo of a car", 64, 4)
    assert {n: m.shape for n, m in layers.items()} == {
        "s3": (16, 4, 4), "s4": (24, 4, 4), "s5": (24, 4, 4)}
    for n in ("s3", "s4", "s5"):
        assert layers[n].name == f"sd_{n}"
        np.testing.assert_allclose(layers[n].features, ref[n], atol=1e-4)
    full = b.extract(_image(), category="car")
    assert full.name == "sd" and full.shape == (64, 4, 4)
    groups = b.channel_groups()
    assert groups == {"s3": (0, 16), "s4": (16, 40), "s5": (40, 64)}
    np.testing.assert_allclose(full.features[16:40], layers["s4"].features)
    assert full.transform.size == 64 and full.transform.top > 0


def test_unet_stops_after_the_last_hook(loaded):
    b = loaded.replace(layers=("s5",))
    calls = []
    unet = b.components()["unet"]
    handles = [unet.up_blocks[i].register_forward_hook(lambda *a, i=i: calls.append(i))
               for i in range(4)]
    f = b.extract(_image())
    for h in handles:
        h.remove()
    assert f.shape == (24, 4, 4)
    assert calls == []  # stopped inside up_blocks[0], before it returned


def test_crops_and_ensemble(loaded):
    img = _image()
    one = loaded.extract(img).features
    same = loaded.replace(crops=True, crop_size=64, crop_stride=64).extract(img)
    np.testing.assert_allclose(same.features, one, atol=1e-5)  # a single crop == full pass
    assert crop_offsets(960, 512, 448) == [0, 448]
    assert crop_offsets(192, 128, 64) == [0, 64]
    crops = loaded.replace(image_size=128, output_grid=8, crops=True, crop_size=64,
                           crop_stride=64).extract(img)
    assert crops.shape == (64, 8, 8) and np.isfinite(crops.features).all()
    # each s3 quadrant of a 2 x 2 crop tiling is that crop's own full pass
    x = img.copy()
    tl = crops.transform
    quadrant = loaded.replace(image_size=64, output_grid=4).extract_layers(
        tl.apply_image(x)[:64, :64])["s3"].features
    np.testing.assert_allclose(crops.features[:16, :4, :4], quadrant, atol=1e-4)
    ens = loaded.replace(ensemble=2).extract(img).features
    assert ens.shape == one.shape and not np.allclose(ens, one)


def test_prompt_embeddings_file(loaded, tmp_path):
    emb = loaded.text_embedding().numpy()
    np.save(tmp_path / "emb.npy", emb[0])
    from_file = loaded.replace(prompt_embeds=str(tmp_path / "emb.npy"))
    f = from_file.extract(_image())
    np.testing.assert_allclose(f.features, loaded.extract(_image()).features, atol=1e-5)
    assert from_file.cache_key() != loaded.cache_key()
    with pytest.raises(FileNotFoundError, match="prompt_embeds"):
        loaded.replace(prompt_embeds=str(tmp_path / "none.npy")).extract(_image())


def test_errors(sd_dir, loaded, tmp_path):
    with pytest.raises(ValueError, match="needs a category"):
        loaded.replace(prompt="a {category}").extract(_image())
    with pytest.raises(ValueError, match="multiple of 64"):
        SDSettings(image_size=100)
    with pytest.raises(ValueError, match="layers"):
        SDSettings(layers=("s2",))
    with pytest.raises(FileNotFoundError, match="not found"):
        SDBackbone(SDSettings(model=str(tmp_path / "nope"))).extract(_image())
    with pytest.raises(FileNotFoundError, match="offline"):
        SDBackbone(SDSettings(model=str(tmp_path))).extract(_image())
    assert SDBackbone(_settings(sd_dir)).cache_key() != \
        SDBackbone(_settings(sd_dir, timestep=100)).cache_key()

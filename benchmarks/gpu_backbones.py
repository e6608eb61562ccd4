"""Time the real foundation-model code paths at full size, with random weights.

No weights can be downloaded in this project, so this builds each model from
its published architecture (DINOv2-B/14, DINOv3 ViT-B/16, Stable Diffusion 1.5
UNet + VAE + CLIP-L text encoder, SAM3, and the DIY-SC adapter over
DINOv2 + SD's four sources), saves it to a temporary folder and runs geocorr's
own adapters (:class:`geocorr.features.vit.ViTBackbone`,
:class:`geocorr.features.sd.SDBackbone`,
:class:`geocorr.reconstruct.segmenter.Sam3Segmenter`,
:class:`geocorr.adapter.network.Adapter`) on it — the exact code path a user
with local checkpoints runs. Random weights give the real cost, not real
features.

    python benchmarks/gpu_backbones.py --device cuda --json OUT.json
    python benchmarks/gpu_backbones.py --device cpu --tiny    # logic check, seconds

Prints one line per (model, dtype): load seconds, median extraction
milliseconds over ``--repeats`` warm runs, peak GPU memory.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def _clip_tokenizer(folder: Path, max_length: int):
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in "abcdefghijklmnopqrstuvwxyz":
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"),
                         model_max_length=max_length)


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time(fn, device: str, repeats: int) -> tuple[float, list[float]]:
    """Run ``fn`` once to warm up, then ``repeats`` times; median ms and all times."""
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times), times


def _peak_gib(device: str) -> float | None:
    import torch

    if not device.startswith("cuda"):
        return None
    peak = torch.cuda.max_memory_allocated() / 2**30
    torch.cuda.reset_peak_memory_stats()
    return round(peak, 2)


def _release(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def build_dinov2(root: Path, tiny: bool) -> Path:
    from transformers import Dinov2Config, Dinov2Model

    cfg = Dinov2Config() if not tiny else Dinov2Config(hidden_size=32, num_hidden_layers=2,
                                                      num_attention_heads=2,
                                                      intermediate_size=64)
    Dinov2Model(cfg).save_pretrained(root / "dinov2")
    return root / "dinov2"


def build_dinov3(root: Path, tiny: bool) -> Path:
    from transformers import DINOv3ViTConfig, DINOv3ViTModel

    cfg = DINOv3ViTConfig() if not tiny else DINOv3ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    DINOv3ViTModel(cfg).save_pretrained(root / "dinov3")
    return root / "dinov3"


def build_sd15(root: Path, tiny: bool) -> Path:
    """SD 1.5's published component configs (unet/vae/text_encoder/tokenizer)."""
    import diffusers
    import transformers

    out = root / "sd15"
    if tiny:
        unet = diffusers.UNet2DConditionModel(
            sample_size=8, block_out_channels=(8, 16, 24, 24), layers_per_block=2,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            cross_attention_dim=16, attention_head_dim=2, norm_num_groups=4)
        vae = diffusers.AutoencoderKL(
            block_out_channels=(8, 8, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=4)
        text_cfg = transformers.CLIPTextConfig(
            vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
            num_attention_heads=2, max_position_embeddings=77, projection_dim=16)
    else:
        unet = diffusers.UNet2DConditionModel(
            sample_size=64, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            cross_attention_dim=768, attention_head_dim=8)
        vae = diffusers.AutoencoderKL(
            block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, sample_size=512,
            layers_per_block=2)
        text_cfg = transformers.CLIPTextConfig(
            vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
            num_attention_heads=12, max_position_embeddings=77, projection_dim=768)
    unet.save_pretrained(out / "unet")
    vae.save_pretrained(out / "vae")
    transformers.CLIPTextModel(text_cfg).save_pretrained(out / "text_encoder")
    _clip_tokenizer(out / "_vocab", 77).save_pretrained(out / "tokenizer")
    del unet, vae
    return out


def build_sam3(root: Path, tiny: bool) -> Path:
    from transformers import Sam3Config, Sam3Model, Sam3Processor
    from transformers.models.sam3.image_processing_sam3 import Sam3ImageProcessor

    out = root / "sam3"
    tok = _clip_tokenizer(root / "_sam3_vocab", 32)
    if tiny:
        small = dict(num_attention_heads=2, intermediate_size=64)
        cfg = Sam3Config(
            vision_config=dict(backbone_config=dict(
                model_type="sam3_vit_model", hidden_size=32, num_hidden_layers=2,
                image_size=56, patch_size=14, window_size=2, global_attn_indexes=[1],
                pretrain_image_size=56, **small),
                fpn_hidden_size=32, backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]]),
            text_config=dict(vocab_size=64, hidden_size=32, projection_dim=32,
                             num_hidden_layers=1, max_position_embeddings=32, **small),
            geometry_encoder_config=dict(hidden_size=32, num_layers=1, **small),
            detr_encoder_config=dict(hidden_size=32, num_layers=1, **small),
            detr_decoder_config=dict(hidden_size=32, num_layers=1, num_queries=5, **small),
            mask_decoder_config=dict(hidden_size=32, num_attention_heads=2))
        proc = Sam3Processor(image_processor=Sam3ImageProcessor(size={"height": 56,
                                                                      "width": 56}),
                             tokenizer=tok)
    else:
        cfg = Sam3Config()
        proc = Sam3Processor(image_processor=Sam3ImageProcessor(), tokenizer=tok)
    Sam3Model(cfg).save_pretrained(out)
    proc.save_pretrained(out)
    return out


def _image(h: int = 480, w: int = 640) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)


def run(device: str, tiny: bool, repeats: int, only: set[str]) -> list[dict]:
    import torch

    rows: list[dict] = []
    img = _image()
    dtypes = ["float32", "float16"] if device.startswith("cuda") else ["float32"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        def record(model: str, dtype: str, load_s: float, ms: float, shape, note: str = ""):
            row = dict(model=model, dtype=dtype, device=device, load_s=round(load_s, 2),
                       median_ms=round(ms, 2), output=list(shape), peak_gib=_peak_gib(device),
                       note=note)
            rows.append(row)
            print(json.dumps(row), flush=True)

        if "vit" in only:
            from geocorr.features.vit import ViTBackbone, ViTSettings

            for name, build, size in (("dinov2", build_dinov2, 840 if not tiny else 56),
                                      ("dinov3", build_dinov3, 960 if not tiny else 64)):
                folder = build(root, tiny)
                for dtype in dtypes:
                    t0 = time.perf_counter()
                    bb = ViTBackbone(ViTSettings(model=str(folder), image_size=size,
                                                 dtype=dtype, name=name), device=device)
                    _ = bb.model
                    _sync(device)
                    load = time.perf_counter() - t0
                    ms, _ = _time(lambda bb=bb: bb.extract(img), device, repeats)
                    record(name, dtype, load, ms, bb.extract(img).shape, f"canvas {size}")
                    del bb
                    _release(device)

        if "sd" in only:
            from geocorr.features.sd import SDBackbone, SDSettings

            folder = build_sd15(root, tiny)
            size, grid = (960, 60) if not tiny else (64, 4)
            for dtype in dtypes:
                for crops in (False, True):
                    if crops and tiny:
                        continue
                    t0 = time.perf_counter()
                    bb = SDBackbone(SDSettings(model=str(folder), image_size=size,
                                               output_grid=grid, dtype=dtype, crops=crops),
                                    device=device)
                    bb.components()
                    _sync(device)
                    load = time.perf_counter() - t0
                    ms, _ = _time(lambda bb=bb: bb.extract(img, category="car"), device,
                                  repeats)
                    shape = bb.extract(img, category="car").shape
                    record("sd15 s3+s4+s5", dtype, load, ms, shape,
                           f"canvas {size}, t=50, " + ("2x2 crops 512/448" if crops
                                                      else "one pass"))
                    del bb
                    _release(device)
            # Stable Diffusion is the big one: free the disk before SAM3.
            import shutil

            shutil.rmtree(folder, ignore_errors=True)

        if "sam3" in only:
            from geocorr.reconstruct.segmenter import Sam3Segmenter, Sam3Settings

            folder = build_sam3(root, tiny)
            t0 = time.perf_counter()
            seg = Sam3Segmenter(Sam3Settings(model=str(folder), threshold=0.0), device=device)
            seg._load()
            _sync(device)
            load = time.perf_counter() - t0
            ms, _ = _time(lambda: seg.segment(img, "car", "x"), device, repeats)
            det = seg.detect(img, "car")
            record("sam3", "float32", load, ms, det["masks"].shape,
                   f"{sum(p.numel() for p in seg._model.parameters()) / 1e6:.0f} M params")
            del seg
            _release(device)

        if "adapter" in only:
            from geocorr.adapter.network import Adapter, AdapterSettings

            sources = ((("sd_s3", 640), ("sd_s4", 1280), ("sd_s5", 1280), ("dinov2", 768))
                       if not tiny else (("a", 8), ("b", 16)))
            out_dim = 768 if not tiny else 32
            grid = 60 if not tiny else 8
            net = Adapter(AdapterSettings(sources=sources, out_dim=out_dim)).to(device)
            opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
            feats = {n: torch.randn(2, c, grid, grid, device=device) for n, c in sources}

            def step():
                out = net(feats)
                loss = out.square().mean()
                opt.zero_grad()
                loss.backward()
                opt.step()

            ms, _ = _time(step, device, repeats)
            record("adapter DINOv2+SD (train step, 2 images)", "float32", 0.0, ms,
                   (2, out_dim, grid, grid),
                   f"{sum(p.numel() for p in net.parameters()) / 1e6:.1f} M params")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="tiny configs: a logic check")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", default="vit,sd,sam3,adapter")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import torch

    print(f"torch {torch.__version__}; device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""),
          flush=True)
    rows = run(args.device, args.tiny, args.repeats, set(args.only.split(",")))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

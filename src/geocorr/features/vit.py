"""DINOv2 / DINOv3 patch tokens through transformers (``AutoModel``).

The image is resized (aspect kept) and zero-padded onto an ``image_size``
canvas (:func:`geocorr.geometry.resize_and_pad`), ImageNet-normalised (so the
padding is the normalised value of black), and run through the ViT. The
sequence is ``[CLS, registers..., patches...]``: the first
``1 + config.num_register_tokens`` tokens are dropped and the patches are
reshaped row-major to ``(C, image_size / p, image_size / p)`` -- patch
``(i, j)`` covers canvas pixels ``[p i, p i + p) x [p j, p j + p)``, which is
exactly :class:`~geocorr.features.base.FeatureMap` cell ``(i, j)``.

Defaults: DINOv2 ViT-B/14 at 840 px -> ``(768, 60, 60)``; DINOv3 ViT-B/16 at
960 px -> ``(768, 60, 60)`` (960 = 60 x 16, the same grid as DINOv2 and the SD
features, so fusion needs no resampling).

Weights load with ``local_files_only=True`` by default (offline-safe): pass a
local directory (``save_pretrained`` layout) or a hub id already in the
Hugging Face cache. Needs the ``models`` extra (``pip install geocorr[models]``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocorr.features.base import FeatureMap
from geocorr.features.cache import check_rgb_image
from geocorr.geometry.image_transform import resize_and_pad

__all__ = ["ViTSettings", "ViTBackbone", "IMAGENET_MEAN", "IMAGENET_STD", "weights_identity"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


@dataclass(frozen=True)
class ViTSettings:
    """Options of a DINO-family ViT backbone.

    Attributes:
        model: local directory or hub id (``facebook/dinov2-base``,
            ``facebook/dinov3-vitb16-pretrain-lvd1689m``, ...).
        image_size: canvas side in pixels; must be a multiple of the patch
            size. 840 for DINOv2/14 and 960 for DINOv3/16 give 60 x 60.
        layer: None = the model's final output (after its last LayerNorm, the
            usual "x_norm_patchtokens"); an int ``k`` = ``hidden_states[k]``
            (0 = embeddings, ``k`` = after block ``k``; negative counts from
            the end), without the final norm unless ``final_norm``.
        final_norm: apply the model's final LayerNorm to an intermediate layer.
        local_files_only: never touch the network (True; offline-safe).
        dtype: ``"float32"``, ``"float16"`` or ``"bfloat16"`` for the model.
        name: the FeatureMap/cache name, ``"dinov2"``.
    """

    model: str = "facebook/dinov2-base"
    image_size: int = 840
    layer: int | None = None
    final_norm: bool = False
    local_files_only: bool = True
    dtype: str = "float32"
    name: str = "dinov2"

    def __post_init__(self) -> None:
        if self.image_size < 1:
            raise ValueError(f"ViTSettings.image_size must be positive, got {self.image_size}")
        if self.dtype not in ("float32", "float16", "bfloat16"):
            raise ValueError(f"ViTSettings.dtype must be float32/float16/bfloat16, "
                             f"got {self.dtype!r}")


def weights_identity(model: str) -> str:
    """Identity of a model's weights for cache keys, without loading them.

    A local directory: its resolved path plus name, size and mtime of each
    weights file. A hub id: the snapshot (commit) folder of the cached copy
    when there is one, else the id itself.
    """
    p = Path(model)
    if p.is_dir():
        parts = []
        for f in sorted(p.rglob("*")):
            if f.is_file() and f.suffix in _WEIGHT_SUFFIXES:
                st = f.stat()
                parts.append(f"{f.relative_to(p)}:{st.st_size}:{st.st_mtime_ns}")
        return f"{p.resolve()}[{';'.join(parts)}]"
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # no hub client: the id alone identifies the weights
        return model
    hit = try_to_load_from_cache(model, "config.json")
    if isinstance(hit, str):
        return f"{model}@{Path(hit).parent.name}"
    return model


def _missing_weights(model: str, exc: Exception) -> FileNotFoundError:
    return FileNotFoundError(
        f"could not load {model!r} offline ({type(exc).__name__}: {exc}). Pass a local "
        f"directory holding config.json + model.safetensors (e.g. from "
        f"`huggingface-cli download {model} --local-dir DIR`), or download it into the "
        f"Hugging Face cache first, or set local_files_only=False to allow downloading.")


def load_vit(settings: ViTSettings, device: str = "cpu"):
    """Load the ViT named by ``settings.model`` in eval mode on ``device``."""
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise ImportError("DINO backbones need transformers: pip install 'geocorr[models]'") \
            from exc
    looks_local = settings.model.startswith((os.sep, ".", "~")) or Path(settings.model).exists()
    if looks_local and not Path(settings.model).expanduser().is_dir():
        raise FileNotFoundError(f"ViT model directory not found: {settings.model}")
    try:
        model = AutoModel.from_pretrained(settings.model,
                                          local_files_only=settings.local_files_only,
                                          dtype=getattr(torch, settings.dtype))
    except (OSError, ValueError) as exc:
        raise _missing_weights(settings.model, exc) from exc
    return model.to(device).eval()


class ViTBackbone:
    """Patch tokens of a DINOv2/DINOv3 ViT as a dense feature map.

    Args:
        settings: :class:`ViTSettings`.
        device: torch device.
    """

    def __init__(self, settings: ViTSettings | None = None, device: str = "cpu") -> None:
        self.settings = settings or ViTSettings()
        self.device = device
        self.name = self.settings.name
        self._model = None

    def cache_key(self) -> str:
        s = self.settings
        return (f"vit|{weights_identity(s.model)}|size={s.image_size}|layer={s.layer}"
                f"|fnorm={int(s.final_norm)}|dtype={s.dtype}|norm=imagenet")

    @property
    def model(self):
        """The loaded transformers model (loaded on first access)."""
        if self._model is None:
            self._model = load_vit(self.settings, self.device)
        return self._model

    def preprocess(self, image: np.ndarray):
        """Canvas tensor ``(1, 3, S, S)`` (ImageNet-normalised) and its transform."""
        import torch

        image = check_rgb_image(image)
        s = self.settings
        transform = resize_and_pad(image.shape[1], image.shape[0], s.image_size)
        canvas = transform.apply_image(image).astype(np.float32) / 255.0
        canvas = (canvas - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD,
                                                                              np.float32)
        x = torch.from_numpy(np.ascontiguousarray(canvas.transpose(2, 0, 1)))[None]
        return x, transform

    def extract(self, image: np.ndarray, **_: object) -> FeatureMap:
        """Patch-token features of one image.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            **_: ignored (``mask``/``bbox`` are for local backbones' context;
                a ViT's tokens carry context already).

        Returns:
            ``(hidden_size, S / p, S / p)`` float32 map.
        """
        import torch

        model = self.model
        config = model.config
        patch = int(config.patch_size)
        s = self.settings
        if s.image_size % patch:
            raise ValueError(f"ViTSettings.image_size ({s.image_size}) must be a multiple of "
                             f"the patch size {patch} of {s.model}")
        n = s.image_size // patch
        x, transform = self.preprocess(image)
        dtype = next(model.parameters()).dtype
        with torch.inference_mode():
            out = model(pixel_values=x.to(self.device, dtype),
                        output_hidden_states=s.layer is not None)
            if s.layer is None:
                tokens = out.last_hidden_state
            else:
                hidden = out.hidden_states
                if not -len(hidden) <= s.layer < len(hidden):
                    raise ValueError(f"ViTSettings.layer={s.layer} out of range: the model "
                                     f"has {len(hidden)} hidden states")
                tokens = hidden[s.layer]
                if s.final_norm:
                    norm = getattr(model, "layernorm", None) or getattr(model, "norm", None)
                    tokens = norm(tokens)
        skip = 1 + int(getattr(config, "num_register_tokens", 0) or 0)
        patches = tokens[0, skip:]
        if patches.shape[0] != n * n:
            raise ValueError(f"{s.model}: expected {n * n} patch tokens after dropping {skip} "
                             f"CLS/register tokens, got {patches.shape[0]}")
        features = patches.float().reshape(n, n, -1).permute(2, 0, 1).cpu().numpy()
        return FeatureMap(np.ascontiguousarray(features), transform, self.name)

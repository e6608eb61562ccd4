"""Feature sources for evaluation: a trained adapter, and fusion with the rendered part descriptor.

The evaluation chain with an adapter is: the frozen backbones the checkpoint
was trained on (its ``sources`` name them; a channel-grouped backbone such as
SD appears as ``sd_s3``/``sd_s4``/``sd_s5``) -> their maps, read through the
feature cache when one is given -> :func:`geocorr.adapter.checkpoint.apply_adapter`
-> the adapted :class:`~geocorr.features.base.FeatureMap`, which
:func:`geocorr.evaluation.zero_shot.zero_shot_predictor` turns into keypoint
predictions exactly as it does for zero-shot features.

:func:`part_fused_source` wraps any such ``(image path, category) -> FeatureMap``
source and fuses it with the geometric part descriptor of the image's stage-1
mesh, rendered onto the same grid with the stage-1 camera and weighted by the
image's stage-1 confidence (:mod:`geocorr.features.part_fusion`, the one
composition every command uses), as the demo's "2D+3D" rows do.
Stage 1's cache is the only extra input (no ground truth).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geocorr.features.base import Backbone, FeatureMap
from geocorr.features.cache import FeatureCache, backbone_inputs
from geocorr.features.geometric import GeometricDescriptor
from geocorr.features.part_fusion import PartFusionSettings, fuse_cached
from geocorr.features.registry import BACKBONES

__all__ = ["FeatureSource", "adapter_backbone_names", "adapter_feature_source",
           "part_fused_source"]

FeatureSource = Callable[[Path, str], FeatureMap]
"""``(image path, category) -> FeatureMap``."""


def adapter_backbone_names(source_names: Sequence[str]) -> list[str]:
    """Backbone names (in first-use order) whose maps make up an adapter's sources.

    A source is a backbone name (``xfeat``) or ``<backbone>_<group>`` for a
    channel-grouped backbone (``sd_s3``), as
    :func:`geocorr.adapter.dataset.cache_feature_provider` names them.

    Raises:
        ValueError: a source names no known backbone.
    """
    out: list[str] = []
    for s in source_names:
        name = s if s in BACKBONES else s.rsplit("_", 1)[0]
        if name not in BACKBONES:
            raise ValueError(f"adapter source {s!r} is not a known backbone "
                             f"({', '.join(sorted(BACKBONES))}) or a channel group of one")
        if name not in out:
            out.append(name)
    return out


class _NoCache:
    """``features_for`` without a cache: extract with exactly the inputs the cache would use."""

    def features_for(self, image: np.ndarray, backbone: Backbone, *, mask=None, bbox=None,
                     category=None) -> FeatureMap:
        return backbone.extract(image, **backbone_inputs(backbone, mask, bbox, category))


def adapter_feature_source(adapter: Any, backbones: Mapping[str, Backbone],
                           cache_dir: str | Path | None = None, device: str = "cpu",
                           mask_for: Callable[[Path, str], np.ndarray | None] | None = None
                           ) -> FeatureSource:
    """A memoised ``(image path, category) -> adapted FeatureMap`` source.

    Args:
        adapter: a trained :class:`~geocorr.adapter.network.Adapter`
            (:func:`~geocorr.adapter.checkpoint.from_pretrained`).
        backbones: backbone name -> backbone for every name of
            :func:`adapter_backbone_names` (same settings as at training).
        cache_dir: a :class:`~geocorr.features.cache.FeatureCache` folder, or ``None``.
        device: where the adapter runs.
        mask_for: ``(image path, category) -> (H, W) bool mask or None`` for
            backbones with image-wide context (as ``geocorr train`` used them).

    Returns:
        The source; maps are ``(out_dim, h, w)`` unit vectors on the first
        source's grid (named ``"adapter"``).

    Raises:
        ValueError: a backbone the adapter needs is missing.
    """
    from geocorr.adapter.checkpoint import apply_adapter  # torch
    from geocorr.adapter.dataset import cache_feature_provider  # torch

    need = adapter_backbone_names(adapter.source_names)
    missing = [n for n in need if n not in backbones]
    if missing:
        raise ValueError(f"the adapter was trained on {need}; backbone(s) {missing} not given")
    cache = FeatureCache(cache_dir) if cache_dir is not None else _NoCache()
    provider = cache_feature_provider(cache, [backbones[n] for n in need], mask_for=mask_for)
    memo: dict[Path, FeatureMap] = {}

    def features(path: Path, category: str) -> FeatureMap:
        path = Path(path)
        if path not in memo:
            memo[path] = apply_adapter(adapter, provider(path, category), device=device)
        return memo[path]

    return features


def part_fused_source(features: FeatureSource, stage1: str | Path,
                      settings: PartFusionSettings | None = None, descriptor: Any = None
                      ) -> FeatureSource:
    """Fuse a feature source with the rendered part descriptor of each image's stage-1 mesh.

    Composition, weights and the confidence rule are
    :func:`geocorr.features.part_fusion.fuse_cached`'s.

    Args:
        features: the 2D (or adapted) source.
        stage1: stage-1 cache root (``<cat>/<stem>/{mesh.ply,camera.json,mask.png,record.json}``;
            the category is the image's folder name, the stem its file stem).
        settings: :class:`~geocorr.features.part_fusion.PartFusionSettings`
            (part weight, confidence rule).
        descriptor: a part descriptor with ``describe(vertices, faces) -> (V, D)``
            (default: :class:`~geocorr.features.geometric.GeometricDescriptor`).

    Returns:
        A memoised ``(image path, category) -> fused FeatureMap`` source.

    Raises:
        ValueError: a part weight of 0 (nothing would be fused).
        FileNotFoundError: (when called) an image has no stage-1 entry.
    """
    s = settings or PartFusionSettings()
    if s.part_weight == 0:
        raise ValueError("part_weight must be > 0 to fuse the part descriptor, got 0")
    if descriptor is None:
        descriptor = GeometricDescriptor()
    memo: dict[Path, FeatureMap] = {}

    def fused(path: Path, category: str) -> FeatureMap:
        path = Path(path)
        if path not in memo:
            memo[path] = fuse_cached(features(path, category), stage1, path.parent.name,
                                     path.stem, s, descriptor=descriptor).fused
        return memo[path]

    return fused

"""Zero-shot prediction: one or more backbones, fused, nearest neighbour on the grid.

The evaluation chain is backbone features -> (fusion) -> :func:`predict_keypoints`
-> :func:`geocorr.evaluation.scorer.evaluate_pairs`. With ``dinov2`` + ``sd`` and
local weights this is the SPair-71k zero-shot protocol of the paper's tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from geocorr.data.images import read_rgb
from geocorr.data.pairs import KeypointPair
from geocorr.evaluation.predict import PredictSettings, predict_keypoints
from geocorr.features.base import Backbone, FeatureMap
from geocorr.features.cache import FeatureCache, backbone_inputs
from geocorr.features.fusion import FusionSettings, fuse

__all__ = ["fused_feature_source", "zero_shot_predictor"]


def fused_feature_source(backbones: Mapping[str, Backbone], weights: Mapping[str, float] | None
                         = None, cache_dir: str | Path | None = None,
                         mask_for: Callable[[Path, str], np.ndarray | None] | None = None
                         ) -> Callable[[Path, str], FeatureMap]:
    """``(image path, category) -> FeatureMap``, fusing several backbones when given.

    Args:
        backbones: name -> backbone; one backbone is used as is.
        weights: fusion weights per name (default: equal, summing to 1).
        cache_dir: a :class:`geocorr.features.cache.FeatureCache` folder, or ``None``.
        mask_for: ``(image path, category) -> (H, W) bool mask or None``, the
            object mask of backbones with image-wide context (others ignore it).

    Returns:
        A memoised feature function.
    """
    if not backbones:
        raise ValueError("at least one backbone is needed")
    names = list(backbones)
    w = dict(weights) if weights else {n: 1.0 / len(names) for n in names}
    missing = [n for n in names if n not in w]
    if missing:
        raise ValueError(f"no fusion weight for backbone(s) {missing}")
    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    memo: dict[Path, FeatureMap] = {}

    def features(path: Path, category: str) -> FeatureMap:
        path = Path(path)
        if path not in memo:
            image = read_rgb(path)
            mask = mask_for(path, category) if mask_for is not None else None
            maps = {}
            for n, bb in backbones.items():
                maps[n] = (cache.features_for(image, bb, mask=mask, category=category)
                           if cache is not None
                           else bb.extract(image, **backbone_inputs(bb, mask=mask,
                                                                   category=category)))
            memo[path] = maps[names[0]] if len(names) == 1 else fuse(
                maps, FusionSettings(weights={n: w[n] for n in names}))
        return memo[path]

    return features


def zero_shot_predictor(features: Callable[[Path, str], FeatureMap],
                        settings: PredictSettings | None = None
                        ) -> Callable[[KeypointPair], np.ndarray]:
    """``pair -> (N, 2)`` predicted target keypoints (original target pixels)."""
    settings = settings or PredictSettings()

    def predict(pair: KeypointPair) -> np.ndarray:
        src = features(pair.src_image, pair.category)
        trg = features(pair.trg_image, pair.category)
        return predict_keypoints(src, trg, pair.src_kps, settings).trg_kps

    return predict

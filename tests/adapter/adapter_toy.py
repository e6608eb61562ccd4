"""A toy correspondence problem with known answers for the adapter tests.

Every "image" is an 8x8 grid whose cell (i, j) corresponds to cell (i, j) of
every other image. Two sources: ``pos`` carries a weak positional code in a
few channels buried under strong per-image noise; ``noise`` is pure noise. Raw
features match poorly by nearest neighbour; an adapter can learn to keep the
positional channels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geocorr.adapter.dataset import LabeledPair
from geocorr.features.base import FeatureMap
from geocorr.geometry.image_transform import resize_and_pad

SIDE = 8


def toy_problem(num_images: int = 6, seed: int = 0, signal: float = 3.0):
    rng = np.random.default_rng(seed)
    code = rng.normal(size=(4, SIDE, SIDE))
    transform = resize_and_pad(SIDE, SIDE, SIDE)
    maps = {}
    for k in range(num_images):
        pos = rng.normal(size=(12, SIDE, SIDE))
        pos[:4] += signal * code / code.std()
        noise = rng.normal(size=(6, SIDE, SIDE))
        maps[Path(f"img{k}.png")] = {
            "pos": FeatureMap(pos.astype(np.float32), transform, "pos"),
            "noise": FeatureMap(noise.astype(np.float32), transform, "noise")}

    def provider(path: Path, category: str):
        return maps[Path(path)]

    jj, ii = np.meshgrid(np.arange(SIDE), np.arange(SIDE))
    uv = np.stack([jj.ravel(), ii.ravel()], 1).astype(np.float64)
    pairs = []
    names = sorted(maps)
    for a in range(num_images):
        for b in range(num_images):
            if a != b:
                sub = rng.choice(len(uv), size=30, replace=False)
                pairs.append(LabeledPair(f"{a:02d}-{b:02d}", "toy", names[a], names[b],
                                         uv[sub], uv[sub], np.ones(30)))
    return pairs, provider, maps, uv


def nn_accuracy(src: FeatureMap, trg: FeatureMap) -> float:
    """Fraction of cells whose cosine nearest neighbour is the same cell."""
    a = src.features.reshape(src.features.shape[0], -1)
    b = trg.features.reshape(trg.features.shape[0], -1)
    a = a / np.linalg.norm(a, axis=0, keepdims=True)
    b = b / np.linalg.norm(b, axis=0, keepdims=True)
    return float(np.mean(np.argmax(a.T @ b, axis=1) == np.arange(a.shape[1])))

"""Training batches for the adapter: frozen cached features + pseudo-labels, one pair each.

A :class:`LabeledPair` is one verified pair of the pseudo-label store (image
paths + matched pixels in the original images). A feature provider maps an
image to its named :class:`~geocorr.features.base.FeatureMap` s (normally read
from the feature cache, :func:`cache_feature_provider`); the sources are
resampled onto the first source's grid (:func:`stack_sources`) and the points
converted to normalised grid units (:func:`uv_to_normalized`). No backbone
runs in the training loop when the cache is warm, and no ground truth is read.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from geocorr.data.images import read_rgb
from geocorr.data.paths import inside
from geocorr.features.base import Backbone, FeatureMap
from geocorr.geometry.image_transform import ResizePad

__all__ = ["LabeledPair", "PairSample", "FeatureProvider", "uv_to_normalized", "stack_sources",
           "cache_feature_provider", "labeled_pairs_from_store", "spair_image_path",
           "TrainingPairs", "subsample_labels"]

FeatureProvider = Callable[[Path, str], dict[str, FeatureMap]]
"""``(image path, category) -> {source name: FeatureMap}``, same sources for every image."""


@dataclass(frozen=True, eq=False)
class LabeledPair:
    """One pair's pseudo-labels.

    Attributes:
        pair_id: unique id in the store.
        category: object category.
        src_image: source image path.
        trg_image: target image path.
        src_uv: ``(N, 2)`` float64 source pixels (original image, ``(u, v)``).
        trg_uv: ``(N, 2)`` float64 matched target pixels.
        score: ``(N,)`` float64 verification score (not used by the loss).
    """

    pair_id: str
    category: str
    src_image: Path
    trg_image: Path
    src_uv: np.ndarray
    trg_uv: np.ndarray
    score: np.ndarray

    def __post_init__(self) -> None:
        s, t = np.asarray(self.src_uv), np.asarray(self.trg_uv)
        if s.ndim != 2 or s.shape[1] != 2 or s.shape != t.shape:
            raise ValueError(f"pair {self.pair_id}: src_uv and trg_uv must be equal (N, 2), got "
                             f"{s.shape} and {t.shape}")


@dataclass(frozen=True, eq=False)
class PairSample:
    """One training example on the common grid.

    Attributes:
        src: source name -> ``(C_i, h, w)`` float32 tensor (source image).
        trg: the same for the target image (its own grid ``(h', w')``).
        src_xy: ``(N, 2)`` source points in normalised grid units.
        trg_xy: ``(N, 2)`` matched target points in normalised grid units.
    """

    src: dict[str, torch.Tensor]
    trg: dict[str, torch.Tensor]
    src_xy: torch.Tensor
    trg_xy: torch.Tensor


def uv_to_normalized(transform: ResizePad, uv: np.ndarray) -> np.ndarray:
    """Original-image pixels ``(N, 2)`` -> normalised canvas units ``(N, 2)`` in ``[-1, 1]``.

    Independent of the grid size: a ``(C, h, w)`` map covering the ``S x S``
    canvas has its edges at -1 / 1 (``align_corners=False``).
    """
    c = transform.points_to_canvas(np.asarray(uv, dtype=np.float64).reshape(-1, 2))
    return (c + 0.5) / transform.size * 2.0 - 1.0


def stack_sources(fmaps: dict[str, FeatureMap], names: Sequence[str]
                  ) -> tuple[dict[str, torch.Tensor], FeatureMap]:
    """Resample every source onto the first named source's grid.

    Args:
        fmaps: source name -> FeatureMap of one image.
        names: source order; ``names[0]`` sets the grid and canvas.

    Returns:
        ``({name: (C_i, h, w) float32 tensor}, reference FeatureMap)``. A source
        on the reference's canvas and grid is passed through unchanged; others
        are sampled bilinearly at the reference cell centres (via the original
        image's pixels, so different canvas sizes line up).
    """
    missing = [n for n in names if n not in fmaps]
    if missing:
        raise ValueError(f"features are missing sources {missing} (have {sorted(fmaps)})")
    ref = fmaps[names[0]]
    h, w = ref.grid_size
    centres = ref.cell_centers().reshape(-1, 2)
    out: dict[str, torch.Tensor] = {}
    for name in names:
        m = fmaps[name]
        f = torch.from_numpy(np.ascontiguousarray(m.features, dtype=np.float32))
        if m.grid_size == (h, w) and m.transform == ref.transform:
            out[name] = f
            continue
        xy = torch.from_numpy(uv_to_normalized(m.transform, centres)).float().view(1, h, w, 2)
        out[name] = F.grid_sample(f[None], xy, mode="bilinear", padding_mode="border",
                                  align_corners=False)[0]
    return out, ref


def cache_feature_provider(cache: Any, backbones: Sequence[Backbone], *,
                           mask_for: Callable[[Path, str], np.ndarray | None] | None = None,
                           split_groups: bool = True) -> FeatureProvider:
    """A provider reading (or filling) the feature cache, one source per backbone.

    A backbone with ``channel_groups()`` (Stable Diffusion: s3/s4/s5
    concatenated) is split into one source per group, named
    ``<backbone>_<group>`` (``sd_s3``, ``sd_s4``, ``sd_s5``), so the adapter
    gets DIY-SC's block per decoder layer; ``split_groups=False`` keeps one.

    Args:
        cache: a :class:`~geocorr.features.cache.FeatureCache`.
        backbones: the backbones whose maps feed the adapter (source name =
            ``backbone.name``); use the settings the cache was encoded with.
        mask_for: ``(image path, category) -> (H, W) bool mask or None`` for
            context backbones (must match what ``geocorr features`` used).

    Returns:
        A :data:`FeatureProvider`.
    """
    names = [b.name for b in backbones]
    if len(set(names)) != len(names):
        raise ValueError(f"backbone names must be distinct, got {names}")

    def provide(path: Path, category: str) -> dict[str, FeatureMap]:
        image = read_rgb(path)
        mask = mask_for(path, category) if mask_for is not None else None
        out: dict[str, FeatureMap] = {}
        for b in backbones:
            fmap = cache.features_for(image, b, mask=mask, category=category)
            groups = getattr(b, "channel_groups", None) if split_groups else None
            if groups is None:
                out[b.name] = fmap
                continue
            for g, (lo, hi) in groups().items():
                if not 0 <= lo < hi <= fmap.shape[0]:
                    raise ValueError(f"channel group {g!r} = [{lo}, {hi}) outside "
                                     f"{fmap.shape[0]} channels of {b.name!r}")
                out[f"{b.name}_{g}"] = FeatureMap(fmap.features[lo:hi], fmap.transform,
                                                  f"{b.name}_{g}")
        return out

    return provide


def labeled_pairs_from_store(store: Any, image_path: Callable[[str, str], Path],
                             min_labels: int = 1) -> list[LabeledPair]:
    """All pairs of a pseudo-label store with at least ``min_labels`` labels.

    Args:
        store: a :class:`geocorr.labels.store.LabelStore` (``pairs()`` -> ids,
            ``pair_info(id)`` -> ``category, source, target`` image stems,
            ``labels(id)`` -> ``(src_uv (N,2), trg_uv (N,2), score (N,))`` pixels).
        image_path: ``(category, image stem) -> image file``, e.g.
            :func:`spair_image_path` of the dataset the labels came from.
        min_labels: pairs with fewer kept labels are skipped (the CE needs
            at least 2 points to have a negative).

    Returns:
        Pairs sorted by ``pair_id``.
    """
    out = []
    for pair_id in store.pairs():
        info = store.pair_info(pair_id)
        src_uv, trg_uv, score = store.labels(pair_id)
        if len(src_uv) < min_labels:
            continue
        cat = str(info["category"])
        out.append(LabeledPair(str(pair_id), cat, image_path(cat, str(info["source"])),
                               image_path(cat, str(info["target"])),
                               np.asarray(src_uv, np.float64), np.asarray(trg_uv, np.float64),
                               np.asarray(score, np.float64)))
    return sorted(out, key=lambda p: p.pair_id)


def subsample_labels(pairs: Sequence[LabeledPair], total: int, seed: int = 0
                     ) -> list[LabeledPair]:
    """A seeded random subset of ``total`` labels drawn uniformly over all pairs' labels.

    Used to compare two pseudo-label filters at an equal label count (e.g. the
    cyclic-only store cut down to the geodesic store's size). Pairs left with
    fewer than 2 labels are dropped (the CE needs a negative), so the result
    may hold slightly fewer than ``total``.

    Args:
        pairs: labelled pairs.
        total: labels to keep; at least the pairs' total returns them unchanged.
        seed: seeds the draw.

    Returns:
        Pairs (same order) with their kept labels, in their original order.
    """
    if total < 0:
        raise ValueError(f"label total must be >= 0, got {total}")
    counts = np.array([len(p.src_uv) for p in pairs], dtype=np.int64)
    if total >= counts.sum():
        return list(pairs)
    rng = np.random.default_rng(seed)
    chosen = np.zeros(int(counts.sum()), dtype=bool)
    chosen[rng.choice(len(chosen), size=total, replace=False)] = True
    out, start = [], 0
    for p, n in zip(pairs, counts, strict=True):
        keep = np.flatnonzero(chosen[start:start + n])
        start += n
        if len(keep) >= 2:
            out.append(LabeledPair(p.pair_id, p.category, p.src_image, p.trg_image,
                                   p.src_uv[keep], p.trg_uv[keep], p.score[keep]))
    return out


def spair_image_path(root: str | os.PathLike[str]) -> Callable[[str, str], Path]:
    """``(category, stem) -> ROOT/JPEGImages/<category>/<stem>.jpg`` (SPair / procedural layout).

    A stem that already has a suffix is used as the file name. A category or
    stem leading outside ``ROOT`` (:func:`geocorr.data.paths.inside`) is a ``ValueError``.
    """
    base = Path(root) / "JPEGImages"
    if Path(root).is_file():
        raise NotADirectoryError(f"--dataset {root} is a file; expected an SPair-layout folder")
    if not base.is_dir():
        raise ValueError(f"--dataset {root} has no JPEGImages/ folder")

    def path(category: str, stem: str) -> Path:
        name = stem if Path(stem).suffix else f"{stem}.jpg"
        return inside(root, "JPEGImages", category, name,
                      source=f"label pair image {category}/{stem}", what="image")

    return path


class TrainingPairs:
    """Pairs -> :class:`PairSample` s, with a small in-memory cache of stacked features.

    Args:
        pairs: labelled pairs.
        provider: image -> named FeatureMaps.
        names: source order (``names[0]`` sets the grid).
        max_cached_images: stacked feature maps kept in memory (LRU); the
            CPU backbones' 64x64 maps are ~1 MB each, DINO+SD ~60 MB.
    """

    def __init__(self, pairs: Sequence[LabeledPair], provider: FeatureProvider,
                 names: Sequence[str], max_cached_images: int = 256) -> None:
        self.pairs = list(pairs)
        self.provider = provider
        self.names = list(names)
        self.max_cached_images = max_cached_images
        self._cache: OrderedDict[Path, tuple[dict[str, torch.Tensor], FeatureMap]] = OrderedDict()

    def __len__(self) -> int:
        return len(self.pairs)

    def image(self, path: Path, category: str) -> tuple[dict[str, torch.Tensor], FeatureMap]:
        """Stacked sources of one image (cached)."""
        if path in self._cache:
            self._cache.move_to_end(path)
            return self._cache[path]
        item = stack_sources(self.provider(path, category), self.names)
        self._cache[path] = item
        while len(self._cache) > self.max_cached_images:
            self._cache.popitem(last=False)
        return item

    def sample(self, index: int, max_points: int, generator: torch.Generator) -> PairSample:
        """Pair ``index`` with at most ``max_points`` labels (random subset from ``generator``)."""
        p = self.pairs[index]
        src, src_ref = self.image(p.src_image, p.category)
        trg, trg_ref = self.image(p.trg_image, p.category)
        n = len(p.src_uv)
        keep = np.arange(n)
        if n > max_points:
            keep = np.sort(torch.randperm(n, generator=generator)[:max_points].numpy())
        src_xy = torch.from_numpy(uv_to_normalized(src_ref.transform, p.src_uv[keep])).float()
        trg_xy = torch.from_numpy(uv_to_normalized(trg_ref.transform, p.trg_uv[keep])).float()
        return PairSample(src, trg, src_xy, trg_xy)

"""Demo step 3: the per-image feature maps of every row (:func:`features_step`).

:class:`FeatureSources` computes each image's maps once and keeps them (a
plain memo keyed by image path): XFeat through the feature cache, the CPU
geometric part descriptor of the stage-1 mesh rendered onto the XFeat grid,
their fusion weighted by the image's stage-1 confidence
(:func:`geocorr.features.part_fusion.fuse_part`, as every command fuses),
XFeat with image-wide context (the adapters' input with
``DemoSettings.adapter_context``), the part map of the oracle-level
reconstruction, and any other source (an adapter's) fused with the part
descriptor like the XFeat row. :func:`features_step` builds it and computes
the test pairs' maps up front.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocorr.data.images import read_rgb
from geocorr.data.pairs import KeypointPair
from geocorr.data.spair import SPairDataset
from geocorr.demo.settings import DemoSettings
from geocorr.demo.stage1 import Stage1Run
from geocorr.demo.synth import DemoData
from geocorr.features.base import FeatureMap
from geocorr.features.cache import FeatureCache, dataset_mask_for
from geocorr.features.geometric import GeometricDescriptor
from geocorr.features.part_fusion import PartFusionSettings, fuse_part
from geocorr.features.registry import make_backbones
from geocorr.reconstruct.pipeline import load_cached

__all__ = ["ImageMaps", "FeatureSources", "PartFusedSource", "DemoFeatures", "features_step"]

Source = Callable[[Path], FeatureMap]
"""``image path -> FeatureMap`` (the category is the image's folder name)."""


@dataclass(frozen=True, eq=False)
class ImageMaps:
    """One image's three zero-shot maps.

    Attributes:
        xfeat: the XFeat map ``(64, h, w)``.
        part: the rendered part descriptor on the XFeat grid ``(D, h, w)``.
        fused: XFeat and part fused at the image's stage-1 confidence ``(64 + D, h, w)``.
    """

    xfeat: FeatureMap
    part: FeatureMap
    fused: FeatureMap


class FeatureSources:
    """Each image's feature maps, computed on first use and kept (module doc).

    Args:
        data: the benchmark root (context masks: its ``PredictedMasks/``).
        stage1: the stage-1 cache of every image asked for.
        fusion: how the part descriptor is fused (part weight, confidence rule).
        cache_dir: the feature cache folder (shared with stage 3).
        oracle_stage1: the oracle-level stage-1 cache (for :meth:`oracle_part`), or ``None``.
    """

    def __init__(self, data: str | Path, stage1: str | Path, fusion: PartFusionSettings,
                 cache_dir: str | Path, oracle_stage1: str | Path | None = None) -> None:
        self.stage1 = Path(stage1)
        self.oracle_stage1 = Path(oracle_stage1) if oracle_stage1 is not None else None
        self.fusion = fusion
        self.cache = FeatureCache(cache_dir)
        self.backbone = make_backbones(["xfeat"])["xfeat"]
        # XFeat with image-wide context and the masks the filter study trains with
        self.context_backbone = make_backbones(["xfeat"], context=True)["xfeat"]
        self.descriptor = GeometricDescriptor()
        self._context_mask = dataset_mask_for(data)
        self._maps: dict[Path, ImageMaps] = {}
        self._vertex_desc: dict[Path, np.ndarray] = {}
        self._context: dict[Path, FeatureMap] = {}
        self._oracle: dict[Path, FeatureMap] = {}

    def maps(self, path: Path) -> ImageMaps:
        """XFeat, part and fused maps of ``path`` (its stage-1 entry must exist)."""
        if path not in self._maps:
            cached = load_cached(self.stage1, path.parent.name, path.stem)
            fmap = self.cache.features_for(read_rgb(path), self.backbone, mask=cached.mask)
            self._vertex_desc[path] = self.descriptor.describe(cached.vertices, cached.faces)
            fz = fuse_part(fmap, cached.vertices, cached.faces, cached.camera, cached.mask,
                           self.fusion, record=cached.record, vertex_desc=self._vertex_desc[path])
            self._maps[path] = ImageMaps(fmap, fz.part, fz.fused)
        return self._maps[path]

    def xfeat(self, path: Path) -> FeatureMap:
        """The 2D zero-shot map."""
        return self.maps(path).xfeat

    def part(self, path: Path) -> FeatureMap:
        """The 3D-only map: the rendered part descriptor."""
        return self.maps(path).part

    def fused(self, path: Path) -> FeatureMap:
        """The 2D+3D map."""
        return self.maps(path).fused

    def context(self, path: Path) -> FeatureMap:
        """XFeat with image-wide context (masks from the benchmark's predicted masks)."""
        if path not in self._context:
            mask = self._context_mask(path, path.parent.name)
            self._context[path] = self.cache.features_for(read_rgb(path), self.context_backbone,
                                                          mask=mask)
        return self._context[path]

    def oracle_part(self, path: Path) -> FeatureMap:
        """The 3D-only map of ``path`` from its oracle-level reconstruction, on the XFeat grid.

        Raises:
            ValueError: no oracle stage-1 cache was given.
        """
        if self.oracle_stage1 is None:
            raise ValueError("oracle_part: FeatureSources has no oracle stage-1 cache")
        if path not in self._oracle:
            c = load_cached(self.oracle_stage1, path.parent.name, path.stem)
            self._oracle[path] = fuse_part(
                self.xfeat(path), c.vertices, c.faces, c.camera, c.mask, self.fusion,
                record=c.record, vertex_desc=self.descriptor.describe(c.vertices, c.faces)).part
        return self._oracle[path]

    def fused_with_part(self, source: Source) -> PartFusedSource:
        """``source`` (e.g. an adapter's maps) fused with the part descriptor like :meth:`fused`."""
        return PartFusedSource(self, source)

    def vertex_descriptors(self, path: Path) -> np.ndarray:
        """``(V, D)`` part descriptors of the vertices of ``path``'s stage-1 mesh."""
        self.maps(path)
        return self._vertex_desc[path]


class PartFusedSource:
    """A source fused with each image's rendered part descriptor, computed on first use and kept.

    Args:
        sources: the demo's sources (stage-1 cache, fusion settings, vertex descriptors).
        source: ``image path -> FeatureMap`` to fuse (e.g. an adapter's maps).
    """

    def __init__(self, sources: FeatureSources, source: Source) -> None:
        self.sources = sources
        self.source = source
        self._maps: dict[Path, FeatureMap] = {}

    def __call__(self, path: Path) -> FeatureMap:
        if path not in self._maps:
            s = self.sources
            vertex_desc = s.vertex_descriptors(path)
            c = load_cached(s.stage1, path.parent.name, path.stem)
            self._maps[path] = fuse_part(self.source(path), c.vertices, c.faces, c.camera, c.mask,
                                         s.fusion, record=c.record, vertex_desc=vertex_desc).fused
        return self._maps[path]


@dataclass(frozen=True, eq=False)
class DemoFeatures:
    """The feature step's result.

    Attributes:
        sources: every image's maps (computed for ``pairs``, more on demand).
        pairs: the test pairs (annotations included).
        cache_dir: the feature cache folder (stage 3 reads and adds to it).
    """

    sources: FeatureSources
    pairs: tuple[KeypointPair, ...]
    cache_dir: Path


def features_step(out: str | Path, data: DemoData, stage1: Stage1Run,
                  oracle: Stage1Run | None, settings: DemoSettings,
                  log: Callable[[str], None] = print) -> DemoFeatures:
    """XFeat + rendered part descriptors (+ context maps) of every test image.

    Args:
        out: the demo's output folder (cache in ``out/cache/features``).
        data: the benchmark.
        stage1: stage 1 of its test images.
        oracle: the oracle-level stage 1, or ``None``.
        settings: :class:`~geocorr.demo.settings.DemoSettings` (``fusion``,
            ``adapter_context``).
        log: one-line status messages.

    Returns:
        :class:`DemoFeatures`.
    """
    log("[3/5] XFeat features + rendered geometric part descriptors of the test images")
    cache_dir = Path(out) / "cache" / "features"
    sources = FeatureSources(data.root, stage1.cache, settings.fusion, cache_dir,
                             oracle.cache if oracle is not None else None)
    pairs = SPairDataset(data.root).pairs("test")
    for p in pairs:
        for path in (p.src_image, p.trg_image):
            sources.maps(path)
            if settings.adapter_context:
                sources.context(path)
    return DemoFeatures(sources=sources, pairs=tuple(pairs), cache_dir=cache_dir)

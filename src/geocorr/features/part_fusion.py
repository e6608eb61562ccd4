"""2D maps + stage-1 mesh -> rendered part descriptor -> fused map, in one place.

Every command that fuses the 3D part descriptor with 2D features (``match``,
``eval --stage1``, ``pseudolabel`` and so ``train`` on its labels, ``demo``)
calls :func:`fuse_part` (or :func:`fuse_cached` for a stage-1 cache entry):

1. the per-vertex part descriptor of the canonicalized mesh (the CPU
   :class:`~geocorr.features.geometric.GeometricDescriptor` unless another is
   given) is rendered onto the 2D map's grid with the stage-1 camera and mask
   (:func:`geocorr.features.render.render_descriptors`);
2. the image's part share ``s`` follows its stage-1 confidence ``c``
   (:func:`geocorr.features.part_confidence.stage1_confidence`: final mask
   IoU, vote margin, canonical alignment confidence and residual, symmetry
   order): the confidence scales the part's *odds* against the 2D source,
   ``s / (1 - s) = c * gamma / (1 - gamma)``, so ``s = gamma`` at ``c = 1``,
   ``s = 0`` at ``c = 0``, and a half-trusted mesh keeps most of a high
   ``gamma`` (0.9 -> 0.82) instead of half of it. ``confidence=None``: ``s = gamma``;
3. both maps are L2-normalised per cell and concatenated as
   ``[sqrt(1 - s) * 2D, sqrt(s) * part]`` (:mod:`geocorr.features.fusion`: a
   weight is a share of the similarity). Between two images ``a`` and ``b``
   the fused dot product of two object cells is
   ``sqrt((1 - s_a)(1 - s_b)) cos_2D + sqrt(s_a s_b) cos_part``: the part
   descriptor counts as much as *both* reconstructions are trusted, and with
   perfect confidence on both sides this is the constant-weight fusion
   ``(1 - gamma) cos_2D + gamma cos_part``.

Why ``gamma`` is high (:attr:`PartFusionSettings.part_weight`): on the
procedural benchmark XFeat's in-object cosines are noisy at the scale that
separates neighbouring parts (its NN is right for 17-31 % of keypoints), while
the part descriptor of a well-canonicalized mesh is right for ~90 %; at an
equal share XFeat's noise moves the nearest neighbour off the part (the demo's
fused row 79.6 vs 88.8 for 3D only). A high share at full confidence keeps the
2D source as a tie-breaker where the mesh is trusted and hands it the
similarity where the mesh is not (``benchmarks/RESULTS.md``, "Fusion").
Stronger 2D features (DINOv2 + SD) warrant a lower ``gamma`` (the paper uses
1/6 with PartField): pass it in the settings (``--part-weight``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geocorr.features.base import FeatureMap
from geocorr.features.part_confidence import (
    ConfidenceSettings,
    Stage1Confidence,
    render_iou,
    stage1_confidence,
)
from geocorr.geometry.camera import Camera

__all__ = ["PartFusionSettings", "PartFusion", "part_share", "fuse_part", "fuse_cached"]


@dataclass(frozen=True)
class PartFusionSettings:
    """How the rendered part descriptor is fused with a 2D map.

    Attributes:
        part_weight: ``gamma``, the part descriptor's share of the fused
            similarity at full stage-1 confidence (the 2D map gets
            ``1 - gamma``); 0 = 2D only, 1 = the part descriptor alone for
            every image whose confidence is above 0 (infinite odds). This is
            the one default of the part weight in geocorr: 0.9, the only one
            of {0.5, 0.75, 0.9, 1} (with the confidence rule, XFeat) whose
            fused row stayed within 2 points of 3D only at ``oracle`` without
            falling far below 2D at twice the realistic errors
            (``benchmarks/RESULTS.md``, "Fusion").
        confidence: confidence rule (:mod:`geocorr.features.part_confidence`);
            ``None`` = a constant share ``part_weight`` for every image.
        name: source name of the rendered part map.
    """

    part_weight: float = 0.9
    confidence: ConfidenceSettings | None = field(default_factory=ConfidenceSettings)
    name: str = "geometric"

    def __post_init__(self) -> None:
        if not (0.0 <= self.part_weight <= 1.0):
            raise ValueError(f"part_weight must be in [0, 1], got {self.part_weight}")


@dataclass(frozen=True, eq=False)
class PartFusion:
    """One image's fused map and how it was weighted.

    Attributes:
        fused: ``(C_2d + C_part, h, w)`` fused :class:`FeatureMap` on the 2D grid.
        part: ``(C_part, h, w)`` rendered part descriptor (zero off the mask).
        share: the part descriptor's share ``s`` of the similarity.
        confidence: the stage-1 confidence behind ``share`` (``None`` for a
            constant weight).
    """

    fused: FeatureMap
    part: FeatureMap
    share: float
    confidence: Stage1Confidence | None


def part_share(confidence: Stage1Confidence | None, settings: PartFusionSettings) -> float:
    """The part's share ``s``: odds ``s / (1 - s) = c * gamma / (1 - gamma)`` (module doc).

    ``gamma`` (= ``settings.part_weight``) when ``confidence`` is ``None`` or its
    value is 1; 0 when the value is 0; increasing in the value between.
    """
    g = settings.part_weight
    c = 1.0 if confidence is None else float(np.clip(confidence.value, 0.0, 1.0))
    if g in (0.0, 1.0) or c == 1.0:
        return float(g) if c > 0 else 0.0
    return float(c * g / (c * g + 1.0 - g))


def _concat(features: FeatureMap, part: FeatureMap, share: float) -> FeatureMap:
    from geocorr.features.fusion import l2_normalize, resample

    a = l2_normalize(features.features)
    b = l2_normalize(resample(part, features))
    # both blocks are kept even at share 0 or 1, so every image's fused map has the same channels
    x = np.concatenate([math.sqrt(1.0 - share) * a, math.sqrt(share) * b], axis=0)
    return FeatureMap(x.astype(np.float32), features.transform, f"{features.name}+{part.name}")


def fuse_part(features: FeatureMap, vertices: np.ndarray, faces: np.ndarray, camera: Camera,
              mask: np.ndarray, settings: PartFusionSettings | None = None, *,
              record: Mapping[str, Any] | None = None, descriptor: Any = None,
              vertex_desc: np.ndarray | None = None) -> PartFusion:
    """Render the mesh's part descriptor onto ``features``' grid and fuse (module doc).

    Args:
        features: the image's 2D (or adapted) :class:`FeatureMap` ``(C, h, w)``.
        vertices: ``(V, 3)`` canonicalized mesh vertices.
        faces: ``(F, 3)`` triangle indices.
        camera: camera rendering the mesh onto the image (``H x W``).
        mask: ``(H, W)`` bool object mask.
        settings: :class:`PartFusionSettings`.
        record: the image's stage-1 record (``record.json``), or ``None``.
        descriptor: ``describe(vertices, faces) -> (V, D)`` (default: the CPU
            :class:`~geocorr.features.geometric.GeometricDescriptor`).
        vertex_desc: ``(V, D)`` precomputed per-vertex descriptors (skips ``descriptor``).

    Returns:
        :class:`PartFusion`.

    Raises:
        ValueError: a mask of another size than the camera's image, or a 2D map
            for another image size.
    """
    from geocorr.features.render import render_descriptors

    s = settings or PartFusionSettings()
    if vertex_desc is None:
        if descriptor is None:
            from geocorr.features.geometric import GeometricDescriptor

            descriptor = GeometricDescriptor()
        vertex_desc = descriptor.describe(vertices, faces)
    part = render_descriptors(vertices, faces, vertex_desc, camera, mask, features, name=s.name)
    conf = None
    if s.confidence is not None:
        conf = stage1_confidence(render_iou(vertices, faces, camera, mask), record, s.confidence)
    share = part_share(conf, s)
    return PartFusion(fused=_concat(features, part, share), part=part, share=share,
                      confidence=conf)


def fuse_cached(features: FeatureMap, stage1: str | os.PathLike[str], category: str, stem: str,
                settings: PartFusionSettings | None = None, *, descriptor: Any = None
                ) -> PartFusion:
    """:func:`fuse_part` with the mesh, camera, mask and record of a stage-1 cache entry.

    Raises:
        FileNotFoundError: the image is not in the cache (the message names it).
    """
    from geocorr.reconstruct.pipeline import load_cached

    c = load_cached(stage1, category, stem)
    return fuse_part(features, c.vertices, c.faces, c.camera, c.mask, settings,
                     record=c.record, descriptor=descriptor)

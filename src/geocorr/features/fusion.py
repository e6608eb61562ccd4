"""Fuse feature sources: per-source L2 normalisation, weights, concatenation (method step 6).

Every source is resampled onto the first map's grid, each cell's vector is
L2-normalised separately per source, multiplied by the **square root** of the
source's weight, and the sources are concatenated. A weight is thus the
source's *share of the similarity*: the fused block of source ``k`` has norm
``sqrt(w_k)`` (0 where the source is zero, e.g. a rendered part map off the
mask), and for weights summing to 1 the dot product of two fused cells with
every source present is exactly ``sum_k w_k cos_k``, which is also their cosine
(both norms are 1). Scaling the unit vectors by ``w_k`` itself (as before)
made the shares ``w_k^2 / sum w^2``: a part weight of 1/6 was a 1/26 share.

Default weights: part sources (``"partfield"``, ``"geometric"``, ``"part"``)
share ``gamma`` = :attr:`geocorr.features.part_fusion.PartFusionSettings.part_weight`
(the one default of the part weight); the 2D sources split the rest evenly.
With no part source present the 2D sources split 1 evenly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from geocorr.features.base import FeatureMap

__all__ = ["FusionSettings", "PART_SOURCES", "resolve_weights", "l2_normalize", "resample",
           "fuse"]

PART_SOURCES = ("partfield", "geometric", "part")
"""Source names treated as 3D part descriptors by the default weights."""


def _default_part_weight() -> float:
    from geocorr.features.part_fusion import PartFusionSettings

    return PartFusionSettings().part_weight


@dataclass
class FusionSettings:
    """Fusion weights.

    Attributes:
        weights: explicit per-source weights (shares of the similarity, module
            doc); when given, every fused source must be listed (a weight of 0
            drops the source). Empty = defaults.
        part_weight: total weight ``gamma`` of the part sources under the
            default weights; defaults to ``PartFusionSettings().part_weight``
            (defined there only).
        part_sources: which names count as part sources.
        eps: vectors with norm below this are treated as zero (stay zero).
    """

    weights: dict[str, float] = field(default_factory=dict)
    part_weight: float = field(default_factory=_default_part_weight)
    part_sources: tuple[str, ...] = PART_SOURCES
    eps: float = 1e-8

    def __post_init__(self) -> None:
        bad = {k: w for k, w in self.weights.items() if not (w >= 0 and np.isfinite(w))}
        if bad:
            raise ValueError(f"fusion weights must be finite and >= 0, got {bad}")
        if not 0 <= self.part_weight <= 1:
            raise ValueError(f"part_weight must be in [0, 1], got {self.part_weight}")


def resolve_weights(names: list[str], settings: FusionSettings) -> dict[str, float]:
    """Weight of every source in ``names``.

    Args:
        names: source names in fusion order.
        settings: fusion settings.

    Returns:
        ``{name: weight}`` in the order of ``names``.

    Raises:
        ValueError: explicit weights that miss a source.
    """
    if settings.weights:
        missing = [n for n in names if n not in settings.weights]
        if missing:
            raise ValueError(f"FusionSettings.weights has no weight for source(s) {missing} "
                             f"(given: {sorted(settings.weights)})")
        return {n: float(settings.weights[n]) for n in names}
    part = [n for n in names if n in settings.part_sources]
    other = [n for n in names if n not in settings.part_sources]
    out: dict[str, float] = {}
    if not other:
        return {n: 1.0 / len(part) for n in names}
    rest = 1.0 - settings.part_weight if part else 1.0
    for n in names:
        out[n] = settings.part_weight / len(part) if n in part else rest / len(other)
    return out


def l2_normalize(features: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """Normalise ``(C, h, w)`` features per cell over ``C``; vectors with norm < eps become 0."""
    f = np.asarray(features, dtype=np.float32)
    n = np.linalg.norm(f, axis=0, keepdims=True)
    return np.where(n >= eps, f / np.maximum(n, eps), 0.0).astype(np.float32)


def resample(fmap: FeatureMap, like: FeatureMap) -> np.ndarray:
    """``fmap``'s features at ``like``'s cell centres, ``(C, h, w)`` float32.

    Identical grids are returned as they are; otherwise bilinear sampling at
    the centres in original-image pixels (:meth:`FeatureMap.sample`, border clamp).
    """
    a, b = fmap.transform, like.transform
    if (a.src_width, a.src_height) != (b.src_width, b.src_height):
        raise ValueError(f"feature map {fmap.name!r} is for a {a.src_width}x{a.src_height} "
                         f"image, reference {like.name!r} for {b.src_width}x{b.src_height}")
    if fmap.grid_size == like.grid_size and a == b:
        return np.asarray(fmap.features, dtype=np.float32)
    h, w = like.grid_size
    vals = fmap.sample(like.cell_centers().reshape(-1, 2))  # (h*w, C)
    return np.ascontiguousarray(vals.T.reshape(-1, h, w))


def fuse(maps: dict[str, FeatureMap], settings: FusionSettings | None = None) -> FeatureMap:
    """Fuse several feature maps of one image into one.

    Args:
        maps: ``{source name: FeatureMap}``; the first entry is the reference
            grid. All maps must describe the same image size.
        settings: weights (defaults per the module doc).

    Returns:
        :class:`FeatureMap` ``(sum C_k, h, w)`` on the reference grid (block
        ``k`` = ``sqrt(w_k)`` times the unit vectors of source ``k``), named
        ``"a+b+..."`` in fusion order; sources with weight 0 are left out.

    Raises:
        ValueError: no maps, or maps for different image sizes, or missing weights.
    """
    settings = settings or FusionSettings()
    if not maps:
        raise ValueError("fuse needs at least one feature map")
    names = list(maps)
    weights = resolve_weights(names, settings)
    ref = maps[names[0]]
    blocks, used = [], []
    for n in names:
        if weights[n] == 0:
            continue
        x = l2_normalize(resample(maps[n], ref), settings.eps)
        blocks.append(math.sqrt(weights[n]) * x)
        used.append(n)
    if not blocks:
        raise ValueError(f"every fusion weight is 0: {weights}")
    return FeatureMap(np.concatenate(blocks, axis=0).astype(np.float32), ref.transform,
                      "+".join(used))

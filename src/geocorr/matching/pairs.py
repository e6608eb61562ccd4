"""Pair sampling for pseudo-labels without pose annotations (DIY-SC's chaining).

Each image's azimuth is *estimated* from stage 1's canonicalized camera: the
camera centre ``C = -R^T t`` in the canonical object frame (X front, Y the
object's left, Z up) gives ``azimuth = atan2(C_y, C_x)`` in degrees, in
``[0, 360)``: 0 = the object faces the camera, growing as the camera orbits
counter-clockwise seen from above (towards the object's left). Azimuths fall
into ``n_bins`` bins centred on multiples of ``360 / n_bins`` (bin 0 = frontal).

Per category: all unordered image pairs whose bins are at most
``neighbor_bins`` apart (circularly) are the *chained* pool (similar
viewpoints give many reliable candidates); the rest is the *random* pool. A
budget of ``pairs_per_category`` takes ``round(chain_fraction * budget)``
pairs from the chained pool and fills up from the random pool (and vice versa
when one runs short), each drawn without replacement by a generator seeded
from ``(seed, category)``: the same seed gives the same pairs, whatever other
categories are present. The source/target order of a pair is also drawn.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from geocorr.geometry.camera import Camera

__all__ = ["ImagePair", "PairSamplingSettings", "estimated_azimuth", "azimuth_bin",
           "sample_pairs"]


@dataclass(frozen=True, order=True)
class ImagePair:
    """An ordered image pair of one category.

    Attributes:
        category: category name.
        source: source image stem.
        target: target image stem.
    """

    category: str
    source: str
    target: str

    @property
    def pair_id(self) -> str:
        """Stable id ``<category>:<source>:<target>``."""
        return f"{self.category}:{self.source}:{self.target}"


@dataclass
class PairSamplingSettings:
    """Settings of :func:`sample_pairs`.

    Attributes:
        pairs_per_category: budget per category (capped by the number of
            distinct unordered pairs).
        n_bins: azimuth bins (8, SPair's / DIY-SC's 45 degree bins).
        neighbor_bins: chained pairs are at most this many bins apart (1 = DIY-SC's ±1).
        chain_fraction: share of the budget taken from the chained pool (0.75:
            mostly similar viewpoints, some wide-baseline pairs for variety).
        seed: random seed.
    """

    pairs_per_category: int = 200
    n_bins: int = 8
    neighbor_bins: int = 1
    chain_fraction: float = 0.75
    seed: int = 0

    def __post_init__(self) -> None:
        if self.pairs_per_category < 0:
            raise ValueError(f"pairs_per_category must be >= 0, got {self.pairs_per_category}")
        if self.n_bins < 1:
            raise ValueError(f"n_bins must be >= 1, got {self.n_bins}")
        if self.neighbor_bins < 0:
            raise ValueError(f"neighbor_bins must be >= 0, got {self.neighbor_bins}")
        if not 0.0 <= self.chain_fraction <= 1.0:
            raise ValueError(f"chain_fraction must be in [0, 1], got {self.chain_fraction}")


def estimated_azimuth(camera: Camera) -> float:
    """Azimuth in degrees ``[0, 360)`` of the camera centre in the canonical frame (module doc)."""
    c = -np.asarray(camera.R, float).T @ np.asarray(camera.t, float)
    return float(np.degrees(np.arctan2(c[1], c[0])) % 360.0)


def azimuth_bin(azimuth_deg: float, n_bins: int = 8) -> int:
    """Bin index of an azimuth; bins are centred on multiples of ``360 / n_bins``."""
    width = 360.0 / n_bins
    return int(np.floor(((azimuth_deg + width / 2) % 360.0) / width)) % n_bins


def _rng(seed: int, category: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(category.encode())])


def sample_pairs(images: Iterable[tuple[str, str, float]],
                 settings: PairSamplingSettings | None = None) -> list[ImagePair]:
    """Sample pseudo-label pairs per category by estimated azimuth (module doc).

    Args:
        images: ``(category, stem, azimuth_deg)`` per image (order does not matter).
        settings: see :class:`PairSamplingSettings`.

    Returns:
        Pairs sorted by category then draw order; no unordered pair twice.

    Raises:
        ValueError: an image listed twice.
    """
    s = settings or PairSamplingSettings()
    by_cat: dict[str, dict[str, float]] = {}
    for cat, stem, az in images:
        d = by_cat.setdefault(cat, {})
        if stem in d:
            raise ValueError(f"sample_pairs: image {cat}/{stem} listed twice")
        d[stem] = float(az)
    out: list[ImagePair] = []
    for cat in sorted(by_cat):
        stems = sorted(by_cat[cat])
        bins = np.array([azimuth_bin(by_cat[cat][x], s.n_bins) for x in stems])
        i, j = np.triu_indices(len(stems), k=1)
        gap = np.abs(bins[i] - bins[j])
        gap = np.minimum(gap, s.n_bins - gap)
        chained = np.flatnonzero(gap <= s.neighbor_bins)
        rest = np.flatnonzero(gap > s.neighbor_bins)
        rng = _rng(s.seed, cat)
        budget = min(s.pairs_per_category, len(i))
        n_chain = min(len(chained), int(round(s.chain_fraction * budget)))
        n_rest = min(len(rest), budget - n_chain)
        n_chain = min(len(chained), budget - n_rest)
        pick = np.concatenate([rng.permutation(chained)[:n_chain],
                               rng.permutation(rest)[:n_rest]])
        flip = rng.random(len(pick)) < 0.5
        for k, fl in zip(pick, flip, strict=True):
            a, b = stems[i[k]], stems[j[k]]
            out.append(ImagePair(cat, b, a) if fl else ImagePair(cat, a, b))
    return out

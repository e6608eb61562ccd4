"""The pseudo-label filters and the settings of a pseudo-label run (recorded in each store)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from geocorr.features.part_fusion import PartFusionSettings
from geocorr.matching.pair import MatchSettings
from geocorr.matching.pairs import PairSamplingSettings
from geocorr.matching.sphere import SphereSettings
from geocorr.matching.verify import VerifySettings

__all__ = ["Filter", "FILTERS", "check_filters", "LabelSettings"]

Filter = Literal["cyclic", "sphere", "geodesic"]
"""A pseudo-label filter: ``"cyclic"`` keeps every candidate (no 3D check),
``"sphere"`` is DIY-SC's spherical filter, ``"geodesic"`` the paper's bicyclic
geodesic verification."""

FILTERS: tuple[Filter, ...] = ("cyclic", "sphere", "geodesic")
"""Every filter, weakest first (the order studies and tables use)."""


def check_filters(filters: Iterable[str]) -> tuple[Filter, ...]:
    """``filters`` as a tuple, checked.

    Raises:
        ValueError: empty, or a name not in :data:`FILTERS`.
    """
    out = tuple(filters)
    bad = [f for f in out if f not in FILTERS]
    if bad or not out:
        raise ValueError(f"filters must be a non-empty subset of {FILTERS}, got {out}")
    return out


@dataclass
class LabelSettings:
    """Settings of the pseudo-label run (recorded in the store).

    Attributes:
        filter: ``"geodesic"`` (default, the paper's), ``"sphere"`` (DIY-SC
            baseline) or ``"cyclic"`` (no 3D verification); see :data:`Filter`.
        backbone: 2D backbone name (:func:`geocorr.features.registry.make_backbones`).
        fusion: how the rendered part descriptor is fused with the 2D
            features (:class:`~geocorr.features.part_fusion.PartFusionSettings`:
            its part weight, scaled per image by stage-1 confidence;
            ``part_weight`` 0 = 2D features only).
        hks_weight: heat-kernel weight of the CPU geometric part descriptor.
        split: dataset split whose images are paired (``trn``: labels train the adapter).
        match: candidate matching settings (stride 2 keeps ~1/4 of the
            cells: enough candidates, a quarter of the verification work).
        verify: geodesic verification settings.
        sphere: spherical filter settings.
        pairs: pair sampling settings (budget, bins, seed).
    """

    filter: Filter = "geodesic"
    backbone: str = "xfeat"
    fusion: PartFusionSettings = field(default_factory=PartFusionSettings)
    hks_weight: float = 0.5
    split: str = "trn"
    match: MatchSettings = field(default_factory=lambda: MatchSettings(stride=2))
    verify: VerifySettings = field(default_factory=VerifySettings)
    sphere: SphereSettings = field(default_factory=SphereSettings)
    pairs: PairSamplingSettings = field(default_factory=PairSamplingSettings)

    def __post_init__(self) -> None:
        if self.filter not in FILTERS:
            raise ValueError(f"filter must be geodesic, sphere or cyclic, got {self.filter!r}")

"""Pair sampling by estimated azimuth: conventions, chaining, budget, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from geocorr.geometry.camera import Camera, look_at
from geocorr.matching.pairs import (
    PairSamplingSettings,
    azimuth_bin,
    estimated_azimuth,
    sample_pairs,
)


def _cam(eye):
    R, t = look_at(np.asarray(eye, float), np.zeros(3))
    return Camera(np.array([[50.0, 0, 32], [0, 50, 32], [0, 0, 1]]), R, t, 64, 64)


@pytest.mark.parametrize(("eye", "az"), [((5, 0, 1), 0.0), ((0, 5, 1), 90.0),
                                         ((-5, 0, 2), 180.0), ((3, -3, 1), 315.0)])
def test_azimuth_convention(eye, az):
    # camera in front (+X) = 0; towards the object's left (+Y) = 90
    assert estimated_azimuth(_cam(eye)) == pytest.approx(az, abs=1e-9)


def test_bins_centred_on_multiples():
    assert [azimuth_bin(a) for a in (0, 22.4, 22.6, 350, 180, 337.4)] == [0, 0, 1, 0, 4, 7]


def _images(n=12):
    return [("car", f"car_{k:04d}", 30.0 * k) for k in range(n)] + \
           [("dog", f"dog_{k:04d}", 45.0 * k) for k in range(8)]


def test_budget_chain_and_determinism():
    s = PairSamplingSettings(pairs_per_category=20, chain_fraction=0.5, seed=3)
    pairs = sample_pairs(_images(), s)
    assert len(pairs) == 40
    assert pairs == sample_pairs(list(reversed(_images())), s)
    assert pairs != sample_pairs(_images(), PairSamplingSettings(20, chain_fraction=0.5, seed=4))
    unordered = {(p.category, *sorted((p.source, p.target))) for p in pairs}
    assert len(unordered) == len(pairs)
    az = {stem: a for _, stem, a in _images()}
    gaps = []
    for p in pairs:
        g = abs(azimuth_bin(az[p.source]) - azimuth_bin(az[p.target]))
        gaps.append(min(g, 8 - g) <= 1)
    assert sum(gaps[:10]) == 10                  # car: chained half first
    # dog: one image per bin -> only 8 chained pairs; the random pool fills up to 20
    assert sum(gaps[20:28]) == 8 and sum(gaps[28:40]) == 0
    # categories are sampled independently: dropping dog leaves car's pairs unchanged
    only_car = sample_pairs([x for x in _images() if x[0] == "car"], s)
    assert only_car == [p for p in pairs if p.category == "car"]


def test_budget_capped_and_pair_id():
    pairs = sample_pairs([("a", "x", 0.0), ("a", "y", 10.0), ("a", "z", 200.0)],
                         PairSamplingSettings(pairs_per_category=50))
    assert len(pairs) == 3
    assert pairs[0].pair_id.count(":") == 2


def test_bad_inputs():
    with pytest.raises(ValueError, match="twice"):
        sample_pairs([("a", "x", 0.0), ("a", "x", 1.0)])
    with pytest.raises(ValueError, match="chain_fraction"):
        PairSamplingSettings(chain_fraction=2)

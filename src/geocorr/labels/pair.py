"""One pair: its images' inputs, its candidates, and what each filter keeps (pure, no I/O).

:func:`label_all_filters` finds a pair's candidates once -- nearest neighbours
+ relaxed cyclic consistency on the fused features
(:func:`geocorr.matching.match_pair`) -- and asks each requested filter about
exactly those candidates: ``"cyclic"`` keeps them all,
``"geodesic"`` runs :func:`~geocorr.matching.verify.verify_geodesic`,
``"sphere"`` :func:`~geocorr.matching.sphere.verify_sphere`. The result,
:class:`FilteredCandidates`, holds one keep-mask per filter, so filters differ
only in what they keep, never in what they were shown;
:meth:`FilteredCandidates.labels` cuts out one filter's
:class:`~geocorr.labels.store.PairLabels`, the rows a store holds for the pair.
:func:`label_pair` is that with the run's one filter.

Pure (same inputs -> same labels), so the loop over pairs
(:class:`geocorr.labels.runner.PairLoop`) can run it on any engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from geocorr.features.base import FeatureMap
from geocorr.geometry.camera import Camera
from geocorr.labels.settings import FILTERS, Filter, LabelSettings, check_filters
from geocorr.labels.store import PairLabels
from geocorr.matching.pair import match_pair
from geocorr.matching.pairs import ImagePair
from geocorr.matching.sphere import verify_sphere
from geocorr.matching.verify import MeshIndex, verify_geodesic

__all__ = ["ImageInputs", "PairInputs", "FilteredCandidates", "label_all_filters", "label_pair"]


@dataclass(frozen=True, eq=False)
class ImageInputs:
    """Everything :func:`label_all_filters` needs about one image.

    Attributes:
        category: category name.
        stem: image stem.
        features: fused 2D + part :class:`FeatureMap` ``(C, h, w)``.
        mask: ``(H, W)`` bool object mask (stage 1's).
        camera: stage 1's canonicalized camera.
        index: the mesh's verification index.
    """

    category: str
    stem: str
    features: FeatureMap
    mask: np.ndarray
    camera: Camera
    index: MeshIndex


@dataclass(frozen=True, eq=False)
class PairInputs:
    """The two images of a pair."""

    source: ImageInputs
    target: ImageInputs


@dataclass(frozen=True, eq=False)
class FilteredCandidates:
    """One pair's candidates and what each filter keeps.

    Attributes:
        candidates: every candidate, as the ``"cyclic"`` filter labels them
            (pair id and images, ``src_uv`` / ``trg_uv`` ``(N, 2)`` float64
            pixels, ``score`` ``(N,)`` fused similarity, ``error`` zeros).
        keep: filter name -> ``(N,)`` bool keep-mask (``"cyclic"``: all True).
        errors: filter name -> ``(N,)`` float64 filter error (NaN where a ray
            missed a mesh; zeros for ``"cyclic"``).
        n_missed: filter name -> candidates dropped because a ray missed.
    """

    candidates: PairLabels
    keep: dict[str, np.ndarray]
    errors: dict[str, np.ndarray]
    n_missed: dict[str, int]

    def __len__(self) -> int:
        return len(self.candidates.src_uv)

    def labels(self, name: str) -> PairLabels:
        """The pair's labels under filter ``name``, in candidate order (what a store holds).

        Raises:
            ValueError: a filter that was not applied.
        """
        if name not in self.keep:
            raise ValueError(f"unknown filter {name!r}; have {sorted(self.keep)}")
        c = self.candidates
        k = np.flatnonzero(self.keep[name])
        return replace(c, src_uv=c.src_uv[k], trg_uv=c.trg_uv[k], score=c.score[k],
                       error=np.asarray(self.errors[name][k], np.float64),
                       n_missed=int(self.n_missed[name]))


def label_all_filters(pair: ImagePair, inputs: PairInputs, settings: LabelSettings | None = None,
                      filters: Sequence[Filter] = FILTERS) -> FilteredCandidates:
    """Candidates of one pair and each filter's keep-mask (module doc).

    Args:
        pair: the pair (``inputs`` must be its two images).
        inputs: both images' :class:`ImageInputs`.
        settings: run settings (matching, verification and sphere thresholds);
            its ``filter`` field is ignored.
        filters: the filters to apply (default: all of :data:`FILTERS`).

    Returns:
        :class:`FilteredCandidates` with a keep-mask for each of ``filters``.

    Raises:
        ValueError: ``inputs`` are not the pair's images; an unknown filter.
    """
    s = settings or LabelSettings()
    filters = check_filters(filters)
    src, trg = inputs.source, inputs.target
    if (src.category, src.stem, trg.stem) != (pair.category, pair.source, pair.target):
        raise ValueError(f"inputs ({src.category}/{src.stem}, {trg.stem}) do not belong to "
                         f"pair {pair.pair_id}")
    m = match_pair(src.features, trg.features, src.mask, trg.mask, s.match)
    cand = m.subset(np.flatnonzero(m.kept["cyclic"]))
    n = len(cand)
    src_uv = np.asarray(cand.src_uv, np.float64)
    trg_uv = np.asarray(cand.trg_uv, np.float64)
    candidates = PairLabels(pair_id=pair.pair_id, category=pair.category, source=pair.source,
                            target=pair.target, src_uv=src_uv, trg_uv=trg_uv,
                            score=np.asarray(cand.similarity, np.float64), error=np.zeros(n),
                            n_candidates=n, n_missed=0)
    keep: dict[str, np.ndarray] = {}
    errors: dict[str, np.ndarray] = {}
    missed: dict[str, int] = {}
    for name in filters:
        if name == "cyclic" or n == 0:
            keep[name] = np.full(n, name == "cyclic")
            errors[name], missed[name] = np.zeros(n), 0
            continue
        if name == "geodesic":
            res = verify_geodesic(src.index, trg.index, src.camera, trg.camera, src_uv, trg_uv,
                                  s.verify)
        else:
            res = verify_sphere(src.index, trg.index, src.camera, trg.camera, src_uv, trg_uv,
                                s.sphere)
        keep[name] = np.asarray(res.kept, dtype=bool)
        errors[name] = np.asarray(res.errors, dtype=np.float64)
        missed[name] = int(res.n_missed)
    return FilteredCandidates(candidates, keep, errors, missed)


def label_pair(pair: ImagePair, inputs: PairInputs, settings: LabelSettings) -> PairLabels:
    """The pair's labels under ``settings.filter`` (pure; module doc).

    Args:
        pair: the pair (its images are ``inputs.source`` / ``inputs.target``).
        inputs: both images' :class:`ImageInputs`.
        settings: run settings.

    Returns:
        :class:`PairLabels` with the kept matches in candidate order.
    """
    return label_all_filters(pair, inputs, settings, (settings.filter,)).labels(settings.filter)

"""Pairs -> verified pseudo-labels: a pure per-pair function and a resumable local loop.

Per image (:func:`prepare_image`, reads stage 1's cache, never ground truth):
2D features (from the feature cache when given), the per-vertex part
descriptor of the canonicalized mesh rendered into the image with the
stage-1 camera and fused with the 2D features, and the mesh's
:class:`~geocorr.matching.verify.MeshIndex`.

Per pair (:func:`label_pair`, pure: same inputs -> same labels, no I/O, so it
can run on a distributed engine): candidates by NN + relaxed cyclic
consistency on the fused features (:func:`geocorr.matching.match_pair`), then
the chosen filter -- ``"geodesic"`` (bicyclic geodesic verification),
``"sphere"`` (DIY-SC's spherical filter) or ``"cyclic"`` (candidates kept as is).

The loop (:func:`run_pseudolabels`) samples pairs by estimated azimuth,
skips pairs already in the store and writes each pair in one transaction,
so a killed run restarted with the same settings ends with exactly the store
of an uninterrupted run.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from geocorr.data.images import read_rgb
from geocorr.data.paths import inside
from geocorr.features.base import FeatureMap
from geocorr.features.part_fusion import PartFusionSettings
from geocorr.geometry.camera import Camera
from geocorr.labels.store import LabelStore, PairLabels
from geocorr.matching.pair import MatchSettings, match_pair
from geocorr.matching.pairs import ImagePair, PairSamplingSettings
from geocorr.matching.sphere import SphereSettings, verify_sphere
from geocorr.matching.verify import MeshIndex, VerifySettings, build_mesh_index, verify_geodesic

__all__ = ["LabelSettings", "ImageInputs", "PairInputs", "prepare_image", "label_pair",
           "RunSummary", "run_pseudolabels", "list_images"]

Filter = Literal["geodesic", "sphere", "cyclic"]


@dataclass
class LabelSettings:
    """Settings of the pseudo-label run (recorded in the store).

    Attributes:
        filter: ``"geodesic"`` (default, the paper's), ``"sphere"`` (DIY-SC
            baseline) or ``"cyclic"`` (no 3D verification).
        backbone: 2D backbone name (:func:`geocorr.features.registry.make_backbone`).
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
        if self.filter not in ("geodesic", "sphere", "cyclic"):
            raise ValueError(f"filter must be geodesic, sphere or cyclic, got {self.filter!r}")


@dataclass(frozen=True, eq=False)
class ImageInputs:
    """Everything :func:`label_pair` needs about one image.

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


def prepare_image(dataset: str | os.PathLike[str], cache: str | os.PathLike[str], category: str,
                  stem: str, backbone, descriptor, settings: LabelSettings,
                  feature_cache=None) -> ImageInputs:
    """Stage-2 inputs of one image from stage 1's cache (no ground truth read).

    Args:
        dataset: SPair-layout dataset root (for ``JPEGImages``).
        cache: stage-1 cache root (``CACHE/<cat>/<stem>/{mesh.ply,camera.json,mask.png}``).
        category: category name.
        stem: image stem.
        backbone: a :class:`~geocorr.features.base.Backbone`.
        descriptor: a :class:`~geocorr.features.part_descriptor.PartDescriptor`.
        settings: run settings.
        feature_cache: optional :class:`~geocorr.features.cache.FeatureCache`.
    """
    from geocorr.features.part_fusion import fuse_part
    from geocorr.reconstruct.pipeline import load_cached

    c = load_cached(cache, category, stem)
    image = read_rgb(inside(dataset, "JPEGImages", category, f"{stem}.jpg",
                             source=f"image {category}/{stem}", what="image"))
    if feature_cache is not None:
        fmap = feature_cache.features_for(image, backbone, mask=c.mask, category=category)
    else:
        fmap = backbone.extract(image)
    desc = descriptor.describe(c.vertices, c.faces)
    if settings.fusion.part_weight > 0:
        fused = fuse_part(fmap, c.vertices, c.faces, c.camera, c.mask, settings.fusion,
                          record=c.record, vertex_desc=desc).fused
    else:
        fused = fmap
    index = build_mesh_index(c.vertices, c.faces, desc, settings.verify)
    return ImageInputs(category, stem, fused, c.mask, c.camera, index)


def label_pair(pair: ImagePair, inputs: PairInputs, settings: LabelSettings) -> PairLabels:
    """Candidates + verification for one pair (pure; module doc).

    Args:
        pair: the pair (its images are ``inputs.source`` / ``inputs.target``).
        inputs: both images' :class:`ImageInputs`.
        settings: run settings.

    Returns:
        :class:`PairLabels` with the kept matches in candidate order.
    """
    src, trg = inputs.source, inputs.target
    if (src.category, src.stem, trg.stem) != (pair.category, pair.source, pair.target):
        raise ValueError(f"inputs ({src.category}/{src.stem}, {trg.stem}) do not belong to "
                         f"pair {pair.pair_id}")
    m = match_pair(src.features, trg.features, src.mask, trg.mask, settings.match)
    cand = m.subset(np.flatnonzero(m.kept["cyclic"]))
    n = len(cand)
    if settings.filter == "cyclic" or n == 0:
        keep = np.ones(n, dtype=bool)
        err = np.zeros(n)
        missed = 0
    else:
        if settings.filter == "geodesic":
            res = verify_geodesic(src.index, trg.index, src.camera, trg.camera, cand.src_uv,
                                  cand.trg_uv, settings.verify)
        else:
            res = verify_sphere(src.index, trg.index, src.camera, trg.camera, cand.src_uv,
                                cand.trg_uv, settings.sphere)
        keep, err, missed = res.kept, res.errors, res.n_missed
    k = np.flatnonzero(keep)
    return PairLabels(pair_id=pair.pair_id, category=pair.category, source=pair.source,
                      target=pair.target, src_uv=np.asarray(cand.src_uv[k], np.float64),
                      trg_uv=np.asarray(cand.trg_uv[k], np.float64),
                      score=np.asarray(cand.similarity[k], np.float64),
                      error=np.asarray(err[k], np.float64), n_candidates=n, n_missed=missed)


def list_images(dataset: str | os.PathLike[str], cache: str | os.PathLike[str], split: str
                ) -> list[tuple[str, str, float]]:
    """``(category, stem, estimated azimuth)`` of the split's images finished in stage 1.

    Raises:
        ValueError: no image of the split is in the cache.
    """
    from geocorr.geometry.camera import load_camera
    from geocorr.matching.pairs import estimated_azimuth
    from geocorr.reconstruct.pipeline import dataset_images

    out = []
    for cat, stem in dataset_images(dataset, split):
        d = inside(cache, cat, stem, source=f"stage-1 cache {cache}", what="image folder")
        if (d / "record.json").is_file():
            out.append((cat, stem, estimated_azimuth(load_camera(d / "camera.json"))))
    if not out:
        raise ValueError(f"no image of split {split!r} of {dataset} has a finished stage-1 "
                         f"entry (record.json) in {cache}; run geocorr reconstruct first")
    return out


@dataclass(frozen=True)
class RunSummary:
    """What a run did.

    Attributes:
        pairs: pairs sampled.
        skipped: pairs already in the store (resumed).
        labelled: pairs labelled now.
        labels: labels written now.
        failures: pairs whose inputs were bad (``ValueError`` / missing file:
            a malformed mesh, a mask of the wrong size), not written (a rerun
            retries them), as :class:`~geocorr.engine.ItemFailure` s.
    """

    pairs: int
    skipped: int
    labelled: int
    labels: int
    failures: tuple = ()


def settings_record(settings: LabelSettings, backbone_key: str, descriptor_key: str) -> dict:
    """The JSON-able settings the store is keyed on."""
    return {"settings": asdict(settings), "backbone": backbone_key, "descriptor": descriptor_key}


class PairLabeller:
    """Per-worker state of a run: the backbone, descriptor and a per-category image memo.

    Built once per worker (:func:`run_pseudolabels` passes it as the engine's
    ``setup``); :meth:`label` is the per-pair function, the same on every engine.
    Pairs come grouped by category, so the memo of prepared images is cleared
    when the category changes (a worker keeps one category's images at most).

    Args:
        dataset: SPair-layout dataset root.
        cache: stage-1 cache root.
        settings: run settings.
        feature_cache: optional feature cache folder.
        device: torch device of the backbone.
    """

    def __init__(self, dataset: str | os.PathLike[str], cache: str | os.PathLike[str],
                 settings: LabelSettings, feature_cache: str | os.PathLike[str] | None = None,
                 device: str = "cpu") -> None:
        from geocorr.features.cache import FeatureCache
        from geocorr.features.geometric import GeometricDescriptor, GeometricSettings
        from geocorr.features.registry import make_backbone

        self.dataset, self.cache, self.settings = dataset, cache, settings
        self.backbone = make_backbone(settings.backbone, device=device)
        self.descriptor = GeometricDescriptor(GeometricSettings(hks_weight=settings.hks_weight))
        self.feature_cache = FeatureCache(feature_cache) if feature_cache is not None else None
        self._memo: dict[str, ImageInputs] = {}
        self._memo_cat: str | None = None

    def inputs(self, category: str, stem: str) -> ImageInputs:
        """The memoised :func:`prepare_image` of one image."""
        if category != self._memo_cat:
            self._memo.clear()
            self._memo_cat = category
        if stem not in self._memo:
            self._memo[stem] = prepare_image(self.dataset, self.cache, category, stem,
                                             self.backbone, self.descriptor, self.settings,
                                             self.feature_cache)
        return self._memo[stem]

    def label(self, pair: ImagePair) -> PairLabels:
        """:func:`label_pair` of one pair with its images' memoised inputs."""
        return label_pair(pair, PairInputs(self.inputs(pair.category, pair.source),
                                           self.inputs(pair.category, pair.target)),
                          self.settings)


def _label(labeller: PairLabeller, pair: ImagePair) -> PairLabels:
    return labeller.label(pair)


def _same(x):
    return x


def run_pseudolabels(dataset: str | os.PathLike[str], cache: str | os.PathLike[str],
                     out: str | os.PathLike[str], settings: LabelSettings | None = None,
                     feature_cache: str | os.PathLike[str] | None = None,
                     progress: bool = True, device: str = "cpu", engine=None) -> RunSummary:
    """Label every sampled pair into the store at ``out``, resuming a previous run.

    The pairs are labelled by ``engine`` (in chunks of one category on Ray) and
    written here, by the only writer of the store, as they complete: the store's
    rows, settings and provenance are those of a local run whatever the engine.

    Args:
        dataset: SPair-layout dataset root.
        cache: stage-1 cache root.
        out: SQLite store path.
        settings: run settings (must equal a resumed store's).
        feature_cache: optional feature cache folder for the 2D backbone.
        progress: show a rich progress bar.
        device: torch device of the backbone.
        engine: a :class:`~geocorr.engine.Engine` (default: local).

    Raises:
        StoreError: ``out`` holds labels made with other settings.
    """
    from functools import partial

    from geocorr.engine import ItemFailure
    from geocorr.engine.local import LocalEngine
    from geocorr.matching.pairs import sample_pairs

    s = settings or LabelSettings()
    engine = engine or LocalEngine()
    if engine.settings.engine == "local":
        keys = PairLabeller(dataset, cache, s, feature_cache, device)
        setup = partial(_same, keys)  # the driver's labeller does the work
    else:  # workers build their own (on their device); the driver's only gives the keys
        keys = PairLabeller(dataset, cache, s, None, "cpu")
        setup = partial(PairLabeller, dataset, cache, s, feature_cache, device)
    pairs = sample_pairs(list_images(dataset, cache, s.split), s.pairs)
    store = LabelStore(out, settings_record(s, keys.backbone.cache_key(),
                                            keys.descriptor.cache_key()))
    try:
        from geocorr import __version__

        store.set_meta("provenance", {"dataset": str(dataset), "cache": str(cache),
                                      "feature_cache": None if feature_cache is None
                                      else str(feature_cache), "pairs": len(pairs),
                                      "geocorr": __version__})
        done = store.done()
        todo = [p for p in pairs if p.pair_id not in done]
        n_labels = 0
        failures: list[ItemFailure] = []
        from rich.progress import Progress

        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task("pseudo-labels", total=len(todo))
            for _pair, lab in engine.map_items(_label, todo, setup=setup, locality=True,
                                               group=lambda p: p.category,
                                               label=lambda p: p.pair_id):
                if isinstance(lab, ItemFailure):
                    failures.append(lab)
                else:
                    store.write(lab)
                    n_labels += len(lab.src_uv)
                bar.advance(task)
    finally:
        store.close()
    return RunSummary(pairs=len(pairs), skipped=len(pairs) - len(todo),
                      labelled=len(todo) - len(failures), labels=n_labels,
                      failures=tuple(failures))

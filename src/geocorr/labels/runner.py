"""Stage 3's one loop: a dataset's sampled pairs -> candidates and each filter's decision.

Per image (:func:`prepare_image`, reads stage 1's cache, never ground truth):
2D features (from the feature cache when given), the per-vertex part
descriptor of the canonicalized mesh rendered into the image with the
stage-1 camera and fused with the 2D features, and the mesh's
:class:`~geocorr.matching.verify.MeshIndex`.

Per pair (:func:`~geocorr.labels.pair.label_all_filters`, pure, so it can
run on a distributed engine): candidates by NN + relaxed cyclic consistency
on the fused features, and a keep-mask per filter (:data:`FILTERS`:
``"cyclic"`` keeps them all, ``"sphere"`` DIY-SC's spherical filter,
``"geodesic"`` bicyclic geodesic verification).

The loop (:class:`PairLoop`) samples the split's pairs by estimated azimuth,
prepares each image once per worker (:class:`PairLabeller`) and yields every
pair's :class:`~geocorr.labels.pair.FilteredCandidates`; the store of a
filter is keyed on :meth:`PairLoop.store_settings`. Two consumers:

- :func:`run_pseudolabels` (``geocorr pseudolabel``, one filter) skips pairs
  already in the store and writes each pair in one transaction, so a killed
  run restarted with the same settings ends with exactly the store of an
  uninterrupted run;
- :func:`geocorr.evaluation.filter_study.run_filter_study` (every filter on
  the same candidates) scores them and writes one store per filter
  (:meth:`PairLoop.save`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial

from geocorr import __version__
from geocorr.data.images import read_rgb
from geocorr.data.paths import inside
from geocorr.engine.base import ITEM_ERRORS, Engine, ItemFailure, ready_state
from geocorr.engine.local import LocalEngine
from geocorr.features.cache import FeatureCache
from geocorr.features.geometric import GeometricDescriptor, GeometricSettings
from geocorr.features.part_fusion import fuse_part
from geocorr.features.registry import make_backbones
from geocorr.geometry.camera import load_camera
from geocorr.labels.pair import (
    FilteredCandidates,
    ImageInputs,
    PairInputs,
    label_all_filters,
    label_pair,
)
from geocorr.labels.settings import FILTERS, Filter, LabelSettings, check_filters
from geocorr.labels.store import LabelStore, PairLabels
from geocorr.matching.pairs import ImagePair, estimated_azimuth, sample_pairs
from geocorr.matching.verify import build_mesh_index

__all__ = ["Filter", "FILTERS", "LabelSettings", "ImageInputs", "PairInputs", "prepare_image",
           "label_pair", "label_all_filters", "FilteredCandidates", "list_images",
           "settings_record", "PairLabeller", "PairLoop", "RunSummary", "run_pseudolabels"]


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
    from geocorr.reconstruct.pipeline import load_cached  # imports torch

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


def list_images(dataset: str | os.PathLike[str], cache: str | os.PathLike[str], split: str
                ) -> list[tuple[str, str, float]]:
    """``(category, stem, estimated azimuth)`` of the split's images finished in stage 1.

    Raises:
        ValueError: no image of the split is in the cache.
    """
    from geocorr.reconstruct.pipeline import dataset_images  # imports torch

    out = []
    for cat, stem in dataset_images(dataset, split):
        d = inside(cache, cat, stem, source=f"stage-1 cache {cache}", what="image folder")
        if (d / "record.json").is_file():
            out.append((cat, stem, estimated_azimuth(load_camera(d / "camera.json"))))
    if not out:
        raise ValueError(f"no image of split {split!r} of {dataset} has a finished stage-1 "
                         f"entry (record.json) in {cache}; run geocorr reconstruct first")
    return out


def settings_record(settings: LabelSettings, backbone_key: str, descriptor_key: str) -> dict:
    """The JSON-able settings a store is keyed on (``settings.filter`` is the store's filter)."""
    return {"settings": asdict(settings), "backbone": backbone_key, "descriptor": descriptor_key}


class PairLabeller:
    """Per-worker state of the loop: the backbone, descriptor and a per-category image memo.

    Built once per worker (:class:`PairLoop` passes it as the engine's
    ``setup``); :meth:`candidates` is the per-pair function, the same on every
    engine. Pairs come grouped by category, so the memo of prepared images is
    cleared when the category changes (a worker keeps one category's images at most).

    Args:
        dataset: SPair-layout dataset root.
        cache: stage-1 cache root.
        settings: run settings.
        feature_cache: optional feature cache folder.
        device: torch device of the backbone.
        filters: the filters each pair is labelled with (default: ``settings.filter``).

    Attributes:
        prepare_s: seconds spent in :func:`prepare_image` so far.
    """

    def __init__(self, dataset: str | os.PathLike[str], cache: str | os.PathLike[str],
                 settings: LabelSettings, feature_cache: str | os.PathLike[str] | None = None,
                 device: str = "cpu", filters: Sequence[Filter] | None = None) -> None:
        self.dataset, self.cache, self.settings = dataset, cache, settings
        self.filters = check_filters(filters if filters is not None else (settings.filter,))
        self.backbone = make_backbones([settings.backbone], device=device)[settings.backbone]
        self.descriptor = GeometricDescriptor(GeometricSettings(hks_weight=settings.hks_weight))
        self.feature_cache = FeatureCache(feature_cache) if feature_cache is not None else None
        self.prepare_s = 0.0
        self._memo: dict[str, ImageInputs] = {}
        self._memo_cat: str | None = None

    def inputs(self, category: str, stem: str) -> ImageInputs:
        """The memoised :func:`prepare_image` of one image."""
        if category != self._memo_cat:
            self._memo.clear()
            self._memo_cat = category
        if stem not in self._memo:
            t = time.perf_counter()
            self._memo[stem] = prepare_image(self.dataset, self.cache, category, stem,
                                             self.backbone, self.descriptor, self.settings,
                                             self.feature_cache)
            self.prepare_s += time.perf_counter() - t
        return self._memo[stem]

    def candidates(self, pair: ImagePair) -> FilteredCandidates:
        """:func:`label_all_filters` of one pair with its images' memoised inputs."""
        return label_all_filters(pair, PairInputs(self.inputs(pair.category, pair.source),
                                                  self.inputs(pair.category, pair.target)),
                                 self.settings, self.filters)


def _candidates(labeller: PairLabeller, pair: ImagePair) -> FilteredCandidates:
    return labeller.candidates(pair)


class PairLoop:
    """The one loop over a dataset's sampled pairs (module doc).

    Samples the pairs at construction (so a missing stage-1 cache fails
    before any store is opened); :meth:`run` yields each pair's
    :class:`FilteredCandidates`, labelled by ``engine`` (in chunks of one
    category on Ray) with the same per-pair function on every engine.

    Args:
        dataset: SPair-layout dataset root.
        cache: stage-1 cache root.
        settings: run settings (pair sampling, backbone, fusion, matching,
            thresholds); ``filter`` is the default of ``filters``.
        filters: the filters each pair gets a keep-mask for.
        feature_cache: optional feature cache folder for the 2D backbone.
        device: torch device of the backbone.
        engine: a :class:`~geocorr.engine.Engine` (default: local).

    Attributes:
        settings: the run settings.
        filters: the filters applied.
        pairs: the sampled pairs, grouped by category.
        labeller: this process's :class:`PairLabeller`; it labels the pairs on
            the local engine, and on Ray only names the backbone and descriptor
            (the workers build their own on their device).

    Raises:
        ValueError: an unknown filter; no image of the split in the cache.
    """

    def __init__(self, dataset: str | os.PathLike[str], cache: str | os.PathLike[str],
                 settings: LabelSettings | None = None, filters: Sequence[Filter] | None = None,
                 feature_cache: str | os.PathLike[str] | None = None, device: str = "cpu",
                 engine: Engine | None = None) -> None:
        s = settings or LabelSettings()
        self.settings = s
        self.filters = check_filters(filters if filters is not None else (s.filter,))
        self.engine = engine or LocalEngine()
        if self.engine.settings.engine == "local":
            self.labeller = PairLabeller(dataset, cache, s, feature_cache, device, self.filters)
            self._setup = ready_state(self.labeller)  # the driver's labeller does the work
        else:
            self.labeller = PairLabeller(dataset, cache, s, None, "cpu", self.filters)
            self._setup = partial(PairLabeller, dataset, cache, s, feature_cache, device,
                                  self.filters)
        self.pairs = sample_pairs(list_images(dataset, cache, s.split), s.pairs)

    def store_settings(self, name: Filter) -> dict:
        """The settings record of the store of filter ``name`` (what ``geocorr pseudolabel
        --filter name`` keys its store on)."""
        return settings_record(replace(self.settings, filter=check_filters([name])[0]),
                               self.labeller.backbone.cache_key(),
                               self.labeller.descriptor.cache_key())

    def open_store(self, path: str | os.PathLike[str], name: Filter) -> LabelStore:
        """The writable store of filter ``name`` at ``path`` (resumed if it exists).

        Raises:
            StoreError: ``path`` holds labels made with other settings.
            StoreLockedError: another run writes it.
        """
        return LabelStore(path, self.store_settings(name))

    def run(self, pairs: Sequence[ImagePair] | None = None, progress: bool = False,
            errors: tuple[type[BaseException], ...] = ITEM_ERRORS
            ) -> Iterator[tuple[ImagePair, FilteredCandidates | ItemFailure]]:
        """Yield ``(pair, candidates or ItemFailure)`` for ``pairs`` as they complete.

        Args:
            pairs: a subset of :attr:`pairs` (e.g. those not yet in a store).
            progress: show a rich progress bar.
            errors: exceptions recorded as an :class:`~geocorr.engine.ItemFailure`
                of their pair (bad input: a malformed mesh, a missing image);
                ``()`` raises them.
        """
        from rich.progress import Progress

        todo = list(self.pairs if pairs is None else pairs)
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task(f"pseudo-labels ({', '.join(self.filters)})", total=len(todo))
            for pair, res in self.engine.map_items(_candidates, todo, setup=self._setup,
                                                   locality=True, group=lambda p: p.category,
                                                   errors=errors, label=lambda p: p.pair_id):
                yield pair, res
                bar.advance(task)

    def save(self, stores: Mapping[Filter, str | os.PathLike[str]],
             candidates: Sequence[FilteredCandidates], provenance: dict) -> None:
        """Write one store per filter from labelled candidates (each pair in one transaction).

        Args:
            stores: filter -> path of a new store (a pair already in it raises
                ``sqlite3.IntegrityError``; other settings raise
                :class:`~geocorr.labels.store.StoreError`).
            candidates: the pairs' :class:`FilteredCandidates` (from :meth:`run`).
            provenance: recorded as the stores' ``provenance``.
        """
        for name, path in stores.items():
            with self.open_store(path, name) as st:
                st.set_meta("provenance", provenance)
                for c in candidates:
                    st.write(c.labels(name))


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


def run_pseudolabels(dataset: str | os.PathLike[str], cache: str | os.PathLike[str],
                     out: str | os.PathLike[str], settings: LabelSettings | None = None,
                     feature_cache: str | os.PathLike[str] | None = None,
                     progress: bool = True, device: str = "cpu", engine=None) -> RunSummary:
    """Label every sampled pair into the store at ``out``, resuming a previous run.

    The pairs come from :class:`PairLoop` with the one filter ``settings.filter``
    and are written here, by the only writer of the store, as they complete:
    the store's rows, settings and provenance are those of a local run
    whatever the engine.

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
    s = settings or LabelSettings()
    loop = PairLoop(dataset, cache, s, (s.filter,), feature_cache, device, engine)
    store = loop.open_store(out, s.filter)
    try:
        store.set_meta("provenance", {"dataset": str(dataset), "cache": str(cache),
                                      "feature_cache": None if feature_cache is None
                                      else str(feature_cache), "pairs": len(loop.pairs),
                                      "geocorr": __version__})
        done = store.done()
        todo = [p for p in loop.pairs if p.pair_id not in done]
        n_labels = 0
        failures: list[ItemFailure] = []
        for _pair, res in loop.run(todo, progress=progress):
            if isinstance(res, ItemFailure):
                failures.append(res)
            else:
                lab: PairLabels = res.labels(s.filter)
                store.write(lab)
                n_labels += len(lab.src_uv)
    finally:
        store.close()
    return RunSummary(pairs=len(loop.pairs), skipped=len(loop.pairs) - len(todo),
                      labelled=len(todo) - len(failures), labels=n_labels,
                      failures=tuple(failures))

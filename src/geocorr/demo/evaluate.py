"""Demo step 5: every row of the comparison scored on the test pairs.

Rows, in order: 2D zero-shot XFeat (and XFeat + context, the adapters' input,
with ``DemoSettings.adapter_context``), 3D only (the rendered part
descriptor), 3D only at the oracle reconstruction (the upper bound, when the
oracle step ran), 2D+3D fused, and per filter with an adapter: the adapter,
and the adapter fused with the part descriptor (``adapter_fused_rows``).
Each is nearest-neighbour keypoint transfer scored with the field's PCK
protocol (per image, geometry-aware subset, swap rate;
:func:`geocorr.evaluation.scorer.evaluate_pairs`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from geocorr.adapter.checkpoint import apply_adapter, from_pretrained
from geocorr.data.pairs import KeypointPair
from geocorr.data.spair import SPairDataset
from geocorr.demo.features import DemoFeatures, Source
from geocorr.demo.findings import findings as demo_findings
from geocorr.demo.rows import FILTER_NAMES, DemoRow, format_table, weight_name
from geocorr.demo.settings import DemoSettings
from geocorr.demo.stage3 import DemoStage3
from geocorr.demo.synth import DemoData
from geocorr.evaluation.predict import PredictSettings, predict_keypoints
from geocorr.evaluation.scorer import evaluate_pairs
from geocorr.features.base import FeatureMap

__all__ = ["AdaptedSource", "DemoEvaluation", "evaluate_step"]

class AdaptedSource:
    """An adapter's map of each image, computed on first use and kept.

    Args:
        adapter: a trained adapter (:func:`~geocorr.adapter.checkpoint.from_pretrained`).
        source: its input map of an image (the key it was trained on: ``xfeat``).
    """

    def __init__(self, adapter, source: Source) -> None:
        self.adapter = adapter
        self.source = source
        self._maps: dict[Path, FeatureMap] = {}

    def __call__(self, path: Path) -> FeatureMap:
        if path not in self._maps:
            self._maps[path] = apply_adapter(self.adapter, {"xfeat": self.source(path)})
        return self._maps[path]


@dataclass(frozen=True, eq=False)
class DemoEvaluation:
    """The evaluation step's result.

    Attributes:
        rows: row key (``2d``, ``3d``, ``fused``, ``adapter_<filter>``...) -> its scores.
        table: the rows as a markdown table (PCK in %).
        findings: one plain sentence per comparison (:func:`geocorr.demo.findings.findings`).
        adapters: filter -> its adapter's maps (for the report's figures).
    """

    rows: dict[str, DemoRow]
    table: str
    findings: tuple[str, ...]
    adapters: dict[str, Source]


def _predictor(feats: Source) -> Callable[[KeypointPair], object]:
    pset = PredictSettings()

    def predict(pair: KeypointPair):
        return predict_keypoints(feats(pair.src_image), feats(pair.trg_image),
                                 pair.src_kps, pset).trg_kps
    return predict


def evaluate_step(data: DemoData, features: DemoFeatures, stage3: DemoStage3,
                  settings: DemoSettings, log: Callable[[str], None] = print) -> DemoEvaluation:
    """Score every row (module doc) on ``features.pairs``.

    Args:
        data: the benchmark (its annotations and keypoint groups score).
        features: the feature sources and the test pairs.
        stage3: the filter study (its adapters).
        settings: :class:`~geocorr.demo.settings.DemoSettings` (``alphas``,
            ``fusion``, ``adapter_fused_rows``).
        log: one-line status messages.

    Returns:
        :class:`DemoEvaluation`.
    """
    s, src, study = settings, features.sources, stage3.study
    pairs = list(features.pairs)
    log(f"[5/5] scoring {len(pairs)} test pairs")
    weight = weight_name(s.fusion)
    methods: list[tuple[str, str, Source]] = [
        ("2d", "2D zero-shot NN (XFeat)", src.xfeat),
        *([("2d_context", "2D zero-shot NN (XFeat + context: the adapters' input)",
            src.context)] if s.adapter_context else []),
        ("3d", "3D only: rendered part descriptor NN", src.part),
        *([("3d_oracle", "3D only, oracle reconstruction (upper bound)", src.oracle_part)]
          if src.oracle_stage1 is not None else []),
        ("fused", f"2D+3D fused NN (XFeat + part, {weight})", src.fused)]
    adapters: dict[str, Source] = {}
    source_name = "XFeat + context" if study.adapter_context else "XFeat"
    for f in study.quality:
        if f not in study.runs:
            continue
        adapted = AdaptedSource(from_pretrained(study.runs[f].best_path),
                                src.context if study.adapter_context else src.xfeat)
        adapters[f] = adapted
        methods.append((f"adapter_{f}", f"adapter ({source_name}) on {FILTER_NAMES[f]} labels",
                        adapted))
        if s.adapter_fused_rows:
            methods.append((f"adapter_{f}_fused",
                            f"adapter on {FILTER_NAMES[f]} labels + part ({weight})",
                            src.fused_with_part(adapted)))
    dataset = SPairDataset(data.root)
    rows = {key: DemoRow.from_result(name, evaluate_pairs(pairs, _predictor(feats), dataset,
                                                          s.alphas, split="test"))
            for key, name, feats in methods}
    return DemoEvaluation(rows=rows, table=format_table(list(rows.values()), s.alphas),
                          findings=tuple(demo_findings(rows, study, s.alphas[-1])),
                          adapters=adapters)

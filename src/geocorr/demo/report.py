"""Demo step 6: the figures and ``report.html`` (:func:`report_step` -> :class:`DemoReport`).

Figures (``out/figures/``): per test pair (``DemoSettings.figures``) the
feature PCA of every source (XFeat, the rendered part descriptor, the fusion,
each adapter); the first three stage-1 records' outlines before / after
refinement; the kept labels of one trn pair per filter; a copy of the
PCK-against-error-level PNG when one is given. The page itself is
:func:`geocorr.report.html.render_report` of a
:class:`~geocorr.report.html.ReportContent` filled from the steps' records.
Extra pages written beside the report (e.g. an interactive viewer) are
linked from its top through ``links``.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocorr.data.images import read_rgb
from geocorr.data.paths import inside
from geocorr.demo.evaluate import DemoEvaluation
from geocorr.demo.features import DemoFeatures
from geocorr.demo.rows import FILTER_NAMES
from geocorr.demo.settings import DemoSettings
from geocorr.demo.stage1 import Stage1Run, stage1_summary
from geocorr.demo.stage3 import DemoStage3
from geocorr.demo.synth import DemoData
from geocorr.evaluation.filter_study import FilterStudy
from geocorr.geometry.camera import load_camera
from geocorr.geometry.mesh import load_mesh
from geocorr.geometry.raster import rasterize
from geocorr.reconstruct.pipeline import load_cached
from geocorr.report.html import Figure, Link, ReportContent, write_report
from geocorr.report.label_figure import KeptLabels, save_label_figure
from geocorr.report.pair_figure import save_pair_figure
from geocorr.report.refine_figure import save_refinement_figure

__all__ = ["DemoReport", "report_step", "REFINE_FIGURES"]

REFINE_FIGURES = 3
"""Stage-1 records drawn before / after refinement (the first ones, in run order)."""


@dataclass(frozen=True)
class DemoReport:
    """What the report step wrote.

    Attributes:
        html: ``report.html``.
        figures: every PNG written under ``figures/``, in page order.
        links: the extra pages the report links to.
    """

    html: Path
    figures: tuple[Path, ...]
    links: tuple[Link, ...] = ()


def _pair_figures(figs: Path, features: DemoFeatures, stage1: Stage1Run,
                  evaluation: DemoEvaluation, count: int) -> list[tuple[Path, Figure]]:
    """Feature PCA per source of the first ``count`` test pairs."""
    src = features.sources
    extra = {f"adapter ({FILTER_NAMES[f]} labels)": feats
             for f, feats in evaluation.adapters.items()}
    out = []
    for i, p in enumerate(features.pairs[:count]):
        ms, mt = src.maps(p.src_image), src.maps(p.trg_image)
        panels = {"xfeat": (ms.xfeat, mt.xfeat), "rendered part descriptor": (ms.part, mt.part),
                  "fused": (ms.fused, mt.fused)}
        for name, feats in extra.items():
            panels[name] = (feats(p.src_image), feats(p.trg_image))
        masks = tuple(load_cached(stage1.cache, q.parent.name, q.stem).mask
                      for q in (p.src_image, p.trg_image))
        path = figs / f"pair_{i}.png"
        save_pair_figure(path, read_rgb(p.src_image), read_rgb(p.trg_image), panels,
                         title=p.pair_id, masks=masks)
        out.append((path, Figure(f"figures/{path.name}", f"pair {p.pair_id}: feature PCA per "
                                 f"source (shared basis fitted on the object): "
                                 f"{', '.join(panels)}")))
    return out


def _refinement_figure(path: Path, stage1: Stage1Run, record: dict) -> Figure:
    """The mask (green), the reconstructor's render (red) and the refined one (blue)."""
    cat, stem = record["category"], record["stem"]
    where = f"stage-1 record {cat}/{stem}"
    data = stage1.data
    image = read_rgb(inside(data, "JPEGImages", cat, f"{stem}.jpg", source=where, what="image"))
    raw = load_mesh(inside(data, "Reconstructions", cat, f"{stem}.ply", source=where,
                           what="mesh"))
    before = rasterize(np.asarray(raw.vertices), np.asarray(raw.faces),
                       load_camera(inside(data, "Reconstructions", cat, f"{stem}.json",
                                          source=where, what="camera"))).mask
    cached = load_cached(stage1.cache, cat, stem)
    after = rasterize(cached.vertices, cached.faces, cached.camera).mask
    save_refinement_figure(path, image, cached.mask, before, after)
    r = record["refine"]
    return Figure(f"figures/{path.name}", f"{cat}/{stem}: mask (green), simulated SAM3D render "
                  f"(red, IoU {r['iou_before']:.2f}), refined + canonicalized (blue, IoU "
                  f"{r['iou_after']:.2f})")


def _label_figure(path: Path, data: DemoData, study: FilterStudy) -> Figure | None:
    """Kept labels per filter on the label pair with the most geodesic-kept labels."""
    if not study.pairs:
        return None
    f_best = "geodesic" if "geodesic" in study.quality else next(iter(study.quality))
    i = int(np.argmax([int(c.keep[f_best].sum()) for c in study.candidates]))
    p, cand, correct = study.pairs[i], study.candidates[i], study.correct[i]
    per = {}
    for f in study.quality:
        k = cand.keep[f]
        per[FILTER_NAMES.get(f, f)] = KeptLabels(cand.candidates.src_uv[k],
                                                 cand.candidates.trg_uv[k], correct[k])
    src, trg = (inside(data.root, "JPEGImages", p.category, f"{s}.jpg",
                       source=f"pair {p.pair_id}", what="image") for s in (p.source, p.target))
    save_label_figure(path, read_rgb(src), read_rgb(trg), per, title=p.pair_id)
    return Figure(f"figures/{path.name}", f"pair {p.pair_id}: the labels each filter keeps (one "
                  "row per filter). Colours come from the ground truth and are for evaluation "
                  "only: green = correct, red = wrong.")


def _sweep(figs: Path, sweep_figure: str | None) -> tuple[Figure | None, str | None, Path | None]:
    """The sweep figure copied into ``figs`` (figure, note, copied path)."""
    if sweep_figure is None:
        return None, None, None
    if not Path(sweep_figure).is_file():
        return None, f"{sweep_figure} not found: run benchmarks/error_sweep.py for the sweep.", None
    path = figs / "error_sweep.png"
    shutil.copyfile(sweep_figure, path)
    return (Figure(f"figures/{path.name}", f"{sweep_figure}: PCK@0.1 of each row at the oracle, "
                   "½×, 1× and 2× realistic levels (benchmarks/error_sweep.py, a separate run on "
                   "a smaller set; see benchmarks/RESULTS.md)"), None, path)


def report_step(out: str | Path, settings: DemoSettings, data: DemoData, stage1: Stage1Run,
                features: DemoFeatures, stage3: DemoStage3, evaluation: DemoEvaluation,
                links: Sequence[Link] = ()) -> DemoReport:
    """Write ``out/figures/*.png`` and ``out/report.html`` (module doc).

    Args:
        out: the demo's output folder (the page refers to ``data/preview.png`` in it).
        settings: ``figures`` (pair figures), ``sweep_figure``, the error level.
        data: the benchmark.
        stage1: stage 1 (refinement figures, masks, the stage-1 table).
        features: the feature sources and test pairs.
        stage3: the filter study (labels figure, label table).
        evaluation: the rows, findings and adapters.
        links: pages beside the report to link from its top (e.g.
            ``Link("viewer.html", "interactive viewer")``); none by default.

    Returns:
        :class:`DemoReport`.
    """
    out = Path(out)
    figs = out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    figures: list[Figure] = []
    for path, fig in _pair_figures(figs, features, stage1, evaluation, settings.figures):
        written.append(path)
        figures.append(fig)
    finished = [r for r in stage1.records if "error" not in r]   # failed images have no fit
    for i, r in enumerate(finished[:REFINE_FIGURES]):
        path = figs / f"refine_{i}.png"
        figures.append(_refinement_figure(path, stage1, r))
        written.append(path)
    label = _label_figure(figs / "labels.png", data, stage3.study)
    if label is not None:
        written.append(figs / "labels.png")
    sweep, note, sweep_path = _sweep(figs, settings.sweep_figure)
    if sweep_path is not None:
        written.append(sweep_path)
    content = ReportContent(
        level=f"{settings.sim_errors} x{settings.sim_scale:g}", table=evaluation.table,
        findings=evaluation.findings, label_table=stage3.table,
        stage1=stage1_summary(stage1.errors), label_figure=label, sweep_figure=sweep,
        sweep_note=note, figures=tuple(figures), links=tuple(links))
    html = write_report(out / "report.html", content)
    return DemoReport(html=html, figures=tuple(written), links=tuple(links))

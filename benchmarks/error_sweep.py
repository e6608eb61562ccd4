"""Every row of the demo against the simulated reconstruction/mask error level (issue 12, item 4).

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/error_sweep.py \\
        [--levels oracle,realistic:0.5,realistic:1,realistic:2] [--seed 0] \\
        [--images 16] [--test-pairs 20] [--label-pairs 20] [--steps 300] \\
        [--out benchmarks/results/error_sweep.md] [--png benchmarks/results/error_sweep.png] \\
        [--keep DIR] [--jobs 1]

For each level (``NAME[:SCALE]``: ``geocorr synth --sim-errors NAME --sim-scale
SCALE``) it runs the whole ``geocorr demo`` (:func:`geocorr.demo.run_demo`, the
same code, on a smaller set: ``--images`` per category, ``--test-pairs`` test
pairs and ``--label-pairs`` trn label pairs per category, ``--steps`` adapter
steps) with the same seed, so every level sees the same images, keypoints and
pairs and only the simulated SAM 3D meshes/cameras and SAM 3 masks change
(docs/synth.md). Reported per level, from each run's ``results.json``:

* PCK@0.05 / 0.1, geometry-aware PCK@0.1 and the twin-swap rate at 0.1 of the
  2D, 3D-only, fused and adapter rows (each filter's adapter alone and fused
  with the rendered part descriptor);
* precision / recall (and labels kept) of each pseudo-label filter, scored
  against the ground truth;
* stage 1 against the truth (rotation error mod 90°·k, yaw, mask IoU).

``oracle`` is not "realistic × 0": it keeps the pre-issue-12 simulator's
yaw-flip rates (0.3 / 0.6 elongated) and scale/translation errors, with exact
rotation, shape and masks. Writes a markdown table (``--out``), a PNG of
PCK@0.1 against the level with one line per row (``--png``; ``geocorr demo``
shows it in its report), and the raw numbers beside the markdown
(``.json``). Only scoring reads ``GroundTruth/`` (as in the demo).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from geocorr.labels.settings import FILTERS

ROWS = (("2d", "2D (XFeat)"), ("3d", "3D only"), ("fused", "2D+3D fused"),
        ("adapter_cyclic", "adapter, cyclic"), ("adapter_sphere", "adapter, sphere"),
        ("adapter_geodesic", "adapter, geodesic"),
        ("adapter_cyclic_fused", "adapter cyclic + part"),
        ("adapter_sphere_fused", "adapter sphere + part"),
        ("adapter_geodesic_fused", "adapter geodesic + part"))


def parse_level(spec: str) -> tuple[str, float]:
    """``"realistic:0.5"`` -> ``("realistic", 0.5)``; ``"oracle"`` -> ``("oracle", 1.0)``."""
    name, _, scale = spec.partition(":")
    return name.strip(), float(scale) if scale else 1.0


def level_label(name: str, scale: float) -> str:
    return name if name == "oracle" else f"{name} {scale:g}x"


def run_level(out: Path, name: str, scale: float, args) -> dict:
    """One demo run at ``name`` x ``scale``; its ``results.json`` dict."""
    from geocorr.demo import DemoSettings, run_demo

    base = DemoSettings()
    settings = DemoSettings(
        seed=args.seed, categories=tuple(args.categories.split(",")),
        images_per_category=args.images, test_pairs=args.test_pairs, figures=0,
        labels=replace(base.labels, pairs=replace(base.labels.pairs,
                                                  pairs_per_category=args.label_pairs)),
        train=replace(base.train, steps=args.steps), sim_errors=name, sim_scale=scale,
        oracle_row=False, sweep_figure=None)
    return run_demo(out, settings, progress=False, log=lambda _: None)


def markdown(levels: list[str], results: dict[str, dict], command: str) -> str:
    """The tables of ``results`` (level label -> results.json dict)."""
    first = next(iter(results.values()))
    n_pairs = next(r["num_pairs"] for r in first["rows"] if r["key"] == "2d")
    lines = [f"`{command}`", "",
             f"{n_pairs} test pairs per level, the same images and pairs at every level. "
             "PCK@0.1 (per image, %):", "",
             "| row | " + " | ".join(levels) + " |", "|---|" + "---|" * len(levels)]
    rows = {lv: {r["key"]: r for r in results[lv]["rows"]} for lv in levels}
    for key, label in ROWS:
        if not any(key in rows[lv] for lv in levels):
            continue
        cells = [f"{100 * rows[lv][key]['pck']['0.1']:.1f}" if key in rows[lv] else "–"
                 for lv in levels]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Per level: PCK@0.05 / PCK@0.1 / geometry-aware PCK@0.1 / swap@0.1 (%):", "",
              "| row | " + " | ".join(levels) + " |", "|---|" + "---|" * len(levels)]
    for key, label in ROWS:
        if not any(key in rows[lv] for lv in levels):
            continue
        cells = []
        for lv in levels:
            r = rows[lv].get(key)
            cells.append("–" if r is None else
                         f"{100 * r['pck']['0.05']:.1f} / {100 * r['pck']['0.1']:.1f} / "
                         f"{100 * r['pck_geometry_aware']['0.1']:.1f} / "
                         f"{100 * r['swap_rate']['0.1']:.1f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Pseudo-label filters on the trn label pairs: precision / recall (%), "
              "labels kept of candidates:", "",
              "| filter | " + " | ".join(levels) + " |", "|---|" + "---|" * len(levels)]
    for f in FILTERS:
        cells = []
        for lv in levels:
            q = results[lv]["pseudo_labels"]["filters"].get(f)
            cells.append("–" if q is None else
                         f"{100 * q['precision']:.1f} / {100 * q['recall']:.1f} "
                         f"({q['kept']} / {q['candidates']})")
        lines.append(f"| {f} | " + " | ".join(cells) + " |")
    lines += ["", "Stage 1 against the truth (medians): rotation error mod 90°·k before → "
              "after stage 1, canonical-frame error (no modulo), yaw correct, mask IoU of the "
              "predicted vs true masks, render IoU after refinement:", "",
              "| level | rotation, ° | canonical frame, ° (median / mean) | yaw correct "
              "| mask IoU | render IoU | seconds |", "|---|---|---|---|---|---|---|"]
    for lv in levels:
        s, t = results[lv]["stage1"], results[lv]["timings_s"]["total"]
        lines.append(f"| {lv} | {s['rotation_before_deg']:.1f} → {s['rotation_after_deg']:.1f} "
                     f"| {s['canonical_frame_deg']:.1f} / {s['canonical_frame_mean_deg']:.1f} "
                     f"| {100 * s['yaw_accuracy']:.0f} % | "
                     f"{s['mask_iou_predicted_vs_true']:.3f} | {s['median_iou_after']:.3f} "
                     f"| {t:.0f} |")
    return "\n".join(lines) + "\n"


_COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (140, 86, 75),
            (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def write_png(path: Path, levels: list[str], results: dict[str, dict]) -> None:
    """PCK@0.1 against the level (evenly spaced), one line per row, legend at the right."""
    import cv2

    W, H, m, legend = 900, 480, 60, 250
    img = np.full((H, W, 3), 255, np.uint8)
    x0, x1, y0, y1 = m, W - legend, H - m, m

    def xy(i: int, v: float) -> tuple[int, int]:
        x = x0 + (x1 - x0) * (i / max(len(levels) - 1, 1))
        return int(round(x)), int(round(y0 - (y0 - y1) * v))

    font = cv2.FONT_HERSHEY_SIMPLEX
    for t in np.linspace(0.0, 1.0, 6):
        cv2.line(img, (x0, xy(0, t)[1]), (x1, xy(0, t)[1]), (225, 225, 225), 1)
        cv2.putText(img, f"{100 * t:.0f}", (x0 - 35, xy(0, t)[1] + 4), font, 0.4, (0, 0, 0), 1)
    for i, lv in enumerate(levels):
        cv2.putText(img, lv, (xy(i, 0)[0] - 30, y0 + 20), font, 0.45, (0, 0, 0), 1)
    cv2.rectangle(img, (x0, y1), (x1, y0), (0, 0, 0), 1)
    cv2.putText(img, "PCK@0.1 (%) against the simulated SAM3D/SAM3 error level", (x0, y1 - 20),
                font, 0.5, (0, 0, 0), 1)
    rows = {lv: {r["key"]: r for r in results[lv]["rows"]} for lv in levels}
    k = 0
    for (key, label), colour in zip(ROWS, _COLOURS, strict=True):
        pts = [(i, rows[lv][key]["pck"]["0.1"]) for i, lv in enumerate(levels) if key in rows[lv]]
        if not pts:
            continue
        bgr = colour[::-1]
        for (i, v), (j, w) in zip(pts, pts[1:], strict=False):
            cv2.line(img, xy(i, v), xy(j, w), bgr, 2, cv2.LINE_AA)
        for i, v in pts:
            cv2.circle(img, xy(i, v), 4, bgr, -1, cv2.LINE_AA)
        ly = y1 + 10 + 22 * k
        cv2.line(img, (x1 + 15, ly), (x1 + 40, ly), bgr, 2, cv2.LINE_AA)
        cv2.putText(img, label, (x1 + 48, ly + 4), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        k += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise RuntimeError(f"{path}: PNG encoding failed")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.tobytes())
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--levels", default="oracle,realistic:0.5,realistic:1,realistic:2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--categories", default="car,chair,dog")
    ap.add_argument("--images", type=int, default=16, help="images per category")
    ap.add_argument("--test-pairs", type=int, default=20, help="test pairs per category")
    ap.add_argument("--label-pairs", type=int, default=20, help="trn label pairs per category")
    ap.add_argument("--steps", type=int, default=300, help="adapter training steps")
    ap.add_argument("--out", type=Path, default=None, help="markdown file (+ .json beside it)")
    ap.add_argument("--png", type=Path, default=None, help="PCK@0.1 against level")
    ap.add_argument("--keep", type=Path, default=None, help="keep each level's demo folder here")
    ap.add_argument("--jobs", type=int, default=1,
                    help="levels run at once, one process each (same numbers, less wall time "
                         "where cores are free)")
    args = ap.parse_args()
    from geocorr.atomic import write_text_atomic
    from geocorr.data.synth.errors import error_preset

    specs = [parse_level(x) for x in args.levels.split(",") if x.strip()]
    for name, scale in specs:
        error_preset(name, scale)            # a bad level fails before any run
    labels = [level_label(n, s) for n, s in specs]
    command = ("OMP_NUM_THREADS=1 .venv/bin/python benchmarks/error_sweep.py "
               f"--levels {args.levels} --seed {args.seed} --categories {args.categories} "
               f"--images {args.images} --test-pairs {args.test_pairs} "
               f"--label-pairs {args.label_pairs} --steps {args.steps}")
    tmp = Path(tempfile.mkdtemp(prefix="error_sweep_"))
    base = args.keep or tmp
    results: dict[str, dict] = {}
    try:
        from concurrent.futures import ProcessPoolExecutor

        folders = [base / label.replace(" ", "_") for label in labels]
        for folder in folders:
            if folder.exists():
                shutil.rmtree(folder)
        t = time.perf_counter()
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = [pool.submit(run_level, folder, name, scale, args)
                       for folder, (name, scale) in zip(folders, specs, strict=True)]
            for label, fut in zip(labels, futures, strict=True):
                results[label] = fut.result()
                r = {x["key"]: x for x in results[label]["rows"]}
                print(f"{label}: " + ", ".join(f"{k} {100 * r[k]['pck']['0.1']:.1f}"
                                               for k, _ in ROWS if k in r)
                      + f" (done at {time.perf_counter() - t:.0f} s)", flush=True)
        text = markdown(labels, results, command)
        print("\n" + text)
        if args.out is not None:
            write_text_atomic(args.out, "# PCK against the simulated error level\n\n" + text)
            keep = {lv: {k: results[lv][k] for k in ("error_level", "rows", "pseudo_labels",
                                                      "stage1", "timings_s")}
                    for lv in labels}
            write_text_atomic(args.out.with_suffix(".json"),
                              json.dumps(keep, indent=1, default=float))
        if args.png is not None:
            write_png(args.png, labels, results)
            print(f"wrote {args.png}")
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

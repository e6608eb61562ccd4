"""Speed of ``geocorr synth``: the issue's benchmark size, timed end to end.

Run: ``.venv/bin/python benchmarks/synth.py [--workers 2] [--images 20] [--pairs 100]
[--sim-errors oracle|realistic|hard] [--skip-stages]``.
Generates every registered category (the target is 6 categories x 20 images x
100 pairs per split in <= 3 minutes on 2 cores) into a temporary folder, and
prints the wall time, per-image cost, pair counts, yaw-flip rate and output
size. Also times one image's stages (shape, render, simulator) in-process.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_S = 180.0


def _stage_times(category: str) -> dict[str, float]:
    from geocorr.data.synth.render import render_shape
    from geocorr.data.synth.scene import sample_scene
    from geocorr.data.synth.shapes import category_info, make_shape
    from geocorr.data.synth.simulator import simulate_reconstruction
    from geocorr.data.synth.textures import instance_looks, random_background

    make_shape(category, 99, 0)  # warm-up (numba compile, imports)
    out = {}
    t = time.perf_counter()
    shape = make_shape(category, 0, 0)
    out["shape"] = time.perf_counter() - t
    rng = np.random.default_rng(0)
    scene = sample_scene(shape.vertices, rng)
    looks = instance_looks(category, shape.part_material, rng)
    bg = random_background(scene.camera.height, scene.camera.width, rng)
    render_shape(shape, scene.camera, looks, scene.light_dir, scene.ambient, bg, rng)
    t = time.perf_counter()
    render_shape(shape, scene.camera, looks, scene.light_dir, scene.ambient, bg, rng)
    out["render"] = time.perf_counter() - t
    simulate_reconstruction(shape.vertices, shape.faces, scene.camera, False, rng)  # warm-up
    t = time.perf_counter()
    simulate_reconstruction(shape.vertices, shape.faces, scene.camera,
                            category_info(category).elongated, rng)
    out["simulator"] = time.perf_counter() - t
    return out


def _statistics(root: Path) -> dict[str, float]:
    """Difficulty figures of a generated folder, read back with the project's SPair reader."""
    import json

    from geocorr.data.spair import SPairDataset

    ds = SPairDataset(root)
    pairs = [p for split in ("trn", "val", "test") for p in ds.pairs(split)]
    flags = [p.flags for p in pairs]
    images = [json.loads(p.read_text()) for p in (root / "ImageAnnotation").glob("*/*.json")]
    n_geo, n_kps = 0, 0
    for p in pairs:
        ids = set(int(i) for i in p.kps_ids)
        trg = set(int(i) for i in p.trg_visible_ids) if p.trg_visible_ids is not None else ids
        n_kps += len(ids)
        for group in ds.geometry_groups(p.category):
            both = ids & set(group)
            if len(trg & set(group)) >= 2 and both:
                n_geo += len(both)
    return {
        "keypoints per pair": n_kps / max(len(pairs), 1),
        "geometry-aware keypoints (share)": n_geo / max(n_kps, 1),
        "pairs with viewpoint_variation 2 (share)":
            sum(f.get("viewpoint_variation") == 2 for f in flags) / max(len(flags), 1),
        "images truncated (share)": sum(i["truncated"] for i in images) / max(len(images), 1),
        "images occluded (share)": sum(i["occluded"] for i in images) / max(len(images), 1),
    }


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    from geocorr.data.synth.generate import SynthSettings, generate_dataset, with_error_level
    from geocorr.data.synth.shapes import CATEGORIES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sim-errors", default="oracle", help="error level (docs/synth.md)")
    ap.add_argument("--skip-stages", action="store_true", help="no per-stage timing table")
    args = ap.parse_args()

    print(f"# geocorr synth speed — {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print()
    if not args.skip_stages:
        print("| category | shape (ms) | render (ms) | simulator (ms) |")
        print("|---|---|---|---|")
        for cat in CATEGORIES:
            st = _stage_times(cat)
            print(f"| {cat} | {1e3 * st['shape']:.0f} | {1e3 * st['render']:.0f} | "
                  f"{1e3 * st['simulator']:.0f} |")
        print()

    tmp = Path(tempfile.mkdtemp(prefix="geocorr-synth-bench-"))
    try:
        settings = with_error_level(SynthSettings(seed=args.seed, categories=tuple(CATEGORIES),
                                                  images_per_category=args.images,
                                                  pairs_per_split=(args.pairs,) * 3),
                                    args.sim_errors)
        cpu0 = _cpu_seconds()
        t = time.perf_counter()
        summary = generate_dataset(tmp / "ds", settings, progress=False, workers=args.workers)
        wall = time.perf_counter() - t
        cpu = _cpu_seconds() - cpu0
        size = sum(p.stat().st_size for p in (tmp / "ds").rglob("*") if p.is_file())
        stats = _statistics(tmp / "ds")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n_cat = len(CATEGORIES)
    scaled = wall * 6 / n_cat
    print(f"generate_dataset at {args.sim_errors}: {n_cat} categories x {args.images} images, "
          f"pairs {summary.num_pairs}, {args.workers} workers")
    print(f"wall {wall:.1f} s ({1e3 * wall / summary.num_images:.0f} ms per image, incl. "
          f"process start-up); scaled to 6 categories: {scaled:.1f} s; target {TARGET_S:.0f} s: "
          f"{'met' if scaled <= TARGET_S else 'NOT met'}")
    print(f"CPU time of all processes {cpu:.1f} s (the wall time on an idle machine is about "
          f"CPU / workers: {cpu / args.workers:.1f} s)")
    for name, value in stats.items():
        print(f"{name}: {value:.2f}")
    print(f"yaw-flipped reconstructions {100 * summary.flipped_fraction:.0f}%, keypoints "
          f"visible {100 * summary.visible_keypoints:.0f}%, output {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()

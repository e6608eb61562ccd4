"""Local vs Ray (1 and 2 workers) throughput of stage 1 and pseudo-labelling, in one run.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scale.py [--images-per-category 22]
[--pairs-per-category 340] [--out DIR]``. It generates a procedural dataset (3 categories),
runs stage 1 on every image and pseudo-labels the sampled pairs three times each
(local engine, Ray with 1 worker, Ray with 2 workers, one CPU per worker, a local
Ray instance with 2 CPUs started first and timed apart), checks that the Ray
outputs equal the local ones, measures the per-task overhead of the engine on a
no-op, and prints a Markdown report (also written to ``benchmarks/results/scale.md``).
Ratios are local time / engine time, measured back to back in the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _noop(state, item):
    return item


def _stage1(ds: Path, out: Path, engine) -> float:
    from geocorr.reconstruct.pipeline import Stage1Settings, dataset_images, run_stage1
    from geocorr.reconstruct.reconstructor import simulated_reconstructor
    from geocorr.reconstruct.segmenter import DatasetMasks

    images = dataset_images(ds, "all")
    t = time.perf_counter()
    recs = run_stage1(ds, images, DatasetMasks(ds), simulated_reconstructor(ds), out,
                      Stage1Settings(), progress=False, engine=engine)
    dt = time.perf_counter() - t
    bad = [r for r in recs if "error" in r]
    if bad:
        raise SystemExit(f"stage 1 failed on {len(bad)} images: {bad[0]['error']}")
    return dt


def _stage1_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and (p.suffix in (".ply", ".png") or p.name == "camera.json")}


def _labels(ds: Path, cache: Path, out: Path, pairs: int, engine):
    from geocorr.labels.runner import LabelSettings, run_pseudolabels
    from geocorr.labels.store import LabelStore
    from geocorr.matching.pairs import PairSamplingSettings

    s = LabelSettings(split="all", pairs=PairSamplingSettings(pairs_per_category=pairs))
    t = time.perf_counter()
    summary = run_pseudolabels(ds, cache, out, s, progress=False, engine=engine)
    dt = time.perf_counter() - t
    with LabelStore(out) as st:
        return dt, summary, st.dump()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images-per-category", type=int, default=22)
    ap.add_argument("--pairs-per-category", type=int, default=340)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--skip-stage1-ray", action="store_true")
    args = ap.parse_args()

    import ray

    from geocorr.data.synth.generate import SynthSettings, generate_dataset
    from geocorr.data.synth.scene import SceneSettings
    from geocorr.engine import EngineSettings, make_engine

    work = Path(tempfile.mkdtemp(prefix="geocorr-scale-"))
    try:
        ds = work / "ds"
        t = time.perf_counter()
        generate_dataset(ds, SynthSettings(categories=("car", "chair", "dog"),
                                           images_per_category=args.images_per_category,
                                           scene=SceneSettings(size=args.size)),
                         progress=False)
        print(f"dataset: {time.perf_counter() - t:.0f} s", flush=True)
        t = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        ray_init = time.perf_counter() - t
        print(f"ray.init: {ray_init:.1f} s", flush=True)

        engines = {"local": EngineSettings(),
                   "ray, 1 worker": EngineSettings(engine="ray", workers=1),
                   "ray, 2 workers": EngineSettings(engine="ray", workers=2)}

        # per-task overhead: a no-op, one item per task / per actor call
        n = 200
        overhead = {}
        for stateful in (False, True):
            eng = make_engine(EngineSettings(engine="ray", workers=2, chunk_size=1))
            list(eng.map_items(_noop, list(range(8)), stateful=stateful))  # warm
            t = time.perf_counter()
            list(eng.map_items(_noop, list(range(n)), stateful=stateful))
            overhead["actor call" if stateful else "task"] = (time.perf_counter() - t) / n
        print(f"overhead: {overhead}", flush=True)

        rows = []
        s1_times, s1_files = {}, {}
        for name, es in engines.items():
            if args.skip_stage1_ray and name != "local":
                continue
            out = work / f"s1-{name.replace(' ', '').replace(',', '-')}"
            s1_times[name] = _stage1(ds, out, make_engine(es))
            s1_files[name] = _stage1_files(out)
            print(f"stage 1 {name}: {s1_times[name]:.1f} s", flush=True)
        n_img = sum(1 for k in s1_files["local"] if k.endswith("mesh.ply"))
        for name, dt in s1_times.items():
            rows.append(("stage 1 (images)", name, n_img, dt, s1_times["local"] / dt,
                         s1_files[name] == s1_files["local"]))

        cache = work / "s1-local"
        lab_times, dumps = {}, {}
        for name, es in engines.items():
            dt, summary, dump = _labels(ds, cache, work / f"{name}.sqlite",
                                        args.pairs_per_category, make_engine(es))
            lab_times[name], dumps[name] = dt, dump
            print(f"labels {name}: {dt:.1f} s ({summary.labelled} pairs)", flush=True)
            n_pairs = summary.labelled
        for name, dt in lab_times.items():
            rows.append(("pseudo-labels (pairs)", name, n_pairs, dt, lab_times["local"] / dt,
                         dumps[name] == dumps["local"]))

        load = os.getloadavg()
        lines = [f"# scale: local vs Ray on {os.cpu_count()} cores "
                 f"({platform.processor() or platform.machine()}), load average "
                 f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end", "",
                 f"`OMP_NUM_THREADS=1 python benchmarks/scale.py --images-per-category "
                 f"{args.images_per_category} --pairs-per-category {args.pairs_per_category}"
                 f" --size {args.size}`; Ray: `ray.init(num_cpus=2)` took {ray_init:.1f} s "
                 f"(not in the times below); one CPU per worker.", "",
                 "| stage | engine | items | wall (s) | per item (s) | speed-up vs local | "
                 "output == local |", "|---|---|---|---|---|---|---|"]
        for stage, name, n_items, dt, ratio, same in rows:
            lines.append(f"| {stage} | {name} | {n_items} | {dt:.1f} | {dt / n_items:.3f} | "
                         f"{ratio:.2f}x | {'yes' if same else 'NO'} |")
        lines += ["", "Per-task overhead of the Ray engine (no-op item, one item per task or "
                  "actor call, 2 workers): " + ", ".join(f"{k} {v * 1e3:.1f} ms"
                                                         for k, v in overhead.items()) + "."]
        text = "\n".join(lines) + "\n"
        print(text)
        if args.out is None:
            (Path(__file__).resolve().parent / "results" / "scale.md").write_text(text)
        else:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "scale.md").write_text(text)
            (args.out / "scale.json").write_text(json.dumps(
                {"rows": rows, "overhead_s": overhead, "ray_init_s": ray_init}, default=str))
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

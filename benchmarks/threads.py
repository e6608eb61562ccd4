"""Thread counts for stage 1: refinement time with 1, 2 and the libraries' default threads.

Usage::

    .venv/bin/python benchmarks/threads.py [--images 2] [--rounds 2] \
        [--configs 1 2 default] [--load 0 1] [--json out.json]

Generates a small procedural benchmark (car, chair, dog; ``--images`` per
category), then times :func:`geocorr.reconstruct.refine.refine_pose` (the
library path of ``geocorr refine`` and of stage 1's refinement step, default
``RefineSettings``) on the simulated reconstruction of every image against its
dataset mask. Each configuration runs in a fresh process:

* ``N``: ``geocorr.threads.set_threads(N)`` first thing, as ``geocorr --threads N``;
* ``default``: no thread setting and no ``OMP_NUM_THREADS`` & co. in the
  environment: what every library picks by itself (one thread per core).

One warm-up refinement per process (numba compilation) is not timed. With
``--load L`` the runs are repeated while ``L`` busy-loop processes compete for
the cores (``L = 0``: none of ours; other jobs on a shared machine still count,
hence the load average in the output). Configurations are interleaved within
each round so that drift in the machine's load hits them alike; the table gives
the median seconds per image over all rounds and each configuration's ratio to
one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                "OPENCV_FOR_THREADS_NUM")


def _images(root: Path) -> list[tuple[str, str]]:
    return sorted((p.parent.name, p.stem) for p in (root / "Reconstructions").glob("*/*.json"))


def worker(config: str, root: Path) -> dict:
    """Time refinement of every image of ``root`` in this process (after thread setup)."""
    if config != "default":
        from geocorr.threads import set_threads

        set_threads(int(config))
    import numpy as np
    import torch
    from PIL import Image

    from geocorr.reconstruct.reconstructor import simulated_reconstructor
    from geocorr.reconstruct.refine import RefineSettings, refine_pose

    rec = simulated_reconstructor(root)
    settings = RefineSettings()
    inputs = []
    for cat, stem in _images(root):
        r = rec.load(cat, stem)
        with Image.open(root / "Segmentation" / cat / f"{stem}.png") as im:
            mask = np.asarray(im) != 0
        inputs.append((r, mask if mask.ndim == 2 else mask.any(axis=2)))
    warm = inputs[0]
    refine_pose(warm[0].vertices, warm[0].faces, warm[0].camera, warm[1], settings)
    seconds, cpu = [], []
    for r, mask in inputs:
        t, c = time.perf_counter(), time.process_time()
        refine_pose(r.vertices, r.faces, r.camera, mask, settings)
        seconds.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {"config": config, "seconds": seconds, "cpu": cpu,
            "torch_threads": torch.get_num_threads()}


def _run_worker(config: str, root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _THREAD_VARS}
    out = subprocess.run([sys.executable, __file__, "--worker", config, "--dataset", str(root)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=2, help="images per category")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--configs", nargs="+", default=["1", "2", "default"])
    ap.add_argument("--load", nargs="+", type=int, default=[0, 1],
                    help="busy-loop processes competing for the cores, one level per entry")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--dataset", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.dataset)))
        return
    for c in args.configs:
        if c != "default" and not (c.isdigit() and int(c) > 0):
            ap.error(f"--configs: {c!r} is neither a positive integer nor 'default'")

    # a kill (SIGTERM) unwinds like an error, so the busy loops and the data go too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from geocorr.data.synth.generate import SynthSettings, generate_dataset
    from geocorr.threads import set_threads

    set_threads(1)  # the dataset generation in this process; the workers choose their own
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "synth"
        generate_dataset(root, SynthSettings(categories=("car", "chair", "dog"),
                                             images_per_category=args.images,
                                             pairs_per_split=(1, 1, 1)), workers=1,
                         progress=False)
        n_images = len(_images(root))
        for load in args.load:
            hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                    for _ in range(load)]
            try:
                runs: dict[str, list[dict]] = {c: [] for c in args.configs}
                for _ in range(args.rounds):
                    for c in args.configs:
                        runs[c].append(_run_worker(c, root))
                        print(f"load {load}, threads {c}: seconds per image "
                              f"{[round(x, 2) for x in runs[c][-1]['seconds']]}, load average "
                              f"{os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
            finally:
                for h in hogs:
                    h.kill()
                    h.wait()
            loadavg = os.getloadavg()[0]
            med = {c: statistics.median(s for r in runs[c] for s in r["seconds"])
                   for c in args.configs}
            for c in args.configs:
                cpu = statistics.median(s for r in runs[c] for s in r["cpu"])
                rows.append({"load": load, "config": c, "median_s": med[c], "median_cpu_s": cpu,
                             "ratio_to_1": med[c] / med["1"] if "1" in med else None,
                             "torch_threads": runs[c][0]["torch_threads"],
                             "loadavg_1min": loadavg, "images": n_images,
                             "rounds": args.rounds})
    print(f"refine_pose, default RefineSettings, {n_images} images x {args.rounds} rounds "
          f"per configuration; {os.cpu_count()} CPUs")
    print("| competing busy processes | threads | torch threads | median s / image | "
          "median CPU s / image | ratio to 1 thread | load avg (1 min) at end |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = "—" if r["ratio_to_1"] is None else f"{r['ratio_to_1']:.2f}"
        print(f"| {r['load']} | {r['config']} | {r['torch_threads']} | {r['median_s']:.2f} | "
              f"{r['median_cpu_s']:.2f} | {ratio} | {r['loadavg_1min']:.1f} |")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()

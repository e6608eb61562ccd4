"""Benchmark: ``geocorr match`` wall time and peak memory against the photo's resolution.

Run ``.venv/bin/python benchmarks/match_inputs.py [--out DIR]``. Writes smooth
synthetic JPEG photos (a bright box on a gradient) at several sizes, runs
``geocorr match A B --out DIR/m.json`` on each pair in a fresh process, and
reports wall time and peak resident memory (the child's ``ru_maxrss``): once
with the default working resolution (longer side 1024) and once with
``--max-side 100000``, i.e. the full-size photo everywhere, the behaviour
before inputs were scaled first. Both rows come from the same run, so their
ratio holds on a loaded machine even where the absolute times do not.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

_CHILD = """
import resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
dt = time.perf_counter() - t
print(rc, dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def _photo(path: Path, width: int, height: int) -> None:
    from PIL import Image

    yy, xx = np.mgrid[:48, :64]
    small = np.stack([xx * 4, yy * 5, (xx + yy) * 2], -1).astype(np.uint8)
    small[12:36, 16:48] = (230, 200, 60)
    Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR).save(path,
                                                                                   quality=90)


def _run(a: Path, b: Path, out: Path, extra: list[str]) -> tuple[float, float]:
    geocorr = Path(sys.executable).with_name("geocorr")
    cmd = [sys.executable, "-c", _CHILD, str(geocorr), "match", str(a), str(b), "--out",
           str(out), *extra]
    rc, seconds, maxrss_kb = subprocess.run(cmd, capture_output=True, text=True,
                                            check=True).stdout.split()
    if rc != "0":
        raise RuntimeError(f"geocorr match failed on {a}")
    return float(seconds), int(maxrss_kb) / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: a temp dir)")
    ap.add_argument("--sizes", default="800x600,3000x2000,6000x4000")
    args = ap.parse_args()
    work = args.out or Path(tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes.split(","):
        W, H = (int(x) for x in size.split("x"))
        a, b = work / f"{size}_a.jpg", work / f"{size}_b.jpg"
        _photo(a, W, H)
        _photo(b, W, H)
        for label, extra in (("working 1024", []), ("full size", ["--max-side", "100000"])):
            t0 = time.perf_counter()
            seconds, gib = _run(a, b, work / f"{size}.json", extra)
            rows.append({"size": size, "mode": label, "seconds": round(seconds, 2),
                         "peak_gib": round(gib, 2)})
            print(f"{size:>10} {label:>12}: {seconds:6.2f} s, peak {gib:.2f} GiB "
                  f"({time.perf_counter() - t0:.1f} s with start-up)", flush=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()

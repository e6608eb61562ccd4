"""Geometry core speed figures on this machine: each fast path next to a naive reference.

Run: ``.venv/bin/python benchmarks/geometry.py`` (or ``make bench``; one thread per
library). Prints one table; the rows come from ``geometry_raster.run()`` and
``geometry_rays.run()``.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import geometry_raster  # noqa: E402
import geometry_rays  # noqa: E402


def main() -> None:
    # One thread per library: on 2 cores two threads contend with numba and each other (the
    # soft silhouette ran 10x slower with 2 threads on a loaded machine).
    from geocorr.threads import set_threads

    set_threads(1)
    rows = geometry_raster.run(threads=1) + geometry_rays.run()
    print(f"# geometry benchmarks — {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores")
    print()
    print("| operation | geocorr (ms) | reference (ms) | speed-up | target (ms) | met | note |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        target = r.get("target_ms")
        met = "—" if target is None else ("yes" if r["fast_ms"] <= target else "NO")
        ref = r.get("reference_ms")
        ratio = r.get("ratio")
        print(f"| {r['name']} | {r['fast_ms']:.2f} | "
              f"{'—' if ref is None else f'{ref:.1f}'} | "
              f"{'—' if ratio is None else f'{ratio:.1f}×'} | "
              f"{'—' if target is None else f'{target:g}'} | {met} | {r.get('note', '')} |")


if __name__ == "__main__":
    main()

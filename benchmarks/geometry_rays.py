"""Speed of ray casting and geodesics (geocorr.geometry.raycast / geodesic).

Run: ``.venv/bin/python benchmarks/geometry_rays.py``. Every timing is the
median over repeats on this machine's CPU; ``reference_ms`` is the slow
alternative the fast path replaces, extrapolated from a subset where a full
run would take minutes (the ``note`` says so).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np
import trimesh

from geocorr.geometry.camera import Camera, look_at
from geocorr.geometry.geodesic import GeodesicSolver
from geocorr.geometry.raycast import RayCaster


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _torus(major: int, minor: int) -> tuple[np.ndarray, np.ndarray]:
    """Evenly meshed torus with ``major * minor`` vertices and twice as many faces."""
    mesh = trimesh.creation.torus(major_radius=1.0, minor_radius=0.35,
                                  major_sections=major, minor_sections=minor)
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)


def _pp3d_ms_per_source(v: np.ndarray, f: np.ndarray, n: int) -> float:
    """potpourri3d's heat solver, one call per source (what the probe did)."""
    import potpourri3d as pp3d

    solver = pp3d.MeshHeatMethodDistanceSolver(v, f)
    solver.compute_distance(0)

    def loop() -> None:
        for s in range(n):
            solver.compute_distance(s)

    return _median_ms(loop, 3) / n


def _row(name: str, fast: float, ref: float | None, target: float | None, note: str) -> dict:
    return {"name": name, "fast_ms": fast, "reference_ms": ref,
            "ratio": (ref / fast) if ref else None, "target_ms": target, "note": note}


def bench_rays(repeats: int = 5) -> dict:
    v, f = _torus(100, 100)                    # 10k vertices, 20k faces
    R, t = look_at(np.array([0.0, -3.0, 2.0]), np.zeros(3))
    K = np.array([[450.0, 0, 158], [0, 450.0, 158], [0, 0, 1]])
    cam = Camera(K, R, t, 317, 317)            # 100 489 pixel rays
    origins, dirs = cam.pixel_rays(cam.pixel_grid().reshape(-1, 2))
    caster = RayCaster(v, f)
    build = _median_ms(lambda: RayCaster(v, f).cast(origins[:1], dirs[:1]), 3)
    caster.cast(origins[:10], dirs[:10])
    fast = _median_ms(lambda: caster.cast(origins, dirs), repeats)
    slow = RayCaster(v, f, engine="python")
    sub = np.random.default_rng(0).choice(len(origins), 2000, replace=False)
    ref = _median_ms(lambda: slow.cast(origins[sub], dirs[sub]), 1) * len(origins) / len(sub)
    hit = caster.cast(origins, dirs).hit.mean()
    return _row("rays: 100k first hits, 20k-face torus", fast, ref, 100.0,
                f"{caster.engine} engine, {hit:.0%} hit; reference = trimesh ray_triangle on "
                f"2000 rays extrapolated; embree scene build + 1 ray {build:.0f} ms")


def bench_heat(repeats: int = 3) -> list[dict]:
    v, f = _torus(200, 50)                     # 10k vertices
    t0 = time.perf_counter()
    heat = GeodesicSolver(v, f, engine="heat")
    heat.distances([0])
    build = (time.perf_counter() - t0) * 1e3
    sources = np.random.default_rng(1).choice(len(v), 100, replace=False)
    fast = _median_ms(lambda: heat.distances(sources), repeats)
    exact = GeodesicSolver(v, f, engine="exact")
    per_exact = _median_ms(lambda: exact.distances(sources[:1]), 3)
    err = np.abs(heat.distances(sources[:3]) - exact.distances(sources[:3])).max()
    diam = exact.distances(sources[:1]).max()
    rows = [_row("geodesic rows: 100 sources, 10k-vertex torus, heat vs exact", fast,
                 per_exact * 100, None,
                 f"exact timed on 1 source x 100; heat setup + 1st solve {build:.0f} ms "
                 f"(incl. numba JIT on first use); max |heat-exact| = {err / diam:.2%} "
                 f"of the max distance")]
    rng = np.random.default_rng(2)
    a = rng.integers(0, len(v), 1000)
    b = rng.integers(0, len(v), 1000)
    fast_pw = _median_ms(lambda: heat.pairwise(a, b), repeats)

    n_unique = len(np.unique(np.concatenate([a, b])))
    per_pp3d = _pp3d_ms_per_source(v, f, 100)
    rows.append(_row("pairwise: 1000 random pairs, 10k-vertex torus", fast_pw,
                     per_pp3d * n_unique, None,
                     f"symmetrised ({n_unique} unique sources, one row each); reference = "
                     f"potpourri3d MeshHeatMethodDistanceSolver, one call per source (100 "
                     f"timed, extrapolated)"))
    return rows


def bench_all_pairs() -> dict:
    v, f = _torus(100, 50)                     # 5k vertices
    fast = _median_ms(lambda: GeodesicSolver(v, f).all_pairs(), 1)
    per = _pp3d_ms_per_source(v, f, 200)
    return _row("all_pairs: 5k-vertex torus, heat", fast, per * len(v), 6000.0,
                "float32 5k x 5k, symmetrised, includes factorisation; reference = "
                "potpourri3d one call per source (200 timed, extrapolated); target = the "
                "probe's 6 s")


def run() -> list[dict]:
    """All measurements, one dict per row (keys: name, fast_ms, reference_ms, ratio,
    target_ms, note)."""
    return [bench_rays(), *bench_heat(), bench_all_pairs()]


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:,.1f}"


if __name__ == "__main__":
    import os

    before = os.getloadavg()[0]
    rows = run()
    print(f"1-min load average before/after: {before:.1f} / {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    print(f"| {'benchmark':58s} | {'fast ms':>9s} | {'ref ms':>11s} | {'ratio':>7s} "
          f"| {'target':>7s} |")
    print(f"|{'-' * 60}|{'-' * 11}|{'-' * 13}|{'-' * 9}|{'-' * 9}|")
    for r in rows:
        print(f"| {r['name']:58s} | {_fmt(r['fast_ms']):>9s} | {_fmt(r['reference_ms']):>11s} "
              f"| {_fmt(r['ratio']):>7s} | {_fmt(r['target_ms']):>7s} |")
    for r in rows:
        print(f"- {r['name']}: {r['note']}")

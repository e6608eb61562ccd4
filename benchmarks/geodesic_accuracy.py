"""Heat-method geodesics against exact ones on irregular meshes, next to potpourri3d.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/geodesic_accuracy.py``.

Each mesh has 7200 vertices. For 10 random sources the exact polyhedral
distances (MMP via pygeodesic) are the reference; the error is the median over
all (source, vertex) pairs of ``|d - exact| / exact``, leaving out vertices
within 5 % of the largest exact distance from their source (there both are tiny
and the ratio is noise). Columns: geocorr's heat engine (default: intrinsic
Delaunay), the same engine on the mesh's own triangles
(``HeatSettings(intrinsic_delaunay=False)``, geocorr's method before), and
potpourri3d's ``MeshHeatMethodDistanceSolver`` with its default
``use_robust=True`` and with ``use_robust=False``. The time columns are
solver setup + 100 distance rows in process CPU time, median of 5 interleaved
calls of both geocorr modes.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
from scipy.spatial import ConvexHull

from geocorr.geometry.geodesic import GeodesicSolver, HeatSettings
from geocorr.geometry.intrinsic import intrinsic_delaunay

N_SOURCES = 10
EXCLUDE = 0.05


def random_ellipsoid(n: int, axes: tuple[float, float, float], crowd: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Hull of ``n`` random unit vectors (Gaussian shifted by ``crowd`` along x, so
    the density varies ~10x over the surface), stretched to semi-axes ``axes``."""
    p = np.random.default_rng(seed).normal(size=(n, 3))
    p[:, 0] += crowd
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    return p * np.asarray(axes), ConvexHull(p).simplices


def jittered_torus(n_major: int, n_minor: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Torus (radii 1, 0.35) from an ``n_major x n_minor`` parameter grid, each vertex
    moved randomly by up to 20 % of a grid step in both parameters."""
    rng = np.random.default_rng(seed)
    i, j = np.meshgrid(np.arange(n_major), np.arange(n_minor), indexing="ij")
    u = (i + rng.uniform(-0.2, 0.2, i.shape)) * 2 * np.pi / n_major
    w = (j + rng.uniform(-0.2, 0.2, j.shape)) * 2 * np.pi / n_minor
    ring = 1.0 + 0.35 * np.cos(w)
    v = np.stack([ring * np.cos(u), ring * np.sin(u), 0.35 * np.sin(w)], -1).reshape(-1, 3)
    a, b = i.ravel(), j.ravel()

    def idx(x, y):
        return (x % n_major) * n_minor + (y % n_minor)

    f = np.concatenate([np.stack([idx(a, b), idx(a + 1, b), idx(a + 1, b + 1)], 1),
                        np.stack([idx(a, b), idx(a + 1, b + 1), idx(a, b + 1)], 1)])
    return v, f


MESHES = {
    "random sphere (hull of uniform points; Delaunay)":
        lambda: random_ellipsoid(7200, (1.0, 1.0, 1.0), 0.0, 0),
    "random ellipsoid 1.8 : 1 : 0.7": lambda: random_ellipsoid(7200, (1.8, 1.0, 0.7), 0.0, 1),
    "crowded ellipsoid 2.5 : 1 : 0.6 (density ~10x)":
        lambda: random_ellipsoid(7200, (2.5, 1.0, 0.6), 0.8, 0),
    "jittered torus 240 x 30 (cells 1 : 2.8)": lambda: jittered_torus(240, 30, 0),
    "jittered torus 30 x 240 (cells 8 : 1)": lambda: jittered_torus(30, 240, 0),
}


def median_relative_error(d: np.ndarray, exact: np.ndarray) -> float:
    far = exact > EXCLUDE * exact.max(axis=1, keepdims=True)
    return float(np.median(np.abs(d - exact)[far] / exact[far]))


def _cpu_ms(fns: dict, repeats: int = 5) -> dict:
    """Median CPU time of each function, calls interleaved (the machine is shared, and
    process CPU time is less sensitive to other jobs than wall time)."""
    times: dict = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.process_time()
            fn()
            times[k].append((time.process_time() - t0) * 1e3)
    return {k: statistics.median(t) for k, t in times.items()}


def run() -> list[dict]:
    import potpourri3d as pp3d

    rows = []
    for name, make in MESHES.items():
        v, f = make()
        sources = np.random.default_rng(7).choice(len(v), N_SOURCES, replace=False)
        exact = GeodesicSolver(v, f, engine="exact").distances(sources)
        row = {"mesh": name, "V": len(v), "flips": intrinsic_delaunay(v, f).n_flips}
        modes = {"idt": HeatSettings(), "plain": HeatSettings(intrinsic_delaunay=False)}
        for key, settings in modes.items():
            d = GeodesicSolver(v, f, heat=settings).distances(sources)
            row[key] = median_relative_error(d, exact)
        batch = np.arange(0, len(v), len(v) // 100)[:100]
        ms = _cpu_ms({k: (lambda s=s, v=v, f=f, b=batch:
                          GeodesicSolver(v, f, heat=s).distances(b))
                      for k, s in modes.items()})
        row.update({k + "_ms": t for k, t in ms.items()})
        for key, robust in (("pp3d", True), ("pp3d_plain", False)):
            solver = pp3d.MeshHeatMethodDistanceSolver(v, f, use_robust=robust)
            d = np.stack([solver.compute_distance(int(s)) for s in sources])
            row[key] = median_relative_error(d, exact)
        rows.append(row)
    return rows


def main() -> None:
    GeodesicSolver(*random_ellipsoid(200, (1, 1, 1), 0.0, 0)).distances([0])   # numba JIT
    before = os.getloadavg()[0]
    rows = run()
    print(f"# heat geodesics vs exact (median relative error, {N_SOURCES} sources, "
          f"vertices within {EXCLUDE:.0%} of the max distance left out); load avg "
          f"{before:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print()
    print("| mesh (7200 vertices) | flips | geocorr heat (intrinsic Delaunay, default) | "
          "geocorr heat, mesh triangles (before) | potpourri3d (use_robust=True, default) | "
          "potpourri3d use_robust=False | setup + 100 rows, CPU ms, default / before |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mesh']} | {r['flips']} | {r['idt']:.2%} | {r['plain']:.2%} | "
              f"{r['pp3d']:.2%} | {r['pp3d_plain']:.2%} | "
              f"{r['idt_ms']:.0f} / {r['plain_ms']:.0f} ({r['idt_ms'] / r['plain_ms']:.2f}×) |")


if __name__ == "__main__":
    main()

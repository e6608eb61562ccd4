"""Speed of geodesic verification for one pair vs a naive per-candidate exact reference.

Setup: a procedural-benchmark pair with stage-1 meshes/cameras (no ground truth
read); candidates = every source foreground cell's NN (before the cyclic test,
so there are >= 1000; tiled when fewer). Timed:

- ``verify_geodesic`` with per-mesh indexes built beforehand (the runner builds
  them once per image); median of ``--repeats`` runs;
- the index build (ray caster + descriptors + all-pairs heat geodesics), once per mesh;
- the naive reference: per candidate, cast both rays, descriptor NN by a loop
  over vertices' dot products, and the two geodesic distances by pygeodesic's
  exact MMP algorithm (one solve per distance), timed on ``--naive`` candidates
  and reported per candidate and extrapolated to all of them (same run).

Also reports how far the heat-method errors are from the exact ones. With
``--cross-map registration`` the timed ``verify_geodesic`` includes fitting the
two non-rigid registrations (they depend on the pair, so they cannot be built
per image), and the naive reference fits them once and then finds each
candidate's mapped vertex by a loop over the other mesh's vertices.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/verify.py --dataset DIR --cache CACHE
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--cache", type=Path, required=True, help="stage-1 cache")
    ap.add_argument("--category", default="car")
    ap.add_argument("--pair", nargs=2, default=None, help="source and target stems")
    ap.add_argument("--backbone", default="xfeat")
    ap.add_argument("--grid-size", type=int, default=128,
                    help="backbone grid (128: ~1000 distinct foreground cells on a synth image)")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--naive", type=int, default=20, help="candidates timed naively")
    ap.add_argument("--cross-map", choices=("descriptor", "registration"), default="descriptor")
    args = ap.parse_args()

    import pygeodesic.geodesic as pg

    from geocorr.features.geometric import GeometricDescriptor
    from geocorr.features.registry import make_backbone
    from geocorr.geometry.raycast import dominant_vertex
    from geocorr.labels.runner import LabelSettings, prepare_image
    from geocorr.matching.pair import MatchSettings, match_pair
    from geocorr.matching.verify import (
        VerifySettings,
        build_mesh_index,
        register_meshes,
        verify_geodesic,
    )

    stems = sorted(p.name for p in (args.cache / args.category).iterdir()
                   if (p / "record.json").is_file())
    a, b = args.pair or stems[:2]
    s = LabelSettings(backbone=args.backbone,
                      verify=VerifySettings(cross_map=args.cross_map))
    bb = make_backbone(args.backbone, grid_size=args.grid_size)
    desc = GeometricDescriptor()
    A = prepare_image(args.dataset, args.cache, args.category, a, bb, desc, s)
    B = prepare_image(args.dataset, args.cache, args.category, b, bb, desc, s)
    m = match_pair(A.features, B.features, A.mask, B.mask, MatchSettings(stride=1))
    reps = int(np.ceil(1000 / max(len(m), 1)))
    src_uv, trg_uv = np.tile(m.src_uv, (reps, 1)), np.tile(m.trg_uv, (reps, 1))
    n = len(src_uv)

    t0 = time.perf_counter()
    build_mesh_index(A.index.vertices, A.index.faces, A.index.descriptors, VerifySettings())
    t_index = time.perf_counter() - t0

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        res = verify_geodesic(A.index, B.index, A.camera, B.camera, src_uv, trg_uv, s.verify)
        times.append(time.perf_counter() - t0)
    med = float(np.median(times))

    # naive reference: one candidate at a time, exact geodesics
    alg_s = pg.PyGeodesicAlgorithmExact(A.index.vertices, A.index.faces.astype(np.int32))
    alg_t = pg.PyGeodesicAlgorithmExact(B.index.vertices, B.index.faces.astype(np.int32))
    rng = np.random.default_rng(0)
    pick = rng.choice(np.flatnonzero(res.hit), size=min(args.naive, int(res.hit.sum())),
                      replace=False)
    exact, heat = [], []
    t0 = time.perf_counter()
    if args.cross_map == "registration":
        fwd = register_meshes(A.index.vertices, B.index.vertices, s.verify.registration)
        bwd = register_meshes(B.index.vertices, A.index.vertices, s.verify.registration)
    for k in pick:
        hs = A.index.caster.cast_pixels(A.camera, src_uv[k : k + 1])
        ht = B.index.caster.cast_pixels(B.camera, trg_uv[k : k + 1])
        vs, vt = dominant_vertex(A.index.faces, hs)[0], dominant_vertex(B.index.faces, ht)[0]
        if args.cross_map == "registration":
            ps, pt = fwd(A.index.vertices[vs][None])[0], bwd(B.index.vertices[vt][None])[0]
            best_t = min(range(len(B.index.vertices)),
                         key=lambda j: float(np.sum((B.index.vertices[j] - ps) ** 2)))
            best_s = min(range(len(A.index.vertices)),
                         key=lambda j: float(np.sum((A.index.vertices[j] - pt) ** 2)))
        else:
            best_t = max(range(len(B.index.descriptors)),
                         key=lambda j: float(B.index.descriptors[j] @ A.index.descriptors[vs]))
            best_s = max(range(len(A.index.descriptors)),
                         key=lambda j: float(A.index.descriptors[j] @ B.index.descriptors[vt]))
        g_t, _ = alg_t.geodesicDistance(int(best_t), int(vt))
        g_s, _ = alg_s.geodesicDistance(int(best_s), int(vs))
        exact.append(0.5 * (g_t / B.index.diagonal + g_s / A.index.diagonal))
        heat.append(res.errors[k])
    t_naive = (time.perf_counter() - t0) / len(pick)
    exact, heat = np.array(exact), np.array(heat)

    load = os.getloadavg()[0]
    print(f"pair {args.category} {a} -> {b}: {n} candidates ({len(m)} distinct, tiled x{reps}), "
          f"{int(res.hit.sum())} hit both meshes; meshes {len(A.index.vertices)} / "
          f"{len(B.index.vertices)} vertices, geodesic nodes {A.index.geodesic.shape[0]} / "
          f"{B.index.geodesic.shape[0]}")
    print(f"cross-mesh map: {args.cross_map}")
    print(f"verify_geodesic: median {1000 * med:.1f} ms (min {1000 * min(times):.1f}, "
          f"{args.repeats} runs); index build {t_index:.2f} s per mesh (once per image)")
    print(f"naive exact reference: {1000 * t_naive:.0f} ms per candidate -> "
          f"{t_naive * n:.1f} s for the pair; ratio {t_naive * n / med:.0f}x")
    print(f"heat vs exact bicyclic error on {len(pick)} candidates: median |diff| "
          f"{np.median(np.abs(heat - exact)):.4f}, max {np.abs(heat - exact).max():.4f} "
          f"(diagonals); load average {load:.1f}, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}")


if __name__ == "__main__":
    main()

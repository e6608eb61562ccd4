"""Benchmark: candidate matching of a 60x60 grid (3600 cells) with 800-d features.

Run ``.venv/bin/python benchmarks/matching.py`` (``--threads N`` pins torch and
numpy BLAS to N threads; default: torch's default). Times ``match_pair``
(blocked NN source -> target and back + relaxed cyclic test) against a naive
full-matrix numpy reference (normalise, ``S = A @ B.T``, argmax both ways,
cycle) measured in the same run, checks both agree, and prints median and
best times over repeats after a warm-up call. Target: <= 1 s on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from geocorr.features.base import FeatureMap
from geocorr.geometry.image_transform import resize_and_pad
from geocorr.matching.pair import MatchSettings, match_pair


def _naive(a: np.ndarray, b: np.ndarray, centres: np.ndarray, tol: np.ndarray):
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    bn = b / np.linalg.norm(b, axis=1, keepdims=True)
    s = an @ bn.T
    fwd = s.argmax(1)
    bwd = s.argmax(0)
    back = bwd[fwd]
    err = np.abs(centres[back] - centres)
    return fwd, back, np.all(err <= tol + 1e-9, axis=1)


def _times(fn, repeats: int) -> list[float]:
    fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=60, help="grid side (60 -> 3600 cells)")
    ap.add_argument("--dim", type=int, default=800)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    g, D = args.cells, args.dim
    tr = resize_and_pad(840, 840, 840)
    # Correlated features (a smooth field + noise) so NN is not trivially unique.
    base = rng.normal(size=(D, g, g)).astype(np.float32)
    src = FeatureMap(base, tr, "src")
    trg = FeatureMap((base[:, :, ::-1] + 0.8 * rng.normal(size=(D, g, g))).astype(np.float32),
                     tr, "trg")
    settings = MatchSettings(tau=0.05)
    fast = _times(lambda: match_pair(src, trg, settings=settings), args.repeats)
    m = match_pair(src, trg, settings=settings)

    a = src.features.reshape(D, -1).T
    b = trg.features.reshape(D, -1).T
    centres = src.cell_centers().reshape(-1, 2)
    tol = m.tolerance
    naive = _times(lambda: _naive(a, b, centres, tol), args.repeats)
    fwd, back, kept = _naive(a, b, centres, tol)
    agree = (np.array_equal(fwd, m.trg_cell) and np.allclose(centres[back], m.back_uv)
             and np.array_equal(kept, m.kept["cyclic"]))
    med_f, med_n = statistics.median(fast), statistics.median(naive)
    print(f"matching {g * g} x {g * g} cells, {D}-d, torch threads {torch.get_num_threads()}")
    print(f"  match_pair (blocked NN both ways + cyclic): median {med_f:.3f} s, "
          f"best {min(fast):.3f} s")
    print(f"  naive numpy full matrix:                    median {med_n:.3f} s, "
          f"best {min(naive):.3f} s")
    print(f"  speed-up (naive / match_pair, medians): {med_n / med_f:.2f}x; "
          f"results identical: {agree}; cyclic kept {int(m.kept['cyclic'].sum())}/{len(m)}")
    print(f"  target <= 1 s: {'PASS' if med_f <= 1.0 else 'FAIL'}")


if __name__ == "__main__":
    main()

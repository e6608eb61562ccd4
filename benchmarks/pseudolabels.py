"""Pseudo-label precision/recall of cyclic-only, spherical and geodesic filtering.

On a procedural-benchmark dataset with a stage-1 cache: pairs are sampled as
``geocorr pseudolabel`` does (estimated azimuth chaining, seed), candidates are
the fused-feature NN matches that pass the relaxed cyclic test (the runner's
settings), and both filters see the same candidates. Ground truth is read
**only for scoring** (``check_correspondences``: same part and template
distance under its threshold = correct).

- precision = correct kept / kept;
- recall = correct kept / correct candidates (cyclic-only recall is 1 by definition);
- kept = share of candidates kept. Candidates whose ray misses a mesh are
  dropped by both 3D filters (counted as not kept).

Writes a markdown table (``--out``) and a precision-recall PNG (``--png``).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/pseudolabels.py --dataset DIR --cache CACHE \\
        --out benchmarks/results/pseudolabels.md --png benchmarks/results/pseudolabels_sweep.png
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

DELTAS = (0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)
THETAS_PI = (0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5)


def _stats(keep: np.ndarray, correct: np.ndarray) -> tuple[float, float, float]:
    k = int(keep.sum())
    prec = float((keep & correct).sum() / k) if k else float("nan")
    rec = float((keep & correct).sum() / max(int(correct.sum()), 1))
    return prec, rec, k / max(len(keep), 1)


def _at_recall(err: np.ndarray, ok: np.ndarray, correct: np.ndarray, recall: float) -> float:
    """Precision of a threshold filter on ``err`` at the smallest threshold reaching ``recall``."""
    e = np.where(ok, err, np.inf)
    order = np.argsort(e, kind="stable")
    cum_c = np.cumsum(correct[order])
    need = recall * correct.sum()
    i = int(np.searchsorted(cum_c, need))
    i = min(i, len(order) - 1)
    return float(cum_c[i] / (i + 1))


def _plot(path: Path, curves: dict[str, list[tuple[float, float]]],
          points: dict[str, tuple[float, float]]) -> None:
    import cv2

    W, H, m = 640, 480, 60
    img = np.full((H, W, 3), 255, np.uint8)
    lo_p = 0.0

    def xy(rec, prec):
        return (int(m + rec * (W - 2 * m)), int(H - m - (prec - lo_p) / (1 - lo_p) * (H - 2 * m)))

    cv2.rectangle(img, (m, m), (W - m, H - m), (0, 0, 0), 1)
    for t in np.linspace(0, 1, 6):
        cv2.putText(img, f"{t:.1f}", (xy(t, 0)[0] - 10, H - m + 18), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, (0, 0, 0), 1)
        p = lo_p + t * (1 - lo_p)
        cv2.putText(img, f"{p:.1f}", (m - 35, xy(0, p)[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1)
        cv2.line(img, (m, xy(0, p)[1]), (W - m, xy(0, p)[1]), (225, 225, 225), 1)
    cv2.putText(img, "recall (correct kept / correct candidates)", (m + 90, H - 15),
                cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    cv2.putText(img, "precision", (5, m - 15), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    colours = {"geodesic": (200, 60, 0), "sphere": (0, 140, 0), "cyclic-only": (0, 0, 220)}
    for k, (name, pts) in enumerate(curves.items()):
        c = colours[name]
        pts = [p for p in pts if np.isfinite(p[1])]
        for (r0, p0), (r1, p1) in zip(pts, pts[1:], strict=False):
            cv2.line(img, xy(r0, p0), xy(r1, p1), c, 2, cv2.LINE_AA)
        for r, p in pts:
            cv2.circle(img, xy(r, p), 3, c, -1)
        cv2.putText(img, name, (W - m - 150, m + 20 + 18 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    c, 1)
    for k, (name, (r, p)) in enumerate(points.items()):
        c = colours[name]
        cv2.drawMarker(img, xy(r, p), c, cv2.MARKER_SQUARE, 10, 2)
        cv2.putText(img, name, (W - m - 150, m + 20 + 18 * (len(curves) + k)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, c, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", img[:, :, ::-1].copy())
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".png")
    with os.fdopen(fd, "wb") as fh:
        fh.write(buf.tobytes())
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--cache", type=Path, required=True, help="stage-1 cache")
    ap.add_argument("--split", default="all")
    ap.add_argument("--pairs-per-category", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backbone", default="xfeat")
    ap.add_argument("--hks-weight", type=float, default=0.5,
                    help="heat-kernel weight of the geometric part descriptor")
    ap.add_argument("--out", type=Path, default=None, help="markdown output")
    ap.add_argument("--png", type=Path, default=None, help="precision-recall PNG")
    args = ap.parse_args()

    from geocorr.data.synth.groundtruth import check_correspondences, load_groundtruth
    from geocorr.features.geometric import GeometricDescriptor, GeometricSettings
    from geocorr.features.registry import make_backbone
    from geocorr.labels.runner import LabelSettings, list_images, prepare_image
    from geocorr.matching.pair import match_pair
    from geocorr.matching.pairs import PairSamplingSettings, sample_pairs
    from geocorr.matching.sphere import SphereSettings, verify_sphere
    from geocorr.matching.verify import VerifySettings, verify_geodesic

    s = LabelSettings(backbone=args.backbone, split=args.split, hks_weight=args.hks_weight,
                      pairs=PairSamplingSettings(args.pairs_per_category, seed=args.seed))
    bb = make_backbone(s.backbone)
    desc = GeometricDescriptor(GeometricSettings(hks_weight=s.hks_weight))
    pairs = sample_pairs(list_images(args.dataset, args.cache, s.split), s.pairs)
    t0 = time.perf_counter()
    memo: dict = {}
    correct, geo, sph, geo_ok, sph_ok, cats = [], [], [], [], [], []
    n_all = 0
    for p in pairs:
        for stem in (p.source, p.target):
            if (p.category, stem) not in memo:
                memo[p.category, stem] = (
                    prepare_image(args.dataset, args.cache, p.category, stem, bb, desc, s),
                    load_groundtruth(args.dataset, p.category, stem))   # scoring only
        (A, ga), (B, gb) = memo[p.category, p.source], memo[p.category, p.target]
        m = match_pair(A.features, B.features, A.mask, B.mask, s.match)
        n_all += len(m)
        c = m.subset(np.flatnonzero(m.kept["cyclic"]))
        g = verify_geodesic(A.index, B.index, A.camera, B.camera, c.src_uv, c.trg_uv,
                            VerifySettings(delta=10.0))
        h = verify_sphere(A.index, B.index, A.camera, B.camera, c.src_uv, c.trg_uv,
                          SphereSettings(theta=np.pi))
        chk = check_correspondences(ga, gb, c.src_uv, c.trg_uv)
        correct.append(chk.correct)
        geo.append(g.errors)
        geo_ok.append(g.hit)
        sph.append(h.errors)
        sph_ok.append(h.hit)
        cats += [p.category] * len(c)
    secs = time.perf_counter() - t0
    correct = np.concatenate(correct)
    geo, sph = np.concatenate(geo), np.concatenate(sph)
    geo_ok, sph_ok = np.concatenate(geo_ok), np.concatenate(sph_ok)
    cats = np.array(cats)
    n = len(correct)

    rows = []
    cyc = _stats(np.ones(n, bool), correct)
    rows.append(("cyclic-only", "-", *cyc))
    geo_curve, sph_curve = [], []
    for d in DELTAS:
        st = _stats(geo_ok & (np.nan_to_num(geo, nan=np.inf) < d), correct)
        rows.append(("geodesic", f"δ = {d:g}", *st))
        geo_curve.append((st[1], st[0]))
    for t in THETAS_PI:
        st = _stats(sph_ok & (np.nan_to_num(sph, nan=np.inf) < t * np.pi), correct)
        rows.append(("sphere", f"θ = {t:g}π", *st))
        sph_curve.append((st[1], st[0]))
    default = VerifySettings().delta
    g_def = _stats(geo_ok & (np.nan_to_num(geo, nan=np.inf) < default), correct)
    s_def = _stats(sph_ok & (np.nan_to_num(sph, nan=np.inf) < SphereSettings().theta), correct)
    s_same = _at_recall(sph, sph_ok, correct, g_def[1])

    lines = [
        "# Pseudo-label filtering: cyclic-only vs sphere vs geodesic", "",
        f"Dataset `{args.dataset}`, stage-1 cache `{args.cache}`, split `{args.split}`; "
        f"{len(pairs)} pairs ({args.pairs_per_category} per category, seed {args.seed}, "
        f"azimuth chaining), backbone `{args.backbone}` + rendered geometric part descriptor "
        f"(weight {s.part_weight:.3f}, hks weight {s.hks_weight:g}), candidate stride "
        f"{s.match.stride}, cyclic τ "
        f"{s.match.tau}. {n_all} NN matches, {n} pass the cyclic test (= the candidates "
        f"every filter sees); {int(correct.sum())} of them correct "
        f"({100 * correct.mean():.1f} %). Rays missing a mesh: {int((~geo_ok).sum())}. "
        f"{secs:.0f} s wall (load {os.getloadavg()[0]:.1f}).", "",
        "Precision = correct kept / kept; recall = correct kept / correct candidates; "
        "kept = share of candidates kept. Ground truth (`GroundTruth/`) is read only here, "
        "for scoring.", "",
        "| filter | threshold | precision | recall | kept |", "|---|---|---|---|---|",
    ]
    for name, thr, prec, rec, kept in rows:
        lines.append(f"| {name} | {thr} | {100 * prec:.1f} % | {100 * rec:.1f} % | "
                     f"{100 * kept:.1f} % |")
    lines += ["", f"Defaults: geodesic δ = {default:g}: precision {100 * g_def[0]:.1f} %, "
              f"recall {100 * g_def[1]:.1f} %; sphere θ = 0.15π: precision "
              f"{100 * s_def[0]:.1f} %, recall {100 * s_def[1]:.1f} %; sphere at the geodesic "
              f"default's recall: precision {100 * s_same:.1f} %.", "",
              "Per category (defaults): | category | candidates | cyclic prec. | sphere prec. "
              "/ recall | geodesic prec. / recall |", "|---|---|---|---|---|"]
    for cat in sorted(set(cats)):
        k = cats == cat
        cc = correct[k]
        sg = _stats(geo_ok[k] & (np.nan_to_num(geo[k], nan=np.inf) < default), cc)
        ss = _stats(sph_ok[k] & (np.nan_to_num(sph[k], nan=np.inf) < SphereSettings().theta),
                    cc)
        lines.append(f"| {cat} | {int(k.sum())} | {100 * cc.mean():.1f} % | "
                     f"{100 * ss[0]:.1f} / {100 * ss[1]:.1f} % | "
                     f"{100 * sg[0]:.1f} / {100 * sg[1]:.1f} % |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=args.out.parent, suffix=".md")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, args.out)
    if args.png is not None:
        _plot(args.png, {"geodesic": geo_curve, "sphere": sph_curve},
              {"cyclic-only": (cyc[1], cyc[0])})


if __name__ == "__main__":
    main()

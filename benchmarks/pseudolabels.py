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
from dataclasses import replace
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


def _panel(title: str, curves: dict[str, list[tuple[float, float]]],
           points: dict[str, tuple[float, float]]) -> np.ndarray:
    import cv2

    W, H, m = 560, 460, 60
    img = np.full((H, W, 3), 255, np.uint8)

    def xy(rec, prec):
        return (int(m + rec * (W - 2 * m)), int(H - m - prec * (H - 2 * m)))

    cv2.rectangle(img, (m, m), (W - m, H - m), (0, 0, 0), 1)
    for t in np.linspace(0, 1, 6):
        cv2.putText(img, f"{t:.1f}", (xy(t, 0)[0] - 10, H - m + 18), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4, (0, 0, 0), 1)
        cv2.putText(img, f"{t:.1f}", (m - 35, xy(0, t)[1] + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1)
        cv2.line(img, (m, xy(0, t)[1]), (W - m, xy(0, t)[1]), (225, 225, 225), 1)
    y95 = xy(0, 0.95)[1]
    cv2.line(img, (m, y95), (W - m, y95), (160, 160, 160), 1, cv2.LINE_4)
    cv2.putText(img, title, (m, m - 25), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    cv2.putText(img, "recall (correct kept / correct candidates)", (m + 40, H - 15),
                cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    cv2.putText(img, "precision", (5, m - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    colours = {"geodesic": (200, 60, 0), "sphere": (0, 140, 0), "cyclic-only": (0, 0, 220),
               "geodesic, GT map (diag.)": (150, 150, 150)}
    for k, (name, pts) in enumerate(curves.items()):
        c = colours[name]
        pts = [p for p in pts if np.isfinite(p[1])]
        for (r0, p0), (r1, p1) in zip(pts, pts[1:], strict=False):
            cv2.line(img, xy(r0, p0), xy(r1, p1), c, 2, cv2.LINE_AA)
        for r, p in pts:
            cv2.circle(img, xy(r, p), 3, c, -1)
        cv2.putText(img, name, (m + 10, H - m - 60 + 16 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    c, 1)
    for k, (name, (r, p)) in enumerate(points.items()):
        c = colours[name]
        cv2.drawMarker(img, xy(r, p), c, cv2.MARKER_SQUARE, 10, 2)
        cv2.putText(img, name, (m + 10, H - m - 60 + 16 * (len(curves) + k)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, c, 1)
    return img


def _write_png(path: Path, panels: list[np.ndarray]) -> None:
    import cv2

    img = np.concatenate(panels, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".png", img[:, :, ::-1].copy())
    if not ok:
        raise ValueError(f"{path}: PNG encoding failed")
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".png")
    with os.fdopen(fd, "wb") as fh:
        fh.write(buf.tobytes())
    os.replace(tmp, path)


def _oracle_map(lab_a, lab_b, query: np.ndarray) -> np.ndarray:
    """``(N,)`` vertex of mesh b whose GT (part, template) is nearest to query vertices of a."""
    from scipy.spatial import cKDTree

    out = np.zeros(len(query), dtype=np.int64)
    qp = lab_a.part[query]
    for p in np.unique(qp):
        ids = np.flatnonzero(lab_b.part == p)
        rows = np.flatnonzero(qp == p)
        if len(ids) == 0:
            # the part is absent from b's labels: nearest template over all of b
            ids = np.arange(len(lab_b.part))
        out[rows] = ids[cKDTree(lab_b.template[ids]).query(lab_a.template[query[rows]])[1]]
    return out


CRITERIA = (("template", "template rule"), ("pck05", "PCK@0.05"), ("pck10", "PCK@0.1"))


def _thresholded(err: np.ndarray, ok: np.ndarray, thr: float) -> np.ndarray:
    return ok & (np.nan_to_num(err, nan=np.inf) < thr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--cache", type=Path, required=True, help="stage-1 cache")
    ap.add_argument("--split", default="all")
    ap.add_argument("--pairs-per-category", type=int, default=8)
    ap.add_argument("--categories", default=None,
                    help="comma-separated categories to keep (pairs sampled as for all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backbone", default="xfeat")
    ap.add_argument("--hks-weight", type=float, default=None,
                    help="heat-kernel weight of the geometric part descriptor (runner default)")
    ap.add_argument("--cross-map", choices=("descriptor", "registration"), default=None,
                    help="geodesic filter's cross-mesh map (default: VerifySettings')")
    ap.add_argument("--delta", type=float, default=None, help="geodesic δ marked as default")
    ap.add_argument("--diagnose", action="store_true",
                    help="bucket the geodesic default's false positives and add a GT-map row "
                         "(scoring-only diagnostics)")
    ap.add_argument("--out", type=Path, default=None, help="markdown output")
    ap.add_argument("--png", type=Path, default=None, help="precision-recall PNG")
    args = ap.parse_args()

    from geocorr.data.synth.groundtruth import (
        check_correspondences,
        label_vertices,
        load_groundtruth,
        score_reconstruction,
    )
    from geocorr.features.geometric import GeometricDescriptor, GeometricSettings
    from geocorr.features.registry import make_backbone
    from geocorr.labels.runner import LabelSettings, list_images, prepare_image
    from geocorr.matching.pair import match_pair
    from geocorr.matching.pairs import PairSamplingSettings, sample_pairs
    from geocorr.matching.sphere import SphereSettings, verify_sphere
    from geocorr.matching.verify import verify_geodesic
    from geocorr.reconstruct.pipeline import load_cached

    kw = {} if args.hks_weight is None else {"hks_weight": args.hks_weight}
    s = LabelSettings(backbone=args.backbone, split=args.split,
                      pairs=PairSamplingSettings(args.pairs_per_category, seed=args.seed), **kw)
    vkw = {k: v for k, v in (("cross_map", args.cross_map), ("delta", args.delta))
           if v is not None}
    if vkw:
        s.verify = replace(s.verify, **vkw)
    bb = make_backbone(s.backbone)
    desc = GeometricDescriptor(GeometricSettings(hks_weight=s.hks_weight))
    pairs = sample_pairs(list_images(args.dataset, args.cache, s.split), s.pairs)
    if args.categories:
        keep_cats = set(args.categories.split(","))
        pairs = [p for p in pairs if p.category in keep_cats]
    if not pairs:
        raise ValueError(f"no pairs left for categories {args.categories!r}")
    t0 = time.perf_counter()
    memo: dict = {}
    cols: dict[str, list] = {k: [] for k in ("template", "pixel_error", "geo", "geo_ok", "sph",
                                             "sph_ok", "cat", "lift_ok", "map_ok", "yaw_bad",
                                             "oracle")}
    n_all = 0
    for p in pairs:
        for stem in (p.source, p.target):
            if (p.category, stem) not in memo:
                inp = prepare_image(args.dataset, args.cache, p.category, stem, bb, desc, s)
                gt = load_groundtruth(args.dataset, p.category, stem)   # scoring only
                diag = None
                if args.diagnose:
                    c = load_cached(args.cache, p.category, stem)
                    diag = (label_vertices(gt, c.vertices, c.camera),
                            score_reconstruction(gt, c.vertices, c.faces, c.camera).yaw_error_deg)
                memo[p.category, stem] = (inp, gt, diag)
        (A, ga, da), (B, gb, db) = memo[p.category, p.source], memo[p.category, p.target]
        m = match_pair(A.features, B.features, A.mask, B.mask, s.match)
        n_all += len(m)
        c = m.subset(np.flatnonzero(m.kept["cyclic"]))
        g = verify_geodesic(A.index, B.index, A.camera, B.camera, c.src_uv, c.trg_uv,
                            replace(s.verify, delta=10.0))
        h = verify_sphere(A.index, B.index, A.camera, B.camera, c.src_uv, c.trg_uv,
                          SphereSettings(theta=np.pi))
        chk = check_correspondences(ga, gb, c.src_uv, c.trg_uv)
        cols["template"].append(chk.correct)
        cols["pixel_error"].append(chk.pixel_error)
        cols["geo"].append(g.errors)
        cols["geo_ok"].append(g.hit)
        cols["sph"].append(h.errors)
        cols["sph_ok"].append(h.hit)
        cols["cat"].append(np.array([p.category] * len(c), dtype=object))
        if args.diagnose:
            (la, yaw_a), (lb, yaw_b) = da, db
            hit = g.hit
            vs, vt = np.where(hit, g.v_s, 0), np.where(hit, g.v_t, 0)
            ht = np.where(hit, g.v_hat_t, 0)
            ia, ib = np.rint(c.src_uv).astype(int), np.rint(c.trg_uv).astype(int)
            pa, pb = ga.part_map[ia[:, 1], ia[:, 0]], gb.part_map[ib[:, 1], ib[:, 0]]
            cols["lift_ok"].append(hit & (la.part[vs] == pa) & (lb.part[vt] == pb))
            cols["map_ok"].append(hit & (lb.part[ht] == la.part[vs])
                                  & (np.linalg.norm(lb.template[ht] - la.template[vs], axis=1)
                                     < 0.25))
            rel = (yaw_a - yaw_b + 180.0) % 360.0 - 180.0
            cols["yaw_bad"].append(np.full(len(c), abs(rel) > 45.0))
            e = np.full(len(c), np.nan)
            if hit.any():
                ot = _oracle_map(la, lb, vs[hit])
                os_ = _oracle_map(lb, la, vt[hit])
                e[hit] = 0.5 * (B.index.geodesic_pairs(ot, vt[hit]) / B.index.diagonal
                                + A.index.geodesic_pairs(os_, vs[hit]) / A.index.diagonal)
            cols["oracle"].append(e)
    secs = time.perf_counter() - t0
    a = {k: np.concatenate(v) for k, v in cols.items() if v}
    crit = {"template": a["template"], "pck05": a["pixel_error"] < 0.05,
            "pck10": a["pixel_error"] < 0.1}
    geo, sph, geo_ok, sph_ok, cats = a["geo"], a["sph"], a["geo_ok"], a["sph_ok"], a["cat"]
    n = len(geo)
    default = s.verify.delta
    theta_d = s.sphere.theta

    def row(name: str, thr: str, keep: np.ndarray) -> str:
        cells = []
        for key, _ in CRITERIA:
            prec, rec, kept = _stats(keep, crit[key])
            cells.append(f"{100 * prec:.1f} / {100 * rec:.1f}")
        return f"| {name} | {thr} | {100 * keep.mean():.1f} % | " + " | ".join(cells) + " |"

    lines = [
        "# Pseudo-label filtering: cyclic-only vs sphere vs geodesic", "",
        f"Dataset `{args.dataset}`, stage-1 cache `{args.cache}`, split `{args.split}`; "
        f"{len(pairs)} pairs ({args.pairs_per_category} per category, seed {args.seed}, "
        f"azimuth chaining{', categories ' + args.categories if args.categories else ''}), "
        f"backbone `{args.backbone}` + rendered geometric part descriptor "
        f"(weight {s.fusion.part_weight:.3f}, hks weight {s.hks_weight:g}), candidate stride "
        f"{s.match.stride}, cyclic τ {s.match.tau}; verification settings {s.verify}. "
        f"{n_all} NN matches, {n} pass the cyclic test (= the candidates every filter sees). "
        f"Rays missing a mesh: {int((~geo_ok).sum())}. {secs:.0f} s wall "
        f"(load {os.getloadavg()[0]:.1f}).", "",
        "Precision / recall (%) under three correctness criteria, all from `GroundTruth/` "
        "(read only here): the template rule (same part, template distance < 0.25), and "
        "PCK-style: target pixel within 0.05 / 0.1 of the target bbox's longer side of the "
        "source point's true counterpart. Recall = correct kept / correct candidates. "
        "Correct candidates: " + ", ".join(
            f"{lab} {100 * crit[k].mean():.1f} %" for k, lab in CRITERIA) + ".", "",
        "| filter | threshold | kept | " + " | ".join(f"{lab} P / R" for _, lab in CRITERIA)
        + " |", "|---|---|---|---|---|---|",
        row("cyclic-only", "-", np.ones(n, bool)),
    ]
    curves: dict[str, dict[str, list]] = {k: {"geodesic": [], "sphere": []} for k, _ in CRITERIA}
    for d in DELTAS:
        keep = _thresholded(geo, geo_ok, d)
        lines.append(row("geodesic", f"δ = {d:g}" + (" (default)" if d == default else ""),
                         keep))
        for k, _ in CRITERIA:
            st = _stats(keep, crit[k])
            curves[k]["geodesic"].append((st[1], st[0]))
    for t in THETAS_PI:
        keep = _thresholded(sph, sph_ok, t * np.pi)
        lines.append(row("sphere", f"θ = {t:g}π" + (" (DIY-SC default)" if t == 0.15 else ""),
                         keep))
        for k, _ in CRITERIA:
            st = _stats(keep, crit[k])
            curves[k]["sphere"].append((st[1], st[0]))
    if args.diagnose:
        for d in DELTAS:
            keep = _thresholded(a["oracle"], geo_ok, d)
            lines.append(row("geodesic, GT map (diagnostic)", f"δ = {d:g}", keep))
            for k, _ in CRITERIA:
                st = _stats(keep, crit[k])
                curves[k].setdefault("geodesic, GT map (diag.)", []).append((st[1], st[0]))
    lines += ["", "At comparable recall (precision of the other filter at the smallest threshold "
              "reaching the same recall):", ""]
    for k, lab in CRITERIA:
        g_def = _stats(_thresholded(geo, geo_ok, default), crit[k])
        s_def = _stats(_thresholded(sph, sph_ok, theta_d), crit[k])
        lines.append(
            f"- {lab}: geodesic δ = {default:g} {100 * g_def[0]:.1f} % at recall "
            f"{100 * g_def[1]:.1f} % vs sphere "
            f"{100 * _at_recall(sph, sph_ok, crit[k], g_def[1]):.1f} %; "
            f"sphere θ = 0.15π {100 * s_def[0]:.1f} % at recall {100 * s_def[1]:.1f} % vs "
            f"geodesic {100 * _at_recall(geo, geo_ok, crit[k], s_def[1]):.1f} %; "
            + "; ".join(f"at recall {r:.0%}: geodesic "
                        f"{100 * _at_recall(geo, geo_ok, crit[k], r):.1f} vs sphere "
                        f"{100 * _at_recall(sph, sph_ok, crit[k], r):.1f} %" for r in (0.3, 0.5)))
    lines += ["", "Per category (defaults), precision / recall %:", "",
              "| category | candidates | cyclic | sphere (template) | geodesic (template) | "
              "sphere (PCK@0.05) | geodesic (PCK@0.05) |", "|---|---|---|---|---|---|---|"]
    for cat in sorted(set(cats)):
        k = cats == cat
        cells = []
        for key in ("template", "pck05"):
            for err, ok, thr in ((sph, sph_ok, theta_d), (geo, geo_ok, default)):
                st = _stats(_thresholded(err[k], ok[k], thr), crit[key][k])
                cells.append(f"{100 * st[0]:.1f} / {100 * st[1]:.1f}")
        lines.append(f"| {cat} | {int(k.sum())} | {100 * crit['template'][k].mean():.1f} | "
                     f"{cells[0]} | {cells[1]} | {cells[2]} | {cells[3]} |")
    if args.diagnose:
        keep = _thresholded(geo, geo_ok, default)
        lines += ["", f"False positives of geodesic δ = {default:g}, bucketed in this order "
                  "(each counted in the first bucket that applies; scoring-only diagnostics): "
                  "*yaw* = the two stage-1 yaws differ from the truth by > 45° relative to "
                  "each other; *lifting* = a lifted vertex's true part (`label_vertices`) is "
                  "not the part its pixel shows; *map* = the cross-mesh map of the source vertex "
                  "is on another true part or ≥ 0.25 template units away; *near miss* = the "
                  "target pixel is within 0.05 bbox of the true counterpart; *other*.", "",
                  "| criterion | false positives | yaw | lifting | map | near miss | other |",
                  "|---|---|---|---|---|---|---|"]
        for key, lab in CRITERIA[:2]:
            rest = keep & ~crit[key]
            total = int(rest.sum())
            cells = []
            for b in (a["yaw_bad"], ~a["lift_ok"], ~a["map_ok"], a["pixel_error"] < 0.05):
                cells.append(int((rest & b).sum()))
                rest = rest & ~b
            cells.append(int(rest.sum()))
            lines.append(f"| {lab} | {total} | " + " | ".join(
                f"{c} ({100 * c / max(total, 1):.0f} %)" for c in cells) + " |")
        hit = geo_ok
        lines += ["", f"Cross-mesh map ({s.verify.cross_map}) right by the template rule for "
                  f"{100 * a['map_ok'][hit].mean():.1f} % of lifted candidates; lifting right "
                  f"for {100 * a['lift_ok'][hit].mean():.1f} %."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=args.out.parent, suffix=".md")
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, args.out)
    if args.png is not None:
        panels = []
        for k, lab in CRITERIA[:2]:
            cyc = _stats(np.ones(n, bool), crit[k])
            panels.append(_panel(f"{lab}: sweeps of delta / theta", curves[k],
                                 {"cyclic-only": (cyc[1], cyc[0])}))
        _write_png(args.png, panels)


if __name__ == "__main__":
    main()

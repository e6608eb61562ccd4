"""Does image-wide context change the left/right swap rate of the CPU backbones?

Run: ``.venv/bin/python benchmarks/features_context.py [--dataset DIR] [--work DIR]``.

On the procedural benchmark's test pairs (generated into ``--work`` unless
``--dataset`` is given: all categories, 20 images each, seed 0), for XFeat and
DAISY + Lab, each without and with :mod:`geocorr.features.context`
(pooled neighbourhoods + whole-object average + position in the object box;
masks from ``Segmentation/``):

* keypoint transfer: NN over the target image's cells
  (:func:`geocorr.evaluation.predict.predict_keypoints`), PCK@0.1 of the
  target box (SPair protocol at 840 px), on all keypoints and on the
  geometry-aware subset; the *keypoint mirror swap rate*: among source
  keypoints whose left/right mirror keypoint is annotated in the target, the
  fraction predicted within 0.1 T of the mirror's location (and not of their
  own); and the fraction of transferred keypoints landing on the mirror part
  (L/R part swap) or another part of the same material (repeated-part swap),
  by the dense ground truth;
* dense candidates (:func:`geocorr.matching.match_pair`, default settings:
  every foreground cell, mask-restricted NN, tau = 0.05): precision of all NN
  candidates and of the cyclic-kept ones, and the same two swap rates over all
  NN candidates.

Ground truth (``GroundTruth/``) is read only to score.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def _dataset(args) -> Path:
    if args.dataset:
        return Path(args.dataset)
    out = Path(args.work or tempfile.mkdtemp(prefix="geocorr-ctx-")) / "synth"
    if (out / "PairAnnotation").is_dir():
        return out
    from geocorr.data.synth.generate import SynthSettings, generate_dataset

    t = time.perf_counter()
    generate_dataset(out, SynthSettings(seed=args.seed, images_per_category=args.images,
                                        pairs_per_split=(1, 1, args.pairs)),
                     progress=True, workers=args.workers)
    print(f"# generated {out} in {time.perf_counter() - t:.0f} s")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", help="existing procedural benchmark (else generated)")
    ap.add_argument("--work", help="where to generate the benchmark and cache features")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", type=int, default=20, help="images per category")
    ap.add_argument("--pairs", type=int, default=20, help="test pairs per category")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()

    from geocorr.data.images import read_mask, read_rgb
    from geocorr.data.spair import SPairDataset
    from geocorr.data.synth.groundtruth import (
        SWAP_LEFT_RIGHT,
        SWAP_REPEATED,
        check_correspondences,
        load_groundtruth,
        mirror_parts,
    )
    from geocorr.evaluation.pck import pck, score_pair
    from geocorr.evaluation.predict import predict_keypoints
    from geocorr.features.cache import FeatureCache, backbone_inputs
    from geocorr.features.registry import make_backbone
    from geocorr.matching.pair import MatchSettings, match_pair

    root = _dataset(args)
    ds = SPairDataset(root)
    pairs = ds.pairs("test")
    cache = FeatureCache(Path(args.work or tempfile.mkdtemp()) / "features")
    images, masks, gts = {}, {}, {}
    for p in pairs:
        for path in (p.src_image, p.trg_image):
            if path not in images:
                images[path] = read_rgb(path)
                masks[path] = read_mask(ds.segmentation_path(p.category, path.name))
                gts[path] = load_groundtruth(root, p.category, path.stem)
    names = {c: ds.keypoint_names(c) for c in {p.category for p in pairs}}
    mirror_kp = {c: mirror_parts(list(n)) for c, n in names.items()}
    trg_all_kps = {}
    for p in pairs:
        ann = json.loads((root / "ImageAnnotation" / p.category /
                          f"{p.trg_image.stem}.json").read_text())
        trg_all_kps[p.pair_id] = {int(k): np.asarray(v, float) for k, v in ann["kps"].items()
                                  if v is not None}
    print(f"# {root}: {len(pairs)} test pairs, {len(images)} images, "
          f"categories {sorted({p.category for p in pairs})}")
    rows = []
    for name in ("xfeat", "classical"):
        for context in (False, True):
            bb = make_backbone(name, context=context)
            feats = {path: cache.get_or_compute(images[path], bb,
                                                **backbone_inputs(bb, mask=masks[path]))
                     for path in images}
            kp_ok = kp_n = kp_lr = kp_rep = mir_n = mir_swap = 0
            scores = []
            nn_n = nn_ok = nn_lr = nn_rep = cyc_n = cyc_ok = 0
            per_cat: dict[str, list[int]] = {}
            for p in pairs:
                src, trg = feats[p.src_image], feats[p.trg_image]
                gs, gt = gts[p.src_image], gts[p.trg_image]
                pred = predict_keypoints(src, trg, p.src_kps).trg_kps
                score = score_pair(p, pred, rule="bbox", size=840,
                                   groups=ds.geometry_groups(p.category))
                scores.append(score)
                ok = score.correct(0.1)
                c = per_cat.setdefault(p.category, [0, 0, 0, 0])
                mirrors = mirror_kp[p.category][p.kps_ids]
                for k, m_id in enumerate(mirrors):
                    if m_id >= 0 and int(m_id) in trg_all_kps[p.pair_id]:
                        mir_n += 1
                        d_mirror = np.linalg.norm(pred[k] - trg_all_kps[p.pair_id][int(m_id)])
                        # threshold in original pixels: T (canvas) / canvas scale
                        t_orig = 0.1 * score.threshold * max(p.trg_size) / 840
                        swapped = int(d_mirror < t_orig and not ok[k])
                        mir_swap += swapped
                        c[2] += swapped
                        c[3] += 1
                chk = check_correspondences(gs, gt, p.src_kps, pred)
                kp_ok += int(ok.sum())
                kp_n += len(ok)
                kp_lr += int((chk.swap == SWAP_LEFT_RIGHT).sum())
                kp_rep += int((chk.swap == SWAP_REPEATED).sum())
                c[0] += int(ok.sum())
                c[1] += len(ok)
                m = match_pair(src, trg, masks[p.src_image], masks[p.trg_image],
                               MatchSettings())
                chk = check_correspondences(gs, gt, m.src_uv, m.trg_uv)
                kept = m.kept["cyclic"]
                nn_n += len(m)
                nn_ok += int(chk.correct.sum())
                nn_lr += int((chk.swap == SWAP_LEFT_RIGHT).sum())
                nn_rep += int((chk.swap == SWAP_REPEATED).sum())
                cyc_n += int(kept.sum())
                cyc_ok += int(chk.correct[kept].sum())
            rows.append(dict(
                name=name + (" + context" if context else ""), channels=src.shape[0],
                pck=kp_ok / max(kp_n, 1), kp_lr=kp_lr / max(kp_n, 1),
                ga=pck(scores, (0.1,), subset="geometry_aware").per_keypoint[0.1],
                mir=mir_swap / max(mir_n, 1), mir_n=mir_n,
                kp_rep=kp_rep / max(kp_n, 1), nn_prec=nn_ok / max(nn_n, 1),
                cyc_prec=cyc_ok / max(cyc_n, 1), cyc_keep=cyc_n / max(nn_n, 1),
                nn_lr=nn_lr / max(nn_n, 1), nn_rep=nn_rep / max(nn_n, 1),
                per_cat={k: (v[0] / max(v[1], 1), v[2] / max(v[3], 1))
                         for k, v in sorted(per_cat.items())}))
            print(f"# done {rows[-1]['name']}", flush=True)
    print(f"\n{len(pairs)} test pairs, {kp_n} keypoints, {nn_n / max(len(pairs), 1):.0f} NN "
          f"candidates per pair\n")
    print("| features | C | kp PCK@0.1 | GA PCK@0.1 | kp mirror swap | kp L/R part swap "
          "| kp repeated swap | NN precision | cyclic precision (kept) | NN L/R swap "
          "| NN repeated swap |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['channels']} | {r['pck']:.3f} | "
              f"{r['ga']:.3f} | {r['mir']:.3f} (of {r['mir_n']}) | "
              f"{r['kp_lr']:.3f} | {r['kp_rep']:.3f} | {r['nn_prec']:.3f} | "
              f"{r['cyc_prec']:.3f} ({r['cyc_keep']:.2f}) | {r['nn_lr']:.3f} | "
              f"{r['nn_rep']:.3f} |")
    cats = list(rows[0]["per_cat"])
    print("\nPer category, keypoint PCK@0.1 / kp mirror swap rate:\n")
    print("| features | " + " | ".join(cats) + " |")
    print("|---|" + "---|" * len(cats))
    for r in rows:
        print(f"| {r['name']} | " + " | ".join(
            f"{r['per_cat'][c][0]:.2f} / {r['per_cat'][c][1]:.2f}" for c in cats) + " |")


if __name__ == "__main__":
    main()

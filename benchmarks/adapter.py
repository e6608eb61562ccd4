"""Adapter benchmark: zero-shot 2D features vs the adapter trained on each pseudo-label store.

Trains one adapter per store (and seed) on cached frozen features of the
store's training pairs (pseudo-labels only; no ground truth), then scores
held-out test pairs of the same procedural benchmark with
``geocorr.evaluation`` (PCK@alpha*bbox on the 840 canvas protocol). Only the
scorer reads the test pairs' annotated keypoints.

Example (stores from ``geocorr pseudolabel``, features from ``geocorr features``, the
context ones with ``--context``)::

    .venv/bin/python benchmarks/adapter.py --dataset D --feature-cache F \
        --store geodesic=geo.sqlite --store cyclic=cyc.sqlite --store sphere=sph.sqlite \
        --work RUNS --epochs 8 --seeds 0,1,2,3 --context --context-blocks 4 --global-pool \
        --equal-count --md table.md

``--equal-count`` adds, per store, a run on a seeded subset of its labels the size of the
smallest store (filters compared at equal label count as well as at equal pairs). A run folder
that already holds a finished ``last.pt`` with the same settings is reused, not retrained.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--feature-cache", type=Path, required=True)
    ap.add_argument("--store", action="append", required=True, help="NAME=PATH, repeatable")
    ap.add_argument("--work", type=Path, required=True, help="run folders go here")
    ap.add_argument("--backbone", default="xfeat", help="comma-separated adapter sources")
    ap.add_argument("--split", default="test")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--out-dim", type=int, default=128)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--max-points", type=int, default=50)
    ap.add_argument("--context", action="store_true",
                    help="sources encoded with `geocorr features --context` (masks from "
                    "Segmentation/, as that command does)")
    ap.add_argument("--context-blocks", type=int, default=0, help="dilated adapter blocks")
    ap.add_argument("--global-pool", action="store_true", help="adapter image-mean branch")
    ap.add_argument("--equal-count", action="store_true",
                    help="also train every store cut down to the smallest store's label count")
    ap.add_argument("--tag", default="", help="run-folder suffix and row label")
    ap.add_argument("--jsonl", type=Path, default=None, help="append one JSON line per run")
    ap.add_argument("--md", type=Path, default=None)
    args = ap.parse_args()

    import torch

    from geocorr.adapter.checkpoint import apply_adapter, from_pretrained
    from geocorr.adapter.dataset import (
        cache_feature_provider,
        labeled_pairs_from_store,
        spair_image_path,
        subsample_labels,
    )
    from geocorr.adapter.train import TrainSettings, train_adapter
    from geocorr.atomic import write_text_atomic
    from geocorr.data.spair import SPairDataset
    from geocorr.evaluation.predict import feature_predictor
    from geocorr.evaluation.scorer import evaluate_pairs
    from geocorr.features.cache import FeatureCache, dataset_mask_for
    from geocorr.features.registry import make_backbone
    from geocorr.labels.store import LabelStore

    torch.set_num_threads(1)
    ds = SPairDataset(args.dataset)
    test_pairs = ds.pairs(args.split)
    extra = {"context": True} if args.context else {}
    backbones = [make_backbone(b, **extra) for b in args.backbone.split(",")]

    provider = cache_feature_provider(
        FeatureCache(args.feature_cache), backbones,
        mask_for=dataset_mask_for(args.dataset) if args.context else None)
    memo: dict[Path, dict] = {}

    def maps(path: Path) -> dict:
        if path not in memo:
            memo[path] = provider(Path(path), "")
        return memo[path]

    alphas = (0.05, 0.1, 0.15)

    def score(feature_fn) -> dict[float, float]:
        res = evaluate_pairs(test_pairs, feature_predictor(feature_fn), ds, alphas)
        return {a: 100 * res.report.overall.per_image[a] for a in alphas}

    rows = [("zero-shot " + b.name + (" +context" if args.context else ""), "-", "-",
             score(lambda p, n=b.name: maps(p)[n]), []) for b in backbones]
    seeds = [int(s) for s in args.seeds.split(",")]
    stores = {}
    for item in args.store:
        name, path = item.split("=", 1)
        with LabelStore(path) as st:
            stores[name] = labeled_pairs_from_store(st, spair_image_path(args.dataset),
                                                    min_labels=2)
    counts = {n: sum(len(p.src_uv) for p in pairs) for n, pairs in stores.items()}
    runs = [(n, None) for n in stores]
    if args.equal_count:
        budget = min(counts.values())
        runs += [(n, budget) for n in stores if counts[n] > budget]
    label = args.backbone + (" +context" if args.context else "") + (
        f", {args.context_blocks} dilated" if args.context_blocks else "") + (
        ", global" if args.global_pool else "") + (f", {args.tag}" if args.tag else "")
    for name, budget in runs:
        per_seed, n_pairs, n_labels = [], 0, 0
        for seed in seeds:
            t0 = time.perf_counter()
            settings = TrainSettings(epochs=args.epochs, out_dim=args.out_dim, seed=seed,
                                     lr=args.lr, max_points=args.max_points,
                                     context_blocks=args.context_blocks,
                                     global_pool=args.global_pool, label_budget=budget)
            pairs = stores[name]
            if budget is not None:
                pairs = subsample_labels(pairs, budget, seed)
            n_pairs, n_labels = len(pairs), sum(len(p.src_uv) for p in pairs)
            run = f"{name}{'_eq' if budget else ''}{'_' + args.tag if args.tag else ''}_s{seed}"
            result = train_adapter(pairs, provider, args.work / run, settings, progress=False)
            seconds = time.perf_counter() - t0
            adapter = from_pretrained(result.best_path)
            pck = score(lambda p, a=adapter: apply_adapter(a, maps(p)))
            per_seed.append(pck)
            print(f"{run}: {result.step} steps in {seconds:.0f} s, "
                  f"best val {result.best_val_loss:.3f}, PCK {pck}", flush=True)
            if args.jsonl is not None:
                with open(args.jsonl, "a") as f:
                    f.write(json.dumps({"run": run, "store": name, "budget": budget,
                                        "label": label, "seed": seed, "pairs": n_pairs,
                                        "labels": n_labels, "steps": result.step,
                                        "train_s": round(seconds, 1),
                                        "best_val": result.best_val_loss,
                                        "pck": {str(a): v for a, v in pck.items()},
                                        "settings": settings.to_dict()}) + "\n")
        mean = {a: float(np.mean([p[a] for p in per_seed])) for a in alphas}
        what = f"{name} labels" + (" (equal count)" if budget else "")
        rows.append((f"adapter ({label}) on {what}", n_pairs, n_labels, mean, per_seed))

    lines = ["| method | train pairs | labels | " + " | ".join(f"PCK@{a}" for a in alphas)
             + " | per seed PCK@0.1 |", "|---|---|---|" + "---|" * (len(alphas) + 1)]
    for method, npairs, nlab, pck, per_seed in rows:
        seeds_txt = ", ".join(f"{p[0.1]:.1f}" for p in per_seed) or "-"
        lines.append(f"| {method} | {npairs} | {nlab} | "
                     + " | ".join(f"{pck[a]:.1f}" for a in alphas) + f" | {seeds_txt} |")
    table = "\n".join(lines)
    print(table)
    if args.md is not None:
        write_text_atomic(args.md, table + "\n")


if __name__ == "__main__":
    main()

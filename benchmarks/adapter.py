"""Adapter benchmark: zero-shot 2D features vs the adapter trained on each pseudo-label store.

Trains one adapter per store (and seed) on cached frozen features of the
store's training pairs (pseudo-labels only; no ground truth), then scores
held-out test pairs of the same procedural benchmark with
``geocorr.evaluation`` (PCK@alpha*bbox on the 840 canvas protocol). Only the
scorer reads the test pairs' annotated keypoints.

Example (stores from ``geocorr pseudolabel``, features from ``geocorr features``)::

    .venv/bin/python benchmarks/adapter.py --dataset /tmp/e2/synth --feature-cache /tmp/g2/fcache \
        --store geodesic=/tmp/g2/geo1.sqlite --store cyclic=/tmp/g2/cyc1.sqlite \
        --work /tmp/g2/runs --epochs 20 --seeds 0,1,2 --md benchmarks/results/adapter.md
"""

from __future__ import annotations

import argparse
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
    ap.add_argument("--md", type=Path, default=None)
    args = ap.parse_args()

    import torch

    from geocorr.adapter.checkpoint import apply_adapter, from_pretrained
    from geocorr.adapter.dataset import (
        cache_feature_provider,
        labeled_pairs_from_store,
        spair_image_path,
    )
    from geocorr.adapter.train import TrainSettings, train_adapter
    from geocorr.data.spair import SPairDataset
    from geocorr.evaluation.predict import feature_predictor
    from geocorr.evaluation.scorer import evaluate_pairs
    from geocorr.features.cache import FeatureCache
    from geocorr.features.registry import make_backbone
    from geocorr.labels.store import LabelStore

    torch.set_num_threads(1)
    ds = SPairDataset(args.dataset)
    test_pairs = ds.pairs(args.split)
    backbones = [make_backbone(b) for b in args.backbone.split(",")]
    provider = cache_feature_provider(FeatureCache(args.feature_cache), backbones)
    memo: dict[Path, dict] = {}

    def maps(path: Path) -> dict:
        if path not in memo:
            memo[path] = provider(Path(path), "")
        return memo[path]

    alphas = (0.05, 0.1, 0.15)

    def score(feature_fn) -> dict[float, float]:
        res = evaluate_pairs(test_pairs, feature_predictor(feature_fn), ds, alphas)
        return {a: 100 * res.report.overall.per_image[a] for a in alphas}

    rows = [("zero-shot " + b.name, "-", "-", score(lambda p, n=b.name: maps(p)[n]), [])
            for b in backbones]
    seeds = [int(s) for s in args.seeds.split(",")]
    for item in args.store:
        name, path = item.split("=", 1)
        with LabelStore(path) as st:
            pairs = labeled_pairs_from_store(st, spair_image_path(args.dataset), min_labels=2)
        n_labels = sum(len(p.src_uv) for p in pairs)
        per_seed = []
        for seed in seeds:
            t0 = time.perf_counter()
            settings = TrainSettings(epochs=args.epochs, out_dim=args.out_dim, seed=seed,
                                     lr=args.lr)
            result = train_adapter(pairs, provider, args.work / f"{name}_s{seed}", settings,
                                   progress=False)
            adapter = from_pretrained(result.best_path)
            pck = score(lambda p, a=adapter: apply_adapter(a, maps(p)))
            per_seed.append(pck)
            print(f"{name} seed {seed}: {result.step} steps in {time.perf_counter() - t0:.0f} s,"
                  f" best val {result.best_val_loss:.3f}, PCK {pck}", flush=True)
        mean = {a: float(np.mean([p[a] for p in per_seed])) for a in alphas}
        rows.append((f"adapter ({args.backbone}) on {name} labels", len(pairs), n_labels, mean,
                     per_seed))

    lines = ["| method | train pairs | labels | " + " | ".join(f"PCK@{a}" for a in alphas)
             + " | per seed PCK@0.1 |", "|---|---|---|" + "---|" * (len(alphas) + 1)]
    for method, npairs, nlab, pck, per_seed in rows:
        seeds_txt = ", ".join(f"{p[0.1]:.1f}" for p in per_seed) or "-"
        lines.append(f"| {method} | {npairs} | {nlab} | "
                     + " | ".join(f"{pck[a]:.1f}" for a in alphas) + f" | {seeds_txt} |")
    table = "\n".join(lines)
    print(table)
    if args.md is not None:
        args.md.write_text(table + "\n")


if __name__ == "__main__":
    main()

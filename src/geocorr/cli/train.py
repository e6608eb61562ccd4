"""``geocorr train``: train the adapter on a pseudo-label store over cached frozen features."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        store: Path = typer.Option(
            ..., "--store", help="Pseudo-label store (geocorr pseudolabel)."),
        cache: Path = typer.Option(..., "--cache", help="Feature cache (geocorr features)."),
        dataset: Path = typer.Option(
            ..., "--dataset", help="SPair-layout dataset the labels were made on (images)."),
        out: Path = typer.Option(..., "--out", help="Run folder; resumes from its last.pt."),
        backbone: list[str] = typer.Option(
            ["xfeat"], "--backbone",
            help="Feature sources (repeat or comma-separate), encoded with the same settings "
            "as `geocorr features`."),
        context: bool = typer.Option(
            False, "--context/--no-context", help="The sources were encoded with --context."),
        weights_path: list[str] = typer.Option(
            [], "--weights", help="NAME=PATH for a source's weights (repeatable), as given to "
                                  "`geocorr features --model`."),
        grid_size: int = typer.Option(None, "--grid-size", help="xfeat/classical grid side."),
        masks: bool = typer.Option(
            True, "--masks/--no-masks", help="Segmentation/ masks for context backbones."),
        epochs: int = typer.Option(10, "--epochs", help="Passes over the training pairs."),
        steps: int = typer.Option(None, "--steps", help="Total steps (overrides --epochs)."),
        lr: float = typer.Option(5e-3, "--lr", help="Peak AdamW learning rate."),
        out_dim: int = typer.Option(128, "--out-dim", help="Adapter output width (768: DINO+SD)."),
        max_points: int = typer.Option(50, "--max-points", help="Pseudo-keypoints per step."),
        val_fraction: float = typer.Option(0.1, "--val-fraction", help="Pairs held out."),
        val_every: int = typer.Option(None, "--val-every", help="Steps between validations."),
        context_blocks: int = typer.Option(
            None, "--context-blocks",
            help="Dilated adapter blocks after the mix (0: DIY-SC exact). Default: 4 when "
            "every source is xfeat/classical, else 0."),
        global_pool: bool = typer.Option(
            None, "--global-pool/--no-global-pool",
            help="Image-mean branch of the adapter. Default: on when every source is "
            "xfeat/classical, else off."),
        label_budget: int = typer.Option(
            None, "--label-budget",
            help="Train on a seeded random subset of this many labels (equal-count "
            "comparisons of filters)."),
        seed: int = typer.Option(0, "--seed", help="Seed of split, order, subsets, init."),
        device: str = typer.Option("cpu", "--device", help="torch device."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    ) -> None:
        """Train the DIY-SC adapter on verified pseudo-labels (no ground truth)."""
        from geocorr.cli._common import check_device, user_errors

        with user_errors():
            check_device(device)
            from geocorr.adapter.dataset import (
                cache_feature_provider,
                labeled_pairs_from_store,
                spair_image_path,
            )
            from geocorr.adapter.train import TrainSettings, context_defaults, train_adapter
            from geocorr.features.cache import FeatureCache, dataset_mask_for
            from geocorr.features.registry import make_backbones, parse_weights
            from geocorr.labels.store import LabelStore

            names = [s.strip() for item in backbone for s in item.split(",") if s.strip()]
            try:
                backbones = list(make_backbones(names, device=device,
                                                weights=parse_weights(weights_path),
                                                context=context or None,
                                                grid_size=grid_size).values())
            except ValueError as exc:
                raise ValueError(f"--backbone/--weights/--grid-size/--context: {exc}") from None
            image_path = spair_image_path(dataset)

            mask_for = dataset_mask_for(dataset) if masks else None

            auto = context_defaults(names)
            if context_blocks is None:
                context_blocks = int(auto["context_blocks"])
            if global_pool is None:
                global_pool = bool(auto["global_pool"])
            with LabelStore(store) as label_store:
                pairs = labeled_pairs_from_store(label_store, image_path, min_labels=2)
            provider = cache_feature_provider(FeatureCache(cache), backbones, mask_for=mask_for)
            settings = TrainSettings(epochs=epochs, steps=steps, lr=lr, out_dim=out_dim,
                                     max_points=max_points, val_fraction=val_fraction,
                                     val_every=val_every, seed=seed,
                                     context_blocks=context_blocks, global_pool=global_pool,
                                     label_budget=label_budget)
            result = train_adapter(pairs, provider, out, settings, device=device,
                                   progress=not quiet)
        last = result.history[-1] if result.history else {}
        typer.echo(f"{result.num_train_pairs} train / {result.num_val_pairs} val pairs, "
                   f"step {result.step}/{result.total_steps}, last val loss "
                   f"{last.get('val_loss', float('nan')):.4f}, best {result.best_val_loss:.4f} "
                   f"-> {result.best_path}")

"""``geocorr train``: train the adapter on a pseudo-label store over cached frozen features."""

from __future__ import annotations

from pathlib import Path

import typer

from geocorr.adapter.settings import TrainSettings

_DEFAULT = TrainSettings()


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        store: Path = typer.Option(
            ..., "--store", help="Pseudo-label store (geocorr pseudolabel)."),
        cache: Path = typer.Option(..., "--cache", help="Feature cache (geocorr features)."),
        dataset: Path = typer.Option(
            ..., "--dataset", help="SPair-layout dataset the labels were made on (images)."),
        out: Path = typer.Option(..., "--out", help="Run folder; resumes from its last.pt."),
        backbone: list[str] | None = typer.Option(
            None, "--backbone",
            help="Feature sources (repeat or comma-separate), encoded with the same settings "
            "as `geocorr features` (default xfeat)."),
        context: bool = typer.Option(
            False, "--context/--no-context", help="The sources were encoded with --context."),
        weights_path: list[str] = typer.Option(
            [], "--weights", help="NAME=PATH for a source's weights (repeatable), as given to "
                                  "`geocorr features --model`."),
        grid_size: int | None = typer.Option(None, "--grid-size",
                                             help="xfeat/classical grid side."),
        masks: bool = typer.Option(
            True, "--masks/--no-masks", help="Segmentation/ masks for context backbones."),
        epochs: int | None = typer.Option(
            None, "--epochs", help=f"Passes over the training pairs (default {_DEFAULT.epochs})."),
        steps: int | None = typer.Option(None, "--steps",
                                         help="Total steps (overrides --epochs)."),
        lr: float | None = typer.Option(
            None, "--lr", help=f"Peak AdamW learning rate (default {_DEFAULT.lr:g})."),
        out_dim: int | None = typer.Option(
            None, "--out-dim",
            help=f"Adapter output width (default {_DEFAULT.out_dim}; 768: DINO+SD)."),
        max_points: int | None = typer.Option(
            None, "--max-points",
            help=f"Pseudo-keypoints per step (default {_DEFAULT.max_points})."),
        val_fraction: float | None = typer.Option(
            None, "--val-fraction", help=f"Pairs held out (default {_DEFAULT.val_fraction:g})."),
        val_every: int | None = typer.Option(
            None, "--val-every", help="Steps between validations (default: once per epoch)."),
        context_blocks: int | None = typer.Option(
            None, "--context-blocks",
            help="Dilated adapter blocks after the mix (0: DIY-SC exact). Default: 4 when "
            "every source is xfeat/classical, else 0."),
        global_pool: bool | None = typer.Option(
            None, "--global-pool/--no-global-pool",
            help="Image-mean branch of the adapter. Default: on when every source is "
            "xfeat/classical, else off."),
        label_budget: int | None = typer.Option(
            None, "--label-budget",
            help="Train on a seeded random subset of this many labels (equal-count "
            "comparisons of filters)."),
        seed: int | None = typer.Option(
            None, "--seed", help=f"Seed of split, order, subsets, init (default {_DEFAULT.seed})."),
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
            from geocorr.adapter.settings import train_settings
            from geocorr.adapter.train import train_adapter
            from geocorr.features.cache import FeatureCache
            from geocorr.features.registry import (
                DEFAULT_BACKBONE,
                context_mask_source,
                make_backbones,
            )
            from geocorr.labels.store import LabelStore

            try:
                backbones = make_backbones(backbone or [DEFAULT_BACKBONE], device=device,
                                           weights=weights_path, context=context or None,
                                           grid_size=grid_size)
            except ValueError as exc:
                raise ValueError(f"--backbone/--weights/--grid-size/--context: {exc}") from None
            settings = train_settings(list(backbones), epochs=epochs, steps=steps, lr=lr,
                                      out_dim=out_dim, max_points=max_points,
                                      val_fraction=val_fraction, val_every=val_every, seed=seed,
                                      context_blocks=context_blocks, global_pool=global_pool,
                                      label_budget=label_budget)
            image_path = spair_image_path(dataset)
            with LabelStore(store) as label_store:
                pairs = labeled_pairs_from_store(label_store, image_path, min_labels=2)
            provider = cache_feature_provider(
                FeatureCache(cache), list(backbones.values()),
                mask_for=context_mask_source(backbones.values(), dataset if masks else None))
            result = train_adapter(pairs, provider, out, settings, device=device,
                                   progress=not quiet)
        last = result.history[-1] if result.history else {}
        typer.echo(f"{result.num_train_pairs} train / {result.num_val_pairs} val pairs, "
                   f"step {result.step}/{result.total_steps}, last val loss "
                   f"{last.get('val_loss', float('nan')):.4f}, best {result.best_val_loss:.4f} "
                   f"-> {result.best_path}")

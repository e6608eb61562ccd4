"""``geocorr features``: encode a dataset's images once into the feature cache."""

from __future__ import annotations

from pathlib import Path

import typer

from geocorr.cli._engine import (
    CHUNK_SIZE,
    CPUS_PER_WORKER,
    ENGINE,
    GPUS_PER_WORKER,
    NUM_WORKERS,
    RAY_ADDRESS,
)


def register(app: typer.Typer) -> None:
    @app.command()
    def features(
        dataset: Path = typer.Option(..., "--dataset", help="SPair-layout dataset root."),
        split: list[str] = typer.Option(
            ["test"], "--split", help="Splits to encode (repeat or comma-separate)."),
        backbone: str | None = typer.Option(
            None, "--backbone", help="xfeat, classical, dinov2, dinov3 or sd (default xfeat)."),
        cache: Path = typer.Option(..., "--cache", help="Feature cache directory."),
        context: bool = typer.Option(
            False, "--context/--no-context",
            help="Image-wide context for xfeat/classical (pooled + position in the object)."),
        model: str | None = typer.Option(
            None, "--model", help="Weights: local directory or hub id (dinov2/dinov3/sd), "
            "state-dict path (xfeat)."),
        image_size: int | None = typer.Option(
            None, "--image-size", help="Canvas side (dinov2/dinov3/sd; default per backbone)."),
        prompt: str | None = typer.Option(
            None, "--prompt", help='SD prompt, e.g. "a photo of a {category}".'),
        layer: int | None = typer.Option(
            None, "--layer", help="ViT hidden state (dinov2/dinov3; default: final output)."),
        timestep: int | None = typer.Option(None, "--timestep",
                                            help="SD noising step (default 50)."),
        grid_size: int | None = typer.Option(
            None, "--grid-size", help="Output grid side (xfeat/classical; default 64)."),
        float16: bool = typer.Option(False, "--float16", help="Store features as float16."),
        masks: bool = typer.Option(
            True, "--masks/--no-masks", help="Use Segmentation/ masks for the context."),
        device: str = typer.Option("cpu", "--device", help="torch device."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
        engine: str = ENGINE,
        ray_address: str | None = RAY_ADDRESS,
        num_workers: int | None = NUM_WORKERS,
        num_cpus_per_worker: float | None = CPUS_PER_WORKER,
        num_gpus_per_worker: float | None = GPUS_PER_WORKER,
        chunk_size: int | None = CHUNK_SIZE,
    ) -> None:
        """Encode every image of the given splits once; later runs read the cache."""
        from geocorr.cli._common import user_errors

        with user_errors():
            from functools import partial

            from geocorr.cli._engine import engine_settings, report_failures
            from geocorr.engine import make_engine
            from geocorr.features.cache import FeatureCache, encode_dataset
            from geocorr.features.registry import DEFAULT_BACKBONE

            eng = engine_settings(engine, ray_address, num_workers, num_cpus_per_worker,
                                  num_gpus_per_worker, chunk_size, device=device)
            backbone = backbone or DEFAULT_BACKBONE
            build = partial(_build_backbone, backbone, device, model, context, image_size,
                            prompt, layer, timestep, grid_size)
            # local: built here; Ray: each worker builds it once, on its own device (its
            # errors come back here as the same one-line ValueError)
            bb = build() if eng.engine == "local" else build
            splits = [s.strip() for item in split for s in item.split(",") if s.strip()]
            runner = make_engine(eng)
            try:
                summary = encode_dataset(dataset, splits, bb,
                                         FeatureCache(cache, float16=float16),
                                         use_masks=masks, progress=not quiet, engine=runner)
            finally:
                runner.close()
            report_failures(summary.failures, "images", label=lambda it: str(it[0]))
        typer.echo(f"{backbone}: {summary.num_images} images, {summary.computed} computed "
                   f"({summary.seconds_per_computed:.3f} s each), {summary.cached} from cache, "
                   f"{summary.masked} with masks -> {cache}")


def _build_backbone(backbone: str, device: str, model: str | None, context: bool,
                    image_size: int | None, prompt: str | None, layer: int | None,
                    timestep: int | None, grid_size: int | None):
    """The backbone the flags describe (module level: Ray workers call it by reference)."""
    from geocorr.features.registry import make_backbones

    try:
        return make_backbones([backbone], device=device,
                              weights=None if model is None else {backbone: model},
                              context=context or None, image_size=image_size, prompt=prompt,
                              layer=layer, timestep=timestep, grid_size=grid_size)[backbone]
    except ValueError as exc:
        raise ValueError(f"--backbone {backbone}: {exc}") from None

"""``geocorr pseudolabel``: stage 2 + verification over sampled pairs into a crash-safe store."""

from __future__ import annotations

from pathlib import Path

import typer

from geocorr.cli._common import PART_CONFIDENCE_HELP, PART_WEIGHT_HELP
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
    def pseudolabel(
        dataset: Path = typer.Option(..., "--dataset", help="SPair-layout dataset folder."),
        cache: Path = typer.Option(..., "--cache", help="Stage-1 cache (geocorr reconstruct)."),
        out: Path = typer.Option(..., "--out", help="SQLite label store (resumed if present)."),
        filter_: str | None = typer.Option(
            None, "--filter", help="geodesic | sphere | cyclic (default geodesic)."),
        backbone: str | None = typer.Option(
            None, "--backbone", help="2D backbone name (default xfeat)."),
        feature_cache: Path | None = typer.Option(
            None, "--feature-cache", help="Feature cache folder (geocorr features)."),
        split: str | None = typer.Option(
            None, "--split", help="trn | val | test | all (default trn)."),
        pairs_per_category: int | None = typer.Option(
            None, "--pairs-per-category", help="Pair budget per category (default 200)."),
        seed: int | None = typer.Option(None, "--seed", help="Pair sampling seed (default 0)."),
        delta: float | None = typer.Option(
            None, "--delta", help="Geodesic threshold (diagonals; default 0.03)."),
        theta: float | None = typer.Option(
            None, "--theta", help="Sphere threshold (radians; default 0.15 pi)."),
        stride: int | None = typer.Option(
            None, "--stride", help="Candidate stride on the feature grid (default 2)."),
        part_weight: float | None = typer.Option(None, "--part-weight", help=PART_WEIGHT_HELP),
        part_confidence: bool = typer.Option(True, "--part-confidence/--constant-part-weight",
                                             help=PART_CONFIDENCE_HELP),
        device: str = typer.Option("cpu", "--device", help="Torch device of the backbone."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
        engine: str = ENGINE,
        ray_address: str | None = RAY_ADDRESS,
        num_workers: int | None = NUM_WORKERS,
        num_cpus_per_worker: float | None = CPUS_PER_WORKER,
        num_gpus_per_worker: float | None = GPUS_PER_WORKER,
        chunk_size: int | None = CHUNK_SIZE,
    ) -> None:
        """Verified pseudo-labels for pairs chained by estimated azimuth (resumable)."""
        from geocorr.cli._common import given, part_fusion_settings, user_errors

        with user_errors():
            from geocorr.cli._engine import engine_settings, report_failures
            from geocorr.engine import make_engine

            eng = engine_settings(engine, ray_address, num_workers, num_cpus_per_worker,
                                  num_gpus_per_worker, chunk_size, device=device)
            from dataclasses import replace

            from geocorr.labels.runner import LabelSettings, run_pseudolabels

            base = LabelSettings()
            settings = LabelSettings(
                **given(filter=filter_, backbone=backbone, split=split),
                fusion=part_fusion_settings(part_weight, part_confidence),
                match=replace(base.match, **given(stride=stride)),
                verify=replace(base.verify, **given(delta=delta)),
                sphere=replace(base.sphere, **given(theta=theta)),
                pairs=replace(base.pairs, **given(pairs_per_category=pairs_per_category,
                                                  seed=seed)))
            runner = make_engine(eng)
            try:
                summary = run_pseudolabels(dataset, cache, out, settings, feature_cache,
                                           progress=not quiet, device=device, engine=runner)
            finally:
                runner.close()
            report_failures(summary.failures, "pairs", label=lambda p: p.pair_id)
            typer.echo(f"{summary.labelled} pairs labelled ({summary.labels} labels), "
                       f"{summary.skipped} already done, {summary.pairs} sampled -> {out}")

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
        filter_: str = typer.Option("geodesic", "--filter", help="geodesic | sphere | cyclic."),
        backbone: str = typer.Option("xfeat", "--backbone", help="2D backbone name."),
        feature_cache: Path | None = typer.Option(
            None, "--feature-cache", help="Feature cache folder (geocorr features)."),
        split: str = typer.Option("trn", "--split", help="trn | val | test | all."),
        pairs_per_category: int = typer.Option(200, "--pairs-per-category",
                                               help="Pair budget per category."),
        seed: int = typer.Option(0, "--seed", help="Pair sampling seed."),
        delta: float = typer.Option(None, "--delta", help="Geodesic threshold (diagonals)."),
        theta: float = typer.Option(None, "--theta", help="Sphere threshold (radians)."),
        stride: int = typer.Option(2, "--stride", help="Candidate stride on the feature grid."),
        part_weight: float | None = typer.Option(None, "--part-weight", help=PART_WEIGHT_HELP),
        part_confidence: bool = typer.Option(True, "--part-confidence/--constant-part-weight",
                                             help=PART_CONFIDENCE_HELP),
        device: str = typer.Option("cpu", "--device", help="Torch device of the backbone."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
        engine: str = ENGINE,
        ray_address: str | None = RAY_ADDRESS,
        num_workers: int | None = NUM_WORKERS,
        num_cpus_per_worker: float = CPUS_PER_WORKER,
        num_gpus_per_worker: float = GPUS_PER_WORKER,
        chunk_size: int | None = CHUNK_SIZE,
    ) -> None:
        """Verified pseudo-labels for pairs chained by estimated azimuth (resumable)."""
        from geocorr.cli._common import check_device, part_fusion_settings, user_errors

        with user_errors():
            from geocorr.cli._engine import engine_settings, report_failures
            from geocorr.engine import make_engine

            eng = engine_settings(engine, ray_address, num_workers, num_cpus_per_worker,
                                  num_gpus_per_worker, chunk_size)
            if eng.engine == "local":  # on Ray the workers' devices count, not the driver's
                check_device(device)
            from geocorr.labels.runner import LabelSettings, run_pseudolabels
            from geocorr.matching.pair import MatchSettings
            from geocorr.matching.pairs import PairSamplingSettings
            from geocorr.matching.sphere import SphereSettings
            from geocorr.matching.verify import VerifySettings

            verify = VerifySettings() if delta is None else VerifySettings(delta=delta)
            sphere = SphereSettings() if theta is None else SphereSettings(theta=theta)
            settings = LabelSettings(
                filter=filter_, backbone=backbone, split=split,
                fusion=part_fusion_settings(part_weight, part_confidence),
                match=MatchSettings(stride=stride), verify=verify, sphere=sphere,
                pairs=PairSamplingSettings(pairs_per_category=pairs_per_category, seed=seed))
            runner = make_engine(eng)
            try:
                summary = run_pseudolabels(dataset, cache, out, settings, feature_cache,
                                           progress=not quiet, device=device, engine=runner)
            finally:
                runner.close()
            report_failures(summary.failures, "pairs", label=lambda p: p.pair_id)
            typer.echo(f"{summary.labelled} pairs labelled ({summary.labels} labels), "
                       f"{summary.skipped} already done, {summary.pairs} sampled -> {out}")

"""``geocorr demo``: the whole pipeline on the embedded procedural benchmark.

Every option left out means :class:`~geocorr.demo.DemoSettings`' default (the
label pairs and training steps: its ``labels`` and ``train`` defaults; the
help texts state them, checked against the dataclass by
``tests/test_cli_defaults.py``); only ``--out`` and ``--sweep-figure`` (the
repository's sweep PNG) have defaults of their own.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from geocorr.cli._common import (
    PART_CONFIDENCE_HELP,
    PART_WEIGHT_HELP,
    given,
    part_fusion_settings,
    user_errors,
)


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        out: Path = typer.Option(Path("demo_out"), "--out", help="new or empty output folder"),
        seed: int | None = typer.Option(None, "--seed",
                                        help="dataset and sampling seed (default 0)"),
        categories: str | None = typer.Option(
            None, "--categories",
            help="comma-separated procedural categories (default car,chair,dog)"),
        images_per_category: int | None = typer.Option(
            None, "--images-per-category", help="images per category (default 24)"),
        test_pairs: int | None = typer.Option(
            None, "--test-pairs", help="test pairs per category (default 40)"),
        part_weight: float | None = typer.Option(None, "--part-weight", help=PART_WEIGHT_HELP),
        part_confidence: bool = typer.Option(True, "--part-confidence/--constant-part-weight",
                                             help=PART_CONFIDENCE_HELP),
        label_pairs: int | None = typer.Option(
            None, "--label-pairs",
            help="trn pairs per category for pseudo-labels (default 40)"),
        train_steps: int | None = typer.Option(
            None, "--train-steps", help="adapter training steps (each filter alike; default 300)"),
        adapter_context: bool | None = typer.Option(
            None, "--adapter-context/--no-adapter-context",
            help="adapters over XFeat + image-wide context (adds that zero-shot row; "
                 "default off)"),
        sim_errors: str | None = typer.Option(
            None, "--sim-errors",
            help="error level of the simulated SAM3D meshes and SAM3 masks: oracle | realistic "
                 "| hard (docs/synth.md; default realistic)"),
        sim_scale: float | None = typer.Option(
            None, "--sim-scale", help="factor on the error level's magnitudes (default 1)"),
        oracle_row: bool | None = typer.Option(
            None, "--oracle-row/--no-oracle-row",
            help="above oracle: add the upper-bound row '3D only, oracle reconstruction' "
                 "(default on)"),
        sweep_figure: Path = typer.Option(
            Path("benchmarks/results/error_sweep.png"), "--sweep-figure",
            help="PNG of PCK against error level (benchmarks/error_sweep.py) shown in the "
                 "report when it exists"),
    ) -> None:
        """Benchmark -> stage 1 -> 2D vs 2D+3D -> pseudo-labels per filter -> adapters -> PCK."""
        from geocorr.demo import DemoSettings, run_demo  # torch: imported when the command runs

        with user_errors():
            base = DemoSettings()
            cats = None if categories is None else tuple(c for c in categories.split(",") if c)
            settings = replace(
                base, fusion=part_fusion_settings(part_weight, part_confidence),
                labels=replace(base.labels, pairs=replace(
                    base.labels.pairs, **given(pairs_per_category=label_pairs))),
                train=replace(base.train, **given(steps=train_steps)),
                sweep_figure=str(sweep_figure),
                **given(seed=seed, categories=cats, images_per_category=images_per_category,
                        test_pairs=test_pairs, adapter_context=adapter_context,
                        sim_errors=sim_errors, sim_scale=sim_scale, oracle_row=oracle_row))
            run_demo(out, settings)

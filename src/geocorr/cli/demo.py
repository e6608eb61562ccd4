"""``geocorr demo``: the whole pipeline on the embedded procedural benchmark."""

from __future__ import annotations

from pathlib import Path

import typer

from geocorr.cli._common import PART_CONFIDENCE_HELP, PART_WEIGHT_HELP


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        out: Path = typer.Option(Path("demo_out"), "--out", help="new or empty output folder"),
        seed: int = typer.Option(0, "--seed", help="dataset and sampling seed"),
        categories: str = typer.Option("car,chair,dog", "--categories",
                                       help="comma-separated procedural categories"),
        images_per_category: int = typer.Option(24, "--images-per-category"),
        test_pairs: int = typer.Option(40, "--test-pairs", help="test pairs per category"),
        part_weight: float | None = typer.Option(None, "--part-weight", help=PART_WEIGHT_HELP),
        part_confidence: bool = typer.Option(True, "--part-confidence/--constant-part-weight",
                                             help=PART_CONFIDENCE_HELP),
        label_pairs: int = typer.Option(40, "--label-pairs",
                                        help="trn pairs per category for pseudo-labels"),
        train_steps: int = typer.Option(300, "--train-steps",
                                        help="adapter training steps (each filter alike)"),
        adapter_context: bool = typer.Option(
            False, "--adapter-context",
            help="adapters over XFeat + image-wide context (adds that zero-shot row)"),
        sim_errors: str = typer.Option(
            "realistic", "--sim-errors",
            help="error level of the simulated SAM3D meshes and SAM3 masks: oracle | realistic "
                 "| hard (docs/synth.md)"),
        sim_scale: float = typer.Option(1.0, "--sim-scale",
                                        help="factor on the error level's magnitudes"),
        oracle_row: bool = typer.Option(
            True, "--oracle-row/--no-oracle-row",
            help="above oracle: add the upper-bound row '3D only, oracle reconstruction'"),
        sweep_figure: Path = typer.Option(
            Path("benchmarks/results/error_sweep.png"), "--sweep-figure",
            help="PNG of PCK against error level (benchmarks/error_sweep.py) shown in the "
                 "report when it exists"),
    ) -> None:
        """Benchmark -> stage 1 -> 2D vs 2D+3D -> pseudo-labels per filter -> adapters -> PCK."""
        from dataclasses import replace

        from geocorr.cli._common import part_fusion_settings, user_errors
        from geocorr.demo import DemoSettings, run_demo

        with user_errors():
            base = DemoSettings()
            settings = DemoSettings(
                seed=seed, categories=tuple(c for c in categories.split(",") if c),
                images_per_category=images_per_category, test_pairs=test_pairs,
                fusion=part_fusion_settings(part_weight, part_confidence),
                labels=replace(base.labels, pairs=replace(base.labels.pairs,
                                                          pairs_per_category=label_pairs)),
                train=replace(base.train, steps=train_steps), adapter_context=adapter_context,
                sim_errors=sim_errors, sim_scale=sim_scale, oracle_row=oracle_row,
                sweep_figure=str(sweep_figure))
            run_demo(out, settings)

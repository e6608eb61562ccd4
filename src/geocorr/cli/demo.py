"""``geocorr demo``: the whole pipeline on the embedded procedural benchmark.

Every option left out means :class:`~geocorr.demo.DemoSettings`' default (the
label pairs and training steps: its ``labels`` and ``train`` defaults); only
``--out`` and ``--sweep-figure`` (the repository's sweep PNG) have defaults
of their own.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import typer

from geocorr.cli._common import (
    PART_CONFIDENCE_HELP,
    PART_WEIGHT_HELP,
    part_fusion_settings,
    user_errors,
)


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        out: Path = typer.Option(Path("demo_out"), "--out", help="new or empty output folder"),
        seed: int | None = typer.Option(None, "--seed", help="dataset and sampling seed"),
        categories: str | None = typer.Option(None, "--categories",
                                              help="comma-separated procedural categories"),
        images_per_category: int | None = typer.Option(None, "--images-per-category"),
        test_pairs: int | None = typer.Option(None, "--test-pairs",
                                              help="test pairs per category"),
        part_weight: float | None = typer.Option(None, "--part-weight", help=PART_WEIGHT_HELP),
        part_confidence: bool = typer.Option(True, "--part-confidence/--constant-part-weight",
                                             help=PART_CONFIDENCE_HELP),
        label_pairs: int | None = typer.Option(None, "--label-pairs",
                                               help="trn pairs per category for pseudo-labels"),
        train_steps: int | None = typer.Option(None, "--train-steps",
                                               help="adapter training steps (each filter alike)"),
        adapter_context: bool | None = typer.Option(
            None, "--adapter-context/--no-adapter-context",
            help="adapters over XFeat + image-wide context (adds that zero-shot row; "
                 "default: DemoSettings.adapter_context)"),
        sim_errors: str | None = typer.Option(
            None, "--sim-errors",
            help="error level of the simulated SAM3D meshes and SAM3 masks: oracle | realistic "
                 "| hard (docs/synth.md; default: DemoSettings.sim_errors)"),
        sim_scale: float | None = typer.Option(None, "--sim-scale",
                                               help="factor on the error level's magnitudes"),
        oracle_row: bool | None = typer.Option(
            None, "--oracle-row/--no-oracle-row",
            help="above oracle: add the upper-bound row '3D only, oracle reconstruction' "
                 "(default: DemoSettings.oracle_row)"),
        sweep_figure: Path = typer.Option(
            Path("benchmarks/results/error_sweep.png"), "--sweep-figure",
            help="PNG of PCK against error level (benchmarks/error_sweep.py) shown in the "
                 "report when it exists"),
    ) -> None:
        """Benchmark -> stage 1 -> 2D vs 2D+3D -> pseudo-labels per filter -> adapters -> PCK."""
        from geocorr.demo import DemoSettings, run_demo  # torch: imported when the command runs

        with user_errors():
            base = DemoSettings()
            given = {"seed": seed, "images_per_category": images_per_category,
                     "test_pairs": test_pairs, "adapter_context": adapter_context,
                     "sim_errors": sim_errors, "sim_scale": sim_scale, "oracle_row": oracle_row}
            kw = {k: v for k, v in given.items() if v is not None}
            if categories is not None:
                kw["categories"] = tuple(c for c in categories.split(",") if c)
            if label_pairs is not None:
                kw["labels"] = replace(base.labels, pairs=replace(base.labels.pairs,
                                                                  pairs_per_category=label_pairs))
            if train_steps is not None:
                kw["train"] = replace(base.train, steps=train_steps)
            settings = replace(base, fusion=part_fusion_settings(part_weight, part_confidence),
                               sweep_figure=str(sweep_figure), **kw)
            run_demo(out, settings)

"""``geocorr synth``: generate the procedural benchmark in SPair-71k's layout."""

from __future__ import annotations

from pathlib import Path

import typer


def _parse_pairs(text: str) -> tuple[int, int, int]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"--pairs-per-split: expected N or TRN,VAL,TEST integers, "
                         f"got {text!r}") from None
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise ValueError(f"--pairs-per-split: expected N or TRN,VAL,TEST, got {text!r}")
    return values[0], values[1], values[2]


def register(app: typer.Typer) -> None:
    @app.command()
    def synth(
        out: Path = typer.Option(..., "--out", help="Output folder (must be absent or empty)."),
        seed: int = typer.Option(0, "--seed", help="Dataset seed; same seed -> same bytes."),
        categories: list[str] = typer.Option(
            None, "--categories", help="Categories (repeat or comma-separate); default all."),
        images_per_category: int = typer.Option(20, "--images-per-category"),
        pairs_per_split: str = typer.Option(
            "100", "--pairs-per-split", help="Pairs per category: N for all splits, or "
            "TRN,VAL,TEST (capped by what the split allows)."),
        size: int = typer.Option(384, "--size", help="Long image side in pixels."),
        views_per_instance: int = typer.Option(1, "--views-per-instance"),
        sim_flip_prob: float = typer.Option(
            0.3, "--sim-flip-prob", help="Yaw mis-canonicalisation probability."),
        sim_flip_prob_elongated: float = typer.Option(
            0.6, "--sim-flip-prob-elongated", help="Same, for elongated categories."),
        sim_scale_sigma: float = typer.Option(
            0.3, "--sim-scale-sigma", help="Std of the log scale error."),
        sim_translation: float = typer.Option(
            0.15, "--sim-translation", help="Translation error, fraction of object size."),
        occluder_prob: float = typer.Option(
            0.1, "--occluder-prob", help="Probability of a flat occluder per image."),
        preview: bool = typer.Option(False, "--preview", help="Also write preview.png."),
        workers: int = typer.Option(1, "--workers", help="Rendering processes."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    ) -> None:
        """Generate the procedural 3D-aware correspondence benchmark (SPair-71k layout)."""
        from geocorr.cli._common import user_errors

        with user_errors():
            from geocorr.data.synth.generate import SynthSettings, generate_dataset
            from geocorr.data.synth.scene import SceneSettings
            from geocorr.data.synth.simulator import SimulatorSettings

            cats = None
            if categories:
                cats = tuple(c.strip() for item in categories for c in item.split(",")
                             if c.strip())
            settings = SynthSettings(
                seed=seed, categories=cats, images_per_category=images_per_category,
                views_per_instance=views_per_instance,
                pairs_per_split=_parse_pairs(pairs_per_split),
                scene=SceneSettings(size=size, occluder_prob=occluder_prob),
                simulator=SimulatorSettings(
                    flip_prob=sim_flip_prob, flip_prob_elongated=sim_flip_prob_elongated,
                    scale_sigma=sim_scale_sigma, translation=sim_translation),
                preview=preview,
            )
            summary = generate_dataset(out, settings, progress=not quiet, workers=workers,
                                       overwrite=overwrite)
        pairs = ", ".join(f"{k} {v}" for k, v in summary.num_pairs.items())
        typer.echo(f"wrote {summary.num_images} images and pairs ({pairs}) to {summary.out_dir}; "
                   f"{100 * summary.flipped_fraction:.0f}% of reconstructions yaw-flipped")

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


def _override(settings, flip: float | None, flip_elongated: float | None,
              scale_sigma: float | None, translation: float | None):
    """Apply the explicit ``--sim-*`` overrides on top of the error level's values."""
    from dataclasses import replace

    from geocorr.data.synth.shapes import category_info

    sim = settings.simulator
    if scale_sigma is not None:
        sim = replace(sim, scale_sigma=scale_sigma)
    if translation is not None:
        sim = replace(sim, translation=translation)
    if flip is not None or flip_elongated is not None:
        if sim.errors is None:
            sim = replace(sim, flip_prob=sim.flip_prob if flip is None else flip,
                          flip_prob_elongated=(sim.flip_prob_elongated if flip_elongated is None
                                               else flip_elongated))
        else:
            table = []
            for cat in settings.resolved_categories():
                long = category_info(cat).elongated
                given = flip_elongated if long else flip
                table.append((cat, sim.errors.flip_probability(cat) if given is None
                              else given))
            sim = replace(sim, errors=replace(sim.errors, flip_prob=tuple(table)))
    return replace(settings, simulator=sim)


def register(app: typer.Typer) -> None:
    @app.command()
    def synth(
        out: Path = typer.Option(..., "--out", help="Output folder (must be absent or empty)."),
        seed: int | None = typer.Option(
            None, "--seed", help="Dataset seed; same seed -> same bytes (default 0)."),
        categories: list[str] = typer.Option(
            None, "--categories", help="Categories (repeat or comma-separate); default all."),
        images_per_category: int | None = typer.Option(
            None, "--images-per-category", help="Images per category (default 20)."),
        pairs_per_split: str | None = typer.Option(
            None, "--pairs-per-split", help="Pairs per category: N for all splits, or "
            "TRN,VAL,TEST (capped by what the split allows; default 100)."),
        size: int | None = typer.Option(
            None, "--size", help="Long image side in pixels (default 384)."),
        views_per_instance: int | None = typer.Option(
            None, "--views-per-instance", help="Views of each object instance (default 1)."),
        sim_errors: str = typer.Option(
            "realistic", "--sim-errors", help="Error level of the simulated SAM3D meshes and SAM3 "
            "masks: oracle (exact rotation, intrinsics, shape and mask: the upper bound) | "
            "realistic | hard (2x realistic). docs/synth.md lists every term."),
        sim_scale: float = typer.Option(
            None, "--sim-scale", help="Multiply the level's magnitudes (e.g. 0.5 or 2 for a "
            "sweep; default 1)."),
        sim_flip_prob: float = typer.Option(
            None, "--sim-flip-prob", help="Override the level's yaw mis-canonicalisation "
            "probability (every non-elongated category)."),
        sim_flip_prob_elongated: float = typer.Option(
            None, "--sim-flip-prob-elongated", help="Same, for elongated categories."),
        sim_scale_sigma: float = typer.Option(
            None, "--sim-scale-sigma", help="Override the std of the log scale error."),
        sim_translation: float = typer.Option(
            None, "--sim-translation", help="Override the translation error (fraction of "
            "object size)."),
        occluder_prob: float | None = typer.Option(
            None, "--occluder-prob",
            help="Probability of a flat occluder per image (default 0.1)."),
        preview: bool = typer.Option(False, "--preview", help="Also write preview.png."),
        workers: int | None = typer.Option(
            None, "--workers", help="Rendering processes (default 1)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    ) -> None:
        """Generate the procedural 3D-aware correspondence benchmark (SPair-71k layout)."""
        from geocorr.cli._common import given, user_errors

        with user_errors():
            from geocorr.data.synth.generate import (
                SynthSettings,
                generate_dataset,
                with_error_level,
            )
            from geocorr.data.synth.scene import SceneSettings

            cats = None
            if categories:
                cats = tuple(c.strip() for item in categories for c in item.split(",")
                             if c.strip())
            settings = SynthSettings(
                categories=cats, preview=preview,
                scene=SceneSettings(**given(size=size, occluder_prob=occluder_prob)),
                **given(seed=seed, images_per_category=images_per_category,
                        views_per_instance=views_per_instance,
                        pairs_per_split=(None if pairs_per_split is None
                                         else _parse_pairs(pairs_per_split))))
            settings = with_error_level(settings, sim_errors,
                                        1.0 if sim_scale is None else sim_scale)
            settings = _override(settings, sim_flip_prob, sim_flip_prob_elongated,
                                 sim_scale_sigma, sim_translation)
            summary = generate_dataset(out, settings, progress=not quiet, overwrite=overwrite,
                                       **given(workers=workers))
        pairs = ", ".join(f"{k} {v}" for k, v in summary.num_pairs.items())
        typer.echo(f"wrote {summary.num_images} images and pairs ({pairs}) to {summary.out_dir}; "
                   f"{100 * summary.flipped_fraction:.0f}% of reconstructions yaw-flipped")

"""``geocorr eval``: predict with a backbone set and score on a benchmark split."""

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
from geocorr.evaluation.canvas import DEFAULT_CANVAS

_FLAGS = {"backbones": "--backbone", "weights": "--weights", "grid_size": "--grid-size",
          "context": "--context"}
"""The flag of each :class:`~geocorr.evaluation.sources.SourceSettings` field, for errors."""


def register(app: typer.Typer) -> None:
    @app.command(name="eval")
    def eval_(
        dataset: str = typer.Option(..., "--dataset",
                                    help="spair | pfpascal | pfwillow | ap10k (spair also reads "
                                         "geocorr's procedural benchmark)."),
        root: Path = typer.Option(..., "--root", help="Dataset root directory."),
        split: str = typer.Option("test", "--split"),
        model: str = typer.Option("zero-shot", "--model",
                                  help="zero-shot, or a trained adapter: a `geocorr train` run "
                                       "folder (its best.pt) or a checkpoint file."),
        backbone: list[str] | None = typer.Option(
            None, "--backbone", help="Backbone name (repeat or comma-separate to fuse several; "
                                     "default xfeat). With an adapter: its "
                                     "backbones (read from the checkpoint)."),
        weights_path: list[str] = typer.Option(
            [], "--weights", help="NAME=PATH_OR_HUB_ID for a backbone's model (repeatable), "
                                  "e.g. dinov2=/models/dinov2-base."),
        cache: Path | None = typer.Option(None, "--cache", help="Feature cache directory."),
        grid_size: int | None = typer.Option(
            None, "--grid-size", help="xfeat/classical grid side (as given to geocorr train)."),
        context: bool = typer.Option(
            False, "--context/--no-context",
            help="Backbones with image-wide context (as given to geocorr features/train)."),
        masks: bool = typer.Option(
            True, "--masks/--no-masks", help="Segmentation/ masks for context backbones."),
        predict: str | None = typer.Option(
            None, "--predict", help="nn | soft_argmax (default nn)."),
        alpha: list[float] | None = typer.Option(None, "--alpha", help="PCK level (repeatable)."),
        size: int | None = typer.Option(
            None, "--size", help=f"Resize-and-pad canvas side S (default {DEFAULT_CANVAS}); 0 "
                                 "scores in original pixels."),
        max_pairs: int = typer.Option(0, "--max-pairs", help="0 = every pair of the split."),
        stage1: Path | None = typer.Option(
            None, "--stage1", help="Stage-1 cache (geocorr reconstruct): fuse the rendered "
                                   "geometric part descriptor of each image's mesh."),
        part_weight: float | None = typer.Option(None, "--part-weight", help=PART_WEIGHT_HELP),
        part_confidence: bool = typer.Option(True, "--part-confidence/--constant-part-weight",
                                             help=PART_CONFIDENCE_HELP),
        device: str = typer.Option("cpu", "--device"),
        json_out: Path | None = typer.Option(None, "--json", help="Write all numbers here."),
        engine: str = ENGINE,
        ray_address: str | None = RAY_ADDRESS,
        num_workers: int | None = NUM_WORKERS,
        num_cpus_per_worker: float | None = CPUS_PER_WORKER,
        num_gpus_per_worker: float | None = GPUS_PER_WORKER,
        chunk_size: int | None = CHUNK_SIZE,
    ) -> None:
        """Predict target keypoints with (fused) backbone features or an adapter; score with PCK."""
        from rich.console import Console

        from geocorr.cli._common import (
            canvas_size,
            check_device,
            check_output_file,
            given,
            part_fusion_settings,
            print_pck,
            user_errors,
        )
        from geocorr.evaluation.predict import PredictSettings
        from geocorr.evaluation.scorer import evaluate_pairs, open_dataset
        from geocorr.evaluation.sources import SourceError, SourceSettings, eval_source
        from geocorr.evaluation.tables import write_json_atomic
        from geocorr.evaluation.zero_shot import zero_shot_predictor
        from geocorr.features.registry import parse_weights

        with user_errors():
            from geocorr.cli._engine import engine_settings
            from geocorr.engine import make_engine

            eng = engine_settings(engine, ray_address, num_workers, num_cpus_per_worker,
                                  num_gpus_per_worker, chunk_size)
            check_device(device)
            check_output_file(json_out, "--json")
            canvas = canvas_size(size)
            fusion = part_fusion_settings(part_weight, part_confidence)
            if model != "zero-shot" and not Path(model).exists():
                raise FileNotFoundError(f"--model {model}: neither 'zero-shot' nor an "
                                        "existing run folder / checkpoint")
            try:
                settings = SourceSettings(
                    backbones=tuple(backbone or ()),
                    weights=parse_weights(weights_path), grid_size=grid_size, context=context,
                    masks=masks, cache=cache, adapter=None if model == "zero-shot" else Path(model),
                    stage1=stage1, fusion=fusion)
            except ValueError as exc:
                raise ValueError(f"--weights: {exc}") from None
            try:
                source = eval_source(settings, root, device=device)
            except SourceError as exc:
                raise ValueError(f"{'/'.join(_FLAGS[f] for f in exc.fields)}: {exc}") from None
            backbone = list(source.backbones)
            ds = open_dataset(dataset, root)
            pairs = ds.pairs(split)
            if max_pairs:
                pairs = pairs[:max_pairs]
            predict_settings = PredictSettings(**given(method=predict))
            predictor = zero_shot_predictor(source.features, predict_settings)
            runner = make_engine(eng)
            try:
                result = evaluate_pairs(pairs, predictor, ds, alpha or None,
                                        size=canvas,
                                        split=split, progress=True, engine=runner)
            finally:
                runner.close()
            out = Console(width=120)
            what = "zero-shot" if source.adapter is None else f"adapter {model}"
            if stage1 is not None:
                what += (f" + rendered part descriptor ({fusion.part_weight:g}"
                         f"{' x confidence' if fusion.confidence is not None else ''})")
            print_pck(out, result, f"{dataset} {split}: {'+'.join(backbone)} {what} PCK (%)")
            if json_out is not None:
                d = result.to_dict()
                d.update(model=model, backbones=list(backbone),
                         predict=predict_settings.method,
                         context=context,
                         stage1=None if stage1 is None else str(stage1),
                         part_weight=None if stage1 is None else fusion.part_weight,
                         part_confidence=None if stage1 is None else
                         fusion.confidence is not None)
                write_json_atomic(d, json_out)
                typer.echo(f"wrote {json_out}")

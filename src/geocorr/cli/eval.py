"""``geocorr eval``: predict with a backbone set and score on a benchmark split."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command(name="eval")
    def eval_(
        dataset: str = typer.Option(..., "--dataset",
                                    help="spair | pfpascal | pfwillow | ap10k (spair also reads "
                                         "geocorr's procedural benchmark)."),
        root: Path = typer.Option(..., "--root", help="Dataset root directory."),
        split: str = typer.Option("test", "--split"),
        model: str = typer.Option("zero-shot", "--model",
                                  help="zero-shot (a trained adapter RUN is not supported yet)."),
        backbone: list[str] = typer.Option(["xfeat"], "--backbone",
                                           help="Backbone name (repeat to fuse several)."),
        weights_path: list[str] = typer.Option(
            [], "--weights", help="NAME=PATH_OR_HUB_ID for a backbone's model (repeatable), "
                                  "e.g. dinov2=/models/dinov2-base."),
        cache: Path | None = typer.Option(None, "--cache", help="Feature cache directory."),
        predict: str = typer.Option("nn", "--predict", help="nn | soft_argmax"),
        alpha: list[float] | None = typer.Option(None, "--alpha", help="PCK level (repeatable)."),
        size: int = typer.Option(840, "--size", help="Resize-and-pad canvas side S."),
        max_pairs: int = typer.Option(0, "--max-pairs", help="0 = every pair of the split."),
        device: str = typer.Option("cpu", "--device"),
        json_out: Path | None = typer.Option(None, "--json", help="Write all numbers here."),
    ) -> None:
        """Predict target keypoints with (fused) backbone features and score them with PCK."""
        from rich.console import Console

        from geocorr.cli._common import user_errors
        from geocorr.evaluation.predict import PredictSettings
        from geocorr.evaluation.scorer import evaluate_pairs, open_dataset
        from geocorr.evaluation.tables import pck_table, swap_line, write_json_atomic
        from geocorr.evaluation.zero_shot import fused_feature_source, zero_shot_predictor
        from geocorr.features.registry import make_backbone

        with user_errors():
            if model != "zero-shot":
                raise ValueError(f"--model {model!r}: only 'zero-shot' is supported so far")
            paths = {}
            for item in weights_path:
                name, sep, value = item.partition("=")
                if not sep or not value:
                    raise ValueError(f"--weights {item!r}: expected NAME=PATH")
                paths[name] = value
            unknown = sorted(set(paths) - set(backbone))
            if unknown:
                raise ValueError(f"--weights given for {unknown}, which is not a --backbone")
            bbs = {b: make_backbone(b, device=device, **({"model": paths[b]} if b in paths
                                                           else {})) for b in backbone}
            ds = open_dataset(dataset, root)
            pairs = ds.pairs(split)
            if max_pairs:
                pairs = pairs[:max_pairs]
            predictor = zero_shot_predictor(fused_feature_source(bbs, cache_dir=cache),
                                            PredictSettings(method=predict))
            result = evaluate_pairs(pairs, predictor, ds, alpha or None, size=size or None,
                                    split=split, progress=True)
            out = Console(width=120)
            out.print(pck_table(result.report, title=f"{dataset} {split}: "
                                                     f"{'+'.join(backbone)} zero-shot PCK (%)"))
            line = swap_line(result.report)
            if line is not None:
                out.print(line)
            if json_out is not None:
                d = result.to_dict()
                d.update(model=model, backbones=list(backbone), predict=predict)
                write_json_atomic(d, json_out)
                out.print(f"wrote {json_out}")

"""``geocorr score``: PCK of any method's keypoint predictions on a benchmark split."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def score(
        dataset: str = typer.Option(..., "--dataset",
                                    help="spair | pfpascal | pfwillow | ap10k (spair also "
                                         "reads geocorr's procedural benchmark)."),
        root: Path = typer.Option(..., "--root", help="Dataset root directory."),
        predictions: Path = typer.Option(
            ..., "--predictions",
            help='JSON Lines, one {"pair": ID, "trg_kps": [[x, y], ...]} per pair, '
                 "original target pixels, aligned with the pair's source keypoints."),
        split: str = typer.Option("test", "--split", help="Split to score."),
        json_out: Path | None = typer.Option(None, "--json", help="Write all numbers here."),
        alpha: list[float] | None = typer.Option(
            None, "--alpha", help="PCK level (repeatable); default: the benchmark's usual ones."),
        size: int = typer.Option(840, "--size", help="Resize-and-pad canvas side S; 0 scores "
                                                      "in original pixels."),
        per_pair: bool = typer.Option(False, "--per-pair",
                                      help="Also write each pair's errors to the JSON."),
    ) -> None:
        """Score predicted target keypoints with PCK (per image, per keypoint, per category,
        geometry-aware subset, SPair difficulty breakdowns)."""
        from rich.console import Console

        from geocorr.cli._common import user_errors
        from geocorr.evaluation.scorer import open_dataset, score_file
        from geocorr.evaluation.tables import breakdown_table, pck_table, write_json_atomic

        with user_errors():
            if size < 0:
                raise ValueError(f"--size must be >= 0, got {size}")
            ds = open_dataset(dataset, root)
            result = score_file(ds, split, predictions, alpha or None, size=size or None)
            out = Console()
            out.print(pck_table(result.report, title=f"{dataset} {split}: PCK (%)"))
            bd = breakdown_table(result.report)
            if bd is not None:
                out.print(bd)
            if json_out is not None:
                d = result.to_dict(per_pair=per_pair)
                d["predictions"] = str(predictions)
                d["root"] = str(root)
                write_json_atomic(d, json_out)
                out.print(f"wrote {json_out}")

"""``geocorr score``: PCK of any method's keypoint predictions on a benchmark split."""

from __future__ import annotations

from pathlib import Path

import typer

from geocorr.evaluation.canvas import DEFAULT_CANVAS


def register(app: typer.Typer) -> None:
    @app.command()
    def score(
        dataset: str = typer.Option(..., "--dataset",
                                    help="spair | pfpascal | pfwillow | ap10k | tss (spair also "
                                         "reads geocorr's procedural benchmark)."),
        root: Path = typer.Option(..., "--root", help="Dataset root directory."),
        predictions: Path = typer.Option(
            ..., "--predictions",
            help='JSON Lines, one {"pair": ID, "trg_kps": list of (x, y)} per pair, in '
                 "original target pixels, aligned with the pair's source keypoints. "
                 "TSS: a directory PRED/<subset>/<pair>/flow{1,2}.flo laid out like the "
                 "ground truth."),
        split: str = typer.Option("test", "--split",
                                  help="Split to score (TSS: 'test' = all subsets, or "
                                       "FG3DCar / JODS / PASCAL)."),
        json_out: Path | None = typer.Option(None, "--json", help="Write all numbers here."),
        alpha: list[float] | None = typer.Option(
            None, "--alpha", help="PCK level (repeatable); default: the benchmark's usual ones."),
        size: int | None = typer.Option(
            None, "--size", help=f"Resize-and-pad canvas side S (default {DEFAULT_CANVAS}); 0 "
                                 "scores in original pixels."),
        per_pair: bool = typer.Option(False, "--per-pair",
                                      help="Also write each pair's errors to the JSON."),
        layout: str = typer.Option("large", "--layout",
                                   help="SPair-71k split layout: large (standard) or small."),
    ) -> None:
        """Score predicted target keypoints with PCK (per image, per keypoint, per category,
        geometry-aware subset, SPair difficulty breakdowns)."""
        from geocorr.cli._common import canvas_size, check_output_file, print_pck, user_errors
        from geocorr.evaluation.scorer import open_dataset, score_file
        from geocorr.evaluation.tables import (
            breakdown_table,
            write_json_atomic,
        )

        with user_errors():
            check_output_file(json_out, "--json")
            canvas = canvas_size(size)
            if dataset == "tss":
                _score_tss(root, split, predictions, alpha, json_out)
                return
            if layout not in ("large", "small"):
                raise ValueError(f"--layout must be 'large' or 'small', got {layout!r}")
            ds = open_dataset(dataset, root, **({"layout": layout} if dataset == "spair" else {}))
            result = score_file(ds, split, predictions, alpha or None, size=canvas)
            out = _console()
            print_pck(out, result, f"{dataset} {split}: PCK (%)")
            bd = breakdown_table(result.report)
            if bd is not None:
                out.print(bd)
            if json_out is not None:
                d = result.to_dict(per_pair=per_pair)
                d["predictions"] = str(predictions)
                d["root"] = str(root)
                write_json_atomic(d, json_out)
                typer.echo(f"wrote {json_out}")


def _score_tss(root: Path, split: str, predictions: Path, alpha: list[float] | None,
               json_out: Path | None) -> None:
    """Flow PCK of ``.flo`` predictions on TSS, one table row per subset."""
    from rich.table import Table

    from geocorr.data.tss import TSSDataset
    from geocorr.evaluation.flow_pck import flow_directory_predictor, score_tss_flow
    from geocorr.evaluation.tables import format_pct, write_json_atomic

    ds = TSSDataset(root)
    subset = None if split in ("test", "all") else split
    predict = flow_directory_predictor(predictions)
    alphas = alpha or [0.05]
    results = [score_tss_flow(ds.directions(subset), predict, a) for a in alphas]
    table = Table(title="tss: flow PCK (%)")
    table.add_column("subset")
    for a in alphas:
        table.add_column(f"@{a:g}", justify="right")
    for s in results[0].per_subset:
        table.add_row(s, *[format_pct(r.per_subset[s]) for r in results])
    table.add_section()
    table.add_row("mean of subsets", *[format_pct(r.subset_mean) for r in results],
                  style="bold")
    table.add_row("mean of directions", *[format_pct(r.mean) for r in results])
    out = _console()
    out.print(table)
    if json_out is not None:
        write_json_atomic({"dataset": "tss", "split": split, "root": str(root),
                           "predictions": str(predictions),
                           "results": [r.to_dict() for r in results]}, json_out)
        typer.echo(f"wrote {json_out}")


def _console():  # noqa: ANN202 - rich.console.Console, imported lazily
    """stdout console; 120 columns when not a terminal so tables are not truncated in logs."""
    from rich.console import Console

    out = Console()
    return out if out.is_terminal else Console(width=120)

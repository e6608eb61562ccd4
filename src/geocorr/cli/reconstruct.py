"""``geocorr reconstruct``: stage 1 (mask, mesh + camera, refinement, yaw) over a dataset."""

from __future__ import annotations

from pathlib import Path

import typer

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
    def reconstruct(
        dataset: Path = typer.Option(..., "--dataset", help="SPair-layout dataset folder."),
        out: Path = typer.Option(..., "--out", help="Cache folder (resumable: finished images, "
                                                    "those with record.json, are skipped)."),
        split: str = typer.Option("test", "--split", help="trn | val | test | all."),
        masks: str = typer.Option(
            "auto", "--masks", help="auto (predicted where the dataset has PredictedMasks/, "
            "else dataset) | predicted (simulated SAM3 masks) | dataset (Segmentation/) | sam3."),
        meshes: str = typer.Option(
            "simulated", "--meshes",
            help="simulated | files:DIR | sam3d:REPO. files:DIR reads DIR/<cat>/<stem>.{ply,glb,"
                 "obj} + <stem>.json (camera); meshes must be in geocorr's frame: Z up, X front, "
                 "Y left (a Y-up glTF mesh converts with V[:, [2, 0, 1]] and its camera with "
                 "R[:, [2, 0, 1]]); a warning names meshes that look otherwise."),
        categories: list[str] | None = typer.Option(None, "--category",
                                                    help="Only these categories (repeatable)."),
        sam3_model: str | None = typer.Option(
            None, "--sam3-model",
            help="SAM3 checkpoint folder or hub id (local only; default facebook/sam3)."),
        estimator: str = typer.Option("template", "--estimator",
                                      help="template (CPU) | orient-anything:REPO:CKPT."),
        skip_yaw: bool = typer.Option(False, "--skip-yaw", help="Refinement only (k = 0)."),
        reference_pool: str | None = typer.Option(
            None, "--reference-pool",
            help="CPU estimator's category reference is chosen among: dataset (every image of "
                 "the category; more robust to flipped reconstructions, but runs the "
                 "reconstructor on the extra images) | images (only the split's); default "
                 "dataset."),
        reference_max: int | None = typer.Option(
            None, "--reference-max",
            help="At most this many meshes in the reference pool (default 48)."),
        max_side: int | None = typer.Option(
            None, "--max-side", help="Refinement working resolution (longest side; default 64)."),
        device: str = typer.Option("cpu", "--device", help="Torch device for models."),
        quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
        engine: str = ENGINE,
        ray_address: str | None = RAY_ADDRESS,
        num_workers: int | None = NUM_WORKERS,
        num_cpus_per_worker: float | None = CPUS_PER_WORKER,
        num_gpus_per_worker: float | None = GPUS_PER_WORKER,
        chunk_size: int | None = CHUNK_SIZE,
    ) -> None:
        """Canonicalized reconstruction of every image of a split into a cache."""
        from rich.text import Text

        from geocorr.cli._common import console, given, user_errors
        from geocorr.reconstruct.pipeline import Stage1Settings, dataset_images, run_stage1
        from geocorr.reconstruct.refine import RefineSettings

        with user_errors():
            from geocorr.cli._engine import engine_settings
            from geocorr.engine import make_engine

            eng = engine_settings(engine, ray_address, num_workers, num_cpus_per_worker,
                                  num_gpus_per_worker, chunk_size, device=device)
            images = dataset_images(dataset, split, categories)
            if not images:
                raise ValueError(f"no images in split {split!r} of {dataset}")
            segmenter = _segmenter(masks, dataset, sam3_model, device)
            reconstructor = _reconstructor(meshes, dataset)
            est, kind = None, "template"
            if estimator.startswith("orient-anything:"):
                from geocorr.reconstruct.orientation import OrientAnythingV2

                parts = estimator.split(":")
                if len(parts) != 3:
                    raise ValueError("--estimator orient-anything:REPO:CKPT needs both paths")
                est, kind = OrientAnythingV2(parts[1], parts[2], device=device), "external"
            elif estimator != "template":
                raise ValueError(f"--estimator must be template or orient-anything:REPO:CKPT, "
                                 f"got {estimator!r}")
            settings = Stage1Settings(refine=RefineSettings(**given(max_side=max_side)),
                                      estimator=kind, skip_yaw=skip_yaw,
                                      **given(reference_pool=reference_pool,
                                              reference_max=reference_max))
            runner = make_engine(eng)
            try:
                records = run_stage1(dataset, images, segmenter, reconstructor, out, settings,
                                     estimator=est, progress=not quiet, engine=runner)
            finally:
                runner.close()
        errors = [r for r in records if "error" in r]
        for r in errors[:5]:
            console.print(Text(f"warning: {r['category']}/{r['stem']} failed (no record.json; a "
                               f"rerun retries it): {r['error']}", style="yellow"))
        ok = [r for r in records if "error" not in r]
        n_fail = sum(r["failed"] for r in ok)
        before = sorted(r["refine"]["iou_before"] for r in ok) or [float("nan")]
        after = sorted(r["refine"]["iou_after"] for r in ok) or [float("nan")]
        console.print(f"{len(records)} images -> {out}: median IoU {before[len(before) // 2]:.3f}"
                      f" -> {after[len(after) // 2]:.3f}, {n_fail} flagged as failed"
                      + (f", {len(errors)} with bad input" if errors else ""))
        _warn_frames(records)


def _warn_frames(records: list[dict]) -> None:
    """One warning line for meshes whose camera says they are not Z-up (record["frame"])."""
    import numpy as np
    from rich.markup import escape

    from geocorr.cli._common import console
    from geocorr.reconstruct.frame import FrameCheck

    bad = [r for r in records if r.get("frame") and not r["frame"]["ok"]]
    if not bad:
        return
    f = bad[0]["frame"]
    first = FrameCheck(np.asarray(f["camera_up"]), f["angle_deg"], f["closest_axis"], False)
    text = (f"{len(bad)} of {len(records)} meshes do not look Z-up; first: "
            f"{first.message(bad[0]['mesh_source'])}")
    console.print(f"[yellow]warning:[/yellow] {escape(text)}", highlight=False)


def _segmenter(masks: str, dataset: Path, sam3_model: str | None, device: str):
    from geocorr.reconstruct.segmenter import (
        DatasetMasks,
        PredictedMasks,
        Sam3Segmenter,
        Sam3Settings,
        default_segmenter,
    )

    if masks == "auto":
        return default_segmenter(dataset)
    if masks == "predicted":
        if not (dataset / PredictedMasks.folder).is_dir():
            raise ValueError(f"--masks predicted: {dataset / PredictedMasks.folder} not found "
                             f"(only procedural datasets have it)")
        return PredictedMasks(dataset)
    if masks == "dataset":
        return DatasetMasks(dataset)
    if masks == "sam3":
        from geocorr.cli._common import given

        return Sam3Segmenter(Sam3Settings(**given(model=sam3_model)), device=device)
    raise ValueError(f"--masks must be auto, predicted, dataset or sam3, got {masks!r}")


def _reconstructor(meshes: str, dataset: Path):
    from geocorr.reconstruct.reconstructor import FileReconstructor, simulated_reconstructor

    if meshes == "simulated":
        return simulated_reconstructor(dataset)
    if meshes.startswith("files:"):
        return FileReconstructor(meshes[len("files:"):])
    if meshes.startswith("sam3d:"):
        from geocorr.reconstruct.sam3d import Sam3DReconstructor

        return Sam3DReconstructor(meshes[len("sam3d:"):])
    raise ValueError(f"--meshes must be simulated, files:DIR or sam3d:REPO, got {meshes!r}")

"""``geocorr refine``: render-and-compare refinement of one mesh against one mask."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def refine(
        mesh: Path = typer.Option(..., "--mesh", help="Mesh file (ply, glb, obj)."),
        camera: Path = typer.Option(..., "--camera", help="Predicted camera JSON."),
        mask: Path = typer.Option(
            ..., "--mask", help="Object mask image: its alpha channel unless that is opaque "
                                "everywhere, else the non-zero pixels (docs/reconstruct.md)."),
        out: Path = typer.Option(..., "--out", help="Output JSON: refined camera + IoU."),
        max_side: int | None = typer.Option(
            None, "--max-side", help="Working resolution (default 64)."),
        dt_steps: int | None = typer.Option(
            None, "--dt-steps", help="Distance-transform phase steps (default 30)."),
        iou_steps: int | None = typer.Option(
            None, "--iou-steps", help="Soft-IoU phase steps (default 15)."),
        rotation: bool | None = typer.Option(
            None, "--rotation/--no-rotation",
            help="Also fit a small rotation about the mesh centre (kept only if it beats "
                 "the scale/translation fit by a hard-IoU margin; docs/reconstruct.md; "
                 "default on)."),
        fit_focal: bool | None = typer.Option(
            None, "--fit-focal/--no-fit-focal",
            help="Also fit a focal-length factor (default off)."),
    ) -> None:
        """Fit scale, translation and a small rotation of MESH so that it renders onto MASK.

        The refined camera in OUT renders the original mesh like the refined mesh.
        """
        import numpy as np

        from geocorr.cli._common import console, given, user_errors
        from geocorr.data.images import read_mask
        from geocorr.geometry.camera import load_camera
        from geocorr.geometry.mesh import load_mesh
        from geocorr.reconstruct.pipeline import write_json_atomic
        from geocorr.reconstruct.refine import RefineSettings, refine_pose

        with user_errors():
            m = load_mesh(mesh)
            cam = load_camera(camera)
            target = read_mask(mask)
            if target.shape != cam.size:
                raise ValueError(f"{mask}: mask is {target.shape[1]}x{target.shape[0]} but "
                                 f"{camera} is {cam.width}x{cam.height}")
            res = refine_pose(np.asarray(m.vertices), np.asarray(m.faces), cam, target,
                              RefineSettings(**given(max_side=max_side, dt_steps=dt_steps,
                                                     iou_steps=iou_steps, rotation=rotation,
                                                     fit_focal=fit_focal)))
            write_json_atomic(out, {"camera": res.camera.to_dict(), **res.to_dict()})
        console.print(f"IoU {res.iou_before:.3f} -> {res.iou_after:.3f}"
                      + (f" [red]FAILED: {res.reason}[/red]" if res.failed else "")
                      + f" ({res.seconds:.2f} s) -> {out}")

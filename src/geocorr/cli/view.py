"""``geocorr view``: an interactive correspondence viewer of two images, one HTML file."""

from __future__ import annotations

from pathlib import Path

import typer

from geocorr.cli._common import PART_CONFIDENCE_HELP, PART_WEIGHT_HELP


def register(app: typer.Typer) -> None:
    @app.command()
    def view(
        image1: Path = typer.Argument(..., help="Source image."),
        image2: Path = typer.Argument(..., help="Target image."),
        out: Path = typer.Option(..., "--out", help="The page to write (.html)."),
        mesh1: Path | None = typer.Option(
            None, "--mesh1", help="Source mesh, canonical frame: Z up, X front, Y left."),
        camera1: Path | None = typer.Option(None, "--camera1", help="Source camera JSON."),
        mesh2: Path | None = typer.Option(None, "--mesh2"),
        camera2: Path | None = typer.Option(None, "--camera2"),
        mask1: Path | None = typer.Option(None, "--mask1", help="Source object mask."),
        mask2: Path | None = typer.Option(None, "--mask2", help="Target object mask."),
        stage1: Path | None = typer.Option(
            None, "--stage1", help="Stage-1 cache holding both images (category = the "
                                   "image's folder name, entry = its file stem)."),
        model: Path | None = typer.Option(
            None, "--model", help="Adapter run folder or checkpoint (adds its panel)."),
        backbone: list[str] | None = typer.Option(
            None, "--backbone",
            help="2D backbone; repeat or comma-separate to fuse several (default xfeat)."),
        weights: list[str] = typer.Option(
            [], "--weights", help="Backbone weights: PATH or NAME=PATH (as in geocorr match)."),
        keypoints: Path | None = typer.Option(
            None, "--keypoints", help='JSON {"source": [[x, y], ...], "target": [[x, y], ...]} '
                                      "of annotated keypoints, file pixels."),
        part_weight: float | None = typer.Option(None, "--part-weight", help=PART_WEIGHT_HELP),
        part_confidence: bool = typer.Option(True, "--part-confidence/--constant-part-weight",
                                             help=PART_CONFIDENCE_HELP),
        max_side: int | None = typer.Option(
            None, "--max-side", help="Working resolution: longer side in pixels (default 1024)."),
        device: str = typer.Option("cpu", "--device"),
    ) -> None:
        """Write one self-contained HTML page: click a source pixel, see each feature kind's
        similarity heat-map and nearest neighbour in the target (2D, rendered part
        descriptor and fused with meshes, adapter with --model).
        """
        import json

        import numpy as np

        from geocorr.cli._common import (
            check_device,
            console,
            given,
            mesh_view_from_flags,
            part_fusion_settings,
            user_errors,
        )
        from geocorr.features.registry import parse_weights, split_names
        from geocorr.matching.images import ImageInputSettings
        from geocorr.viewer.files import FilePairSettings, pair_from_files
        from geocorr.viewer.page import write_viewer

        def read_keypoints(path: Path):
            try:
                d = json.loads(path.read_text())
                pts = (np.asarray(d["source"], dtype=np.float64),
                       np.asarray(d["target"], dtype=np.float64))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"--keypoints {path}: expected {{\"source\": [[x, y], ...], "
                                 f"\"target\": [[x, y], ...]}} ({exc})") from None
            if pts[0].shape != pts[1].shape or pts[0].ndim != 2 or pts[0].shape[1] != 2:
                raise ValueError(f"--keypoints {path}: source and target must be equally "
                                 f"long lists of [x, y]")
            return pts

        with user_errors():
            check_device(device)
            if out.suffix.lower() not in (".html", ".htm"):
                raise ValueError(f"--out {out}: use an .html path")
            names = tuple(split_names(backbone or ())) or FilePairSettings().backbones
            try:
                paths = parse_weights(weights, default=names[0])
            except ValueError as exc:
                raise ValueError(f"--weights: {exc}") from None
            settings = FilePairSettings(
                backbones=names, weights=paths, device=device,
                fusion=part_fusion_settings(part_weight, part_confidence),
                inputs=ImageInputSettings(**given(max_side=max_side)))
            meshes = (mesh_view_from_flags(mesh1, camera1, "1"),
                      mesh_view_from_flags(mesh2, camera2, "2"))
            kps = read_keypoints(keypoints) if keypoints is not None else None
            pair = pair_from_files(image1, image2, meshes=meshes, masks=(mask1, mask2),
                                   stage1=stage1, model=model, keypoints=kps, settings=settings)
            rec = write_viewer(out, [pair])
            console.print(f"wrote {out} ({rec.size_bytes / 2**20:.1f} MiB; "
                          f"{', '.join(rec.kinds)})", highlight=False)

"""``geocorr match``: candidate correspondences between two of your images."""

from __future__ import annotations

from pathlib import Path

import typer

from geocorr.cli._common import PART_CONFIDENCE_HELP, PART_WEIGHT_HELP


def register(app: typer.Typer) -> None:
    @app.command()
    def match(
        image1: Path = typer.Argument(..., help="Source image."),
        image2: Path = typer.Argument(..., help="Target image."),
        out: Path = typer.Option(..., "--out", help="Output .png (figure) or .json (matches); "
                                                    "both are written, named from this path."),
        mask1: Path | None = typer.Option(
            None, "--mask1", help="Source object mask (alpha unless opaque everywhere, else "
                                  "non-zero pixels)."),
        mask2: Path | None = typer.Option(None, "--mask2", help="Target object mask."),
        mesh1: Path | None = typer.Option(
            None, "--mesh1", help="Source mesh, canonical frame: Z up, X front, Y left "
                                  "(docs/reconstruct.md)."),
        camera1: Path | None = typer.Option(None, "--camera1", help="Source camera JSON."),
        mesh2: Path | None = typer.Option(None, "--mesh2"),
        camera2: Path | None = typer.Option(None, "--camera2"),
        backbone: str | None = typer.Option(None, "--backbone",
                                            help="2D backbone name (default xfeat)."),
        weights: str | None = typer.Option(
            None, "--weights", help="Weights of the backbone: PATH or NAME=PATH (state dict "
                                    "for xfeat; local directory or hub id for dinov2/dinov3/sd)."),
        part_weight: float | None = typer.Option(None, "--part-weight", help=PART_WEIGHT_HELP),
        part_confidence: bool = typer.Option(True, "--part-confidence/--constant-part-weight",
                                             help=PART_CONFIDENCE_HELP),
        tau: float | None = typer.Option(
            None, "--tau", help="Relaxed cyclic tolerance (default 0.05)."),
        max_side: int | None = typer.Option(
            None, "--max-side", help="Working resolution: longer side in pixels (default 1024); "
                                     "larger images are scaled down first."),
        device: str = typer.Option("cpu", "--device"),
    ) -> None:
        """Match IMAGE1 to IMAGE2 (2D features, + rendered part descriptors with meshes).

        Images, masks and cameras are scaled to the working resolution before anything
        else; images with a side under 32 px are refused. Match coordinates in the JSON
        are pixels of the original files.
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
        from geocorr.evaluation.tables import write_json_atomic
        from geocorr.features.registry import DEFAULT_BACKBONE, make_backbones, parse_weights
        from geocorr.matching.images import (
            ImageInputSettings,
            load_working_image,
            match_images,
        )
        from geocorr.matching.pair import MatchSettings
        from geocorr.report.pair_figure import save_pair_figure

        with user_errors():
            check_device(device)
            if out.suffix.lower() not in (".png", ".json"):
                raise ValueError(f"--out {out}: use a .png or .json path")
            inputs = ImageInputSettings(**given(max_side=max_side))
            w1, w2 = (load_working_image(image, mask, mesh_view_from_flags(mesh, cam, n), inputs)
                      for image, mask, mesh, cam, n in ((image1, mask1, mesh1, camera1, "1"),
                                                        (image2, mask2, mesh2, camera2, "2")))
            img1, img2, m1, m2 = w1.image, w2.image, w1.mask, w2.mask
            backbone = backbone or DEFAULT_BACKBONE
            try:
                paths = parse_weights([weights] if weights else [], default=backbone)
                bb = make_backbones([backbone], device=device, weights=paths)[backbone]
            except ValueError as exc:
                raise ValueError(f"--backbone/--weights: {exc}") from None
            settings = MatchSettings(**given(tau=tau))
            res = match_images(img1, img2, bb, mask_s=m1, mask_t=m2, mesh_s=w1.mesh,
                               mesh_t=w2.mesh,
                               fusion=part_fusion_settings(part_weight, part_confidence),
                               settings=settings)
            m = res.matches
            kept = m.kept.get("cyclic", np.ones(len(m.src_uv), bool))
            png, js = out.with_suffix(".png"), out.with_suffix(".json")
            js.parent.mkdir(parents=True, exist_ok=True)
            src_uv, trg_uv = w1.to_source(m.src_uv), w2.to_source(m.trg_uv)
            write_json_atomic({"image1": str(image1), "image2": str(image2),
                               "sizes": [list(w1.src_size), list(w2.src_size)],
                               "working_sizes": [[img1.shape[1], img1.shape[0]],
                                                 [img2.shape[1], img2.shape[0]]],
                               "sources": list(res.maps),
                               "matches": [{"src": s.tolist(), "trg": t.tolist(),
                                            "similarity": float(c), "kept": bool(k)}
                                           for s, t, c, k in zip(src_uv, trg_uv, m.similarity,
                                                                 kept, strict=True)],
                               "provenance": json.loads(json.dumps(m.provenance, default=str))},
                              js)
            save_pair_figure(png, img1, img2, res.maps, m, title=f"{image1.name} -> {image2.name}",
                             masks=(m1, m2) if m1 is not None and m2 is not None else None)
            console.print(f"{int(kept.sum())} of {len(kept)} candidates kept by cyclic "
                          f"consistency; wrote {png} and {js}")

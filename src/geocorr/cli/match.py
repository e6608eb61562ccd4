"""``geocorr match``: candidate correspondences between two of your images."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def match(
        image1: Path = typer.Argument(..., help="Source image."),
        image2: Path = typer.Argument(..., help="Target image."),
        out: Path = typer.Option(..., "--out", help="Output .png (figure) or .json (matches); "
                                                    "both are written, named from this path."),
        mask1: Path | None = typer.Option(None, "--mask1", help="Source object mask PNG."),
        mask2: Path | None = typer.Option(None, "--mask2", help="Target object mask PNG."),
        mesh1: Path | None = typer.Option(None, "--mesh1", help="Source mesh (canonical frame)."),
        camera1: Path | None = typer.Option(None, "--camera1", help="Source camera JSON."),
        mesh2: Path | None = typer.Option(None, "--mesh2"),
        camera2: Path | None = typer.Option(None, "--camera2"),
        backbone: str = typer.Option("xfeat", "--backbone", help="2D backbone name."),
        weights: str | None = typer.Option(None, "--weights",
                                           help="Model path or hub id for the backbone."),
        part_weight: float = typer.Option(0.5, "--part-weight"),
        tau: float | None = typer.Option(None, "--tau", help="Relaxed cyclic tolerance."),
        device: str = typer.Option("cpu", "--device"),
    ) -> None:
        """Match IMAGE1 to IMAGE2 (2D features, + rendered part descriptors with meshes)."""
        import dataclasses
        import json

        import numpy as np
        from PIL import Image

        from geocorr.cli._common import check_device, console, user_errors
        from geocorr.evaluation.tables import write_json_atomic
        from geocorr.features.registry import make_backbone
        from geocorr.geometry.camera import load_camera
        from geocorr.geometry.mesh import load_mesh
        from geocorr.matching.images import MeshView, match_images
        from geocorr.matching.pair import MatchSettings
        from geocorr.report.pair_figure import save_pair_figure

        def read(path: Path, mode: str) -> np.ndarray:
            try:
                with Image.open(path) as im:
                    return np.asarray(im.convert(mode))
            except FileNotFoundError:
                raise FileNotFoundError(f"{path}: file not found") from None
            except (OSError, Image.DecompressionBombError) as exc:
                raise ValueError(f"{path}: not a readable image ({exc})") from None

        def view(mesh: Path | None, cam: Path | None, flag: str):
            if (mesh is None) != (cam is None):
                raise ValueError(f"--mesh{flag} and --camera{flag} go together")
            if mesh is None:
                return None
            m = load_mesh(mesh)
            return MeshView(np.asarray(m.vertices), np.asarray(m.faces), load_camera(cam))

        with user_errors():
            check_device(device)
            if out.suffix.lower() not in (".png", ".json"):
                raise ValueError(f"--out {out}: use a .png or .json path")
            img1, img2 = read(image1, "RGB"), read(image2, "RGB")
            m1 = read(mask1, "L") > 0 if mask1 else None
            m2 = read(mask2, "L") > 0 if mask2 else None
            v1, v2 = view(mesh1, camera1, "1"), view(mesh2, camera2, "2")
            bb = make_backbone(backbone, device=device, **({"model": weights} if weights else {}))
            settings = MatchSettings() if tau is None else dataclasses.replace(MatchSettings(),
                                                                              tau=tau)
            res = match_images(img1, img2, bb, mask_s=m1, mask_t=m2, mesh_s=v1, mesh_t=v2,
                               part_weight=part_weight, settings=settings)
            m = res.matches
            kept = m.kept.get("cyclic", np.ones(len(m.src_uv), bool))
            png, js = out.with_suffix(".png"), out.with_suffix(".json")
            js.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic({"image1": str(image1), "image2": str(image2),
                               "sources": list(res.maps),
                               "matches": [{"src": s.tolist(), "trg": t.tolist(),
                                            "similarity": float(c), "kept": bool(k)}
                                           for s, t, c, k in zip(m.src_uv, m.trg_uv, m.similarity,
                                                                 kept, strict=True)],
                               "provenance": json.loads(json.dumps(m.provenance, default=str))},
                              js)
            save_pair_figure(png, img1, img2, res.maps, m, title=f"{image1.name} -> {image2.name}",
                             masks=(m1, m2) if m1 is not None and m2 is not None else None)
            console.print(f"{int(kept.sum())} of {len(kept)} candidates kept by cyclic "
                          f"consistency; wrote {png} and {js}")

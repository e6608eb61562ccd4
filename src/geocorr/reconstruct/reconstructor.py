"""Reconstructors: image + mask -> mesh + predicted camera (method.md step 2).

The interface is :class:`Reconstructor`. Implementations:

* :class:`FileReconstructor` — **file import**, the primary path: a folder
  ``<root>/<category>/<image stem>.{ply,glb,obj}`` plus
  ``<root>/<category>/<image stem>.json`` (the camera JSON of
  :mod:`geocorr.geometry.camera`: ``{"K", "R", "t", "width", "height"}``, OpenCV
  axes, object -> camera). The mesh is in its own object frame, Z up; the
  camera renders it onto the image. This is how SAM3D output produced in its
  own environment enters geocorr (convert it with
  :func:`geocorr.reconstruct.sam3d.sam3d_to_geocorr`).
* :func:`simulated_reconstructor` — the procedural benchmark's simulated SAM3D
  output, ``DIR/Reconstructions``: the same file format.
* :class:`~geocorr.reconstruct.sam3d.Sam3DReconstructor` — runs SAM 3D Objects
  in-process (needs its own GPU environment).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from geocorr.data.paths import inside
from geocorr.geometry.camera import Camera, load_camera

__all__ = ["Reconstruction", "Reconstructor", "FileReconstructor", "simulated_reconstructor",
           "MESH_EXTENSIONS"]

MESH_EXTENSIONS = (".ply", ".glb", ".obj")
"""Mesh file types the file import looks for, in this order."""


@dataclass(frozen=True, eq=False)
class Reconstruction:
    """A mesh and the camera that renders it onto the image.

    Attributes:
        vertices: ``(V, 3)`` float64 object-frame vertices (Z up).
        faces: ``(F, 3)`` int64 triangle indices.
        camera: predicted camera, image-sized.
        source: where it came from (file path or model name).
    """

    vertices: np.ndarray
    faces: np.ndarray
    camera: Camera
    source: str


@runtime_checkable
class Reconstructor(Protocol):
    """Image + mask -> :class:`Reconstruction`."""

    name: str

    def reconstruct(self, image: np.ndarray, mask: np.ndarray, category: str,
                    stem: str) -> Reconstruction:
        """Reconstruct the masked object of ``image`` (``(H, W, 3)`` uint8, mask ``(H, W)``)."""
        ...


class FileReconstructor:
    """Read ``<root>/<category>/<stem>.{ply,glb,obj}`` + ``<stem>.json``.

    Args:
        root: folder of per-category subfolders.
        name: reported name (``"files"``; ``"simulated"`` for the benchmark).
    """

    def __init__(self, root: str | Path, name: str = "files") -> None:
        self.root = Path(root)
        self.name = name
        if not self.root.is_dir():
            raise FileNotFoundError(f"reconstruction folder not found: {self.root}")

    def paths(self, category: str, stem: str) -> tuple[Path, Path]:
        """``(mesh path, camera path)``; raises naming the files if the mesh is missing.

        Raises:
            FileNotFoundError: no mesh file.
            ValueError: ``category``/``stem`` lead outside ``root``
                (:func:`geocorr.data.paths.inside`).
        """
        folder = self.root / category
        where = f"image {category}/{stem}"
        for ext in MESH_EXTENSIONS:
            p = inside(self.root, category, f"{stem}{ext}", source=where, what="mesh")
            if p.is_file():
                return p, inside(self.root, category, f"{stem}.json", source=where,
                                 what="camera")
        tried = ", ".join(str(folder / f"{stem}{e}") for e in MESH_EXTENSIONS)
        raise FileNotFoundError(f"no mesh for image {category}/{stem}: tried {tried}")

    def load(self, category: str, stem: str) -> Reconstruction:
        """Load the mesh and camera of one image (no size check)."""
        from geocorr.geometry.mesh import load_mesh

        mesh_path, cam_path = self.paths(category, stem)
        if not cam_path.is_file():
            raise FileNotFoundError(f"camera file not found: {cam_path} (next to {mesh_path})")
        mesh = load_mesh(mesh_path)
        camera = load_camera(cam_path)
        return Reconstruction(vertices=np.asarray(mesh.vertices, dtype=np.float64),
                              faces=np.asarray(mesh.faces, dtype=np.int64), camera=camera,
                              source=str(mesh_path))

    def reconstruct(self, image: np.ndarray, mask: np.ndarray, category: str,
                    stem: str) -> Reconstruction:
        """Load the files of ``category/stem``; the camera must match the image size."""
        rec = self.load(category, stem)
        H, W = np.asarray(mask).shape[:2]
        if rec.camera.size != (H, W):
            raise ValueError(f"{self.paths(category, stem)[1]}: camera is "
                             f"{rec.camera.width}x{rec.camera.height} but the image is {W}x{H}")
        return rec


def simulated_reconstructor(dataset_root: str | Path) -> FileReconstructor:
    """The procedural benchmark's simulated SAM3D output (``DIR/Reconstructions``)."""
    root = Path(dataset_root) / "Reconstructions"
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no Reconstructions/ folder; generate the benchmark "
                                "with `geocorr synth` or pass --meshes files:DIR")
    return FileReconstructor(root, name="simulated")

"""Match two of a user's images: 2D features, optionally fused with a rendered part descriptor.

This is what ``geocorr match`` runs. With a mesh + camera per image (e.g. from
``geocorr reconstruct`` or SAM3D run elsewhere), the CPU geometric part
descriptor of each mesh is rendered into its image and fused with the 2D
features (:func:`geocorr.features.part_fusion.fuse_part`, the composition every
command uses; without a stage-1 record the confidence is the mesh's mask IoU),
so matches know left from right as far as the meshes are canonical.

Image files go through :func:`load_working_image` first: each image, its mask
and its camera are scaled to the working resolution (longer side
``ImageInputSettings.max_side``, 1024 px) before anything else runs, so time
and memory do not grow with the photo's resolution; images with a side below
``ImageInputSettings.min_side`` (32 px) are refused. Matches are found at the
working resolution and mapped back to each file's pixels with
:meth:`WorkingImage.to_source`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from geocorr.data.images import image_size, read_mask, read_rgb, resized_size
from geocorr.features import part_fusion
from geocorr.features.base import Backbone, FeatureMap
from geocorr.features.geometric import GeometricDescriptor
from geocorr.geometry.camera import Camera
from geocorr.matching.matches import Matches
from geocorr.matching.pair import MatchSettings, match_pair

__all__ = ["MeshView", "ImageMatchResult", "ImageInputSettings", "WorkingImage",
           "load_working_image", "match_images"]


@dataclass(frozen=True, eq=False)
class MeshView:
    """A mesh and the camera that renders it onto its image.

    Attributes:
        vertices: ``(V, 3)`` object-frame vertices (canonical frame: X front, Y left, Z up).
        faces: ``(F, 3)`` triangle indices.
        camera: camera of the image.
    """

    vertices: np.ndarray
    faces: np.ndarray
    camera: Camera


@dataclass(frozen=True, eq=False)
class ImageMatchResult:
    """Matches of one image pair and the feature maps that produced them.

    Attributes:
        matches: every candidate with each filter's decision.
        maps: source name -> ``(source map, target map)`` (2D, rendered part, fused).
    """

    matches: Matches
    maps: dict[str, tuple[FeatureMap, FeatureMap]]


@dataclass(frozen=True)
class ImageInputSettings:
    """How user images are prepared for matching.

    Attributes:
        max_side: working resolution: an image whose longer side exceeds it is
            scaled down to it (aspect kept) before features, masks, meshes and
            the figure see it. 1024 is above every registered backbone's canvas
            (DINOv3/SD 960, DINOv2 840, XFeat 512, classical 256), so no backbone
            sees less detail than it would from the full-size photo.
        min_side: the smallest side (pixels, of the file and of the working
            image) that is described: 32 px is 4 cells of XFeat's 8-px stride;
            below it a backbone sees a handful of upsampled pixels and every
            "match" is noise (a 1x1 image once gave 651 "kept" matches).
    """

    max_side: int = 1024
    min_side: int = 32

    def __post_init__(self) -> None:
        if self.min_side < 1 or self.max_side < self.min_side:
            raise ValueError(f"ImageInputSettings needs 1 <= min_side <= max_side, got "
                             f"min_side={self.min_side}, max_side={self.max_side}")


@dataclass(frozen=True, eq=False)
class WorkingImage:
    """One image file at the working resolution, with its mask and mesh scaled alike.

    Attributes:
        image: ``(h, w, 3)`` uint8 RGB at the working resolution.
        mask: ``(h, w)`` bool object mask, or ``None``.
        mesh: mesh + camera with the camera scaled to ``(w, h)``, or ``None``.
        src_size: ``(W, H)`` of the file.
        path: the file.
    """

    image: np.ndarray
    mask: np.ndarray | None
    mesh: MeshView | None
    src_size: tuple[int, int]
    path: str = ""

    @property
    def scale(self) -> tuple[float, float]:
        """``(sx, sy)``: working pixels per file pixel along x and y."""
        return (self.image.shape[1] / self.src_size[0], self.image.shape[0] / self.src_size[1])

    def to_source(self, uv: np.ndarray) -> np.ndarray:
        """Working-image points ``(N, 2)`` -> file pixels ``(N, 2)`` (pixel-centre exact)."""
        sx, sy = self.scale
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        return np.stack([(uv[:, 0] + 0.5) / sx - 0.5, (uv[:, 1] + 0.5) / sy - 0.5], axis=1)


def _check_side(width: int, height: int, what: str, min_side: int) -> None:
    if min(width, height) < min_side:
        raise ValueError(f"{what}: image is {width}x{height}, below the {min_side}-pixel "
                         f"minimum side that can be described")


def load_working_image(path: str | os.PathLike[str], mask: str | os.PathLike[str] | None = None,
                       mesh: MeshView | None = None,
                       settings: ImageInputSettings | None = None) -> WorkingImage:
    """Read an image file (and its mask) at the working resolution; scale its camera to match.

    The image is scaled down first (JPEGs are decoded at a reduced scale), so
    nothing downstream sees the full-size photo.

    Args:
        path: the image file.
        mask: its object mask file (read by :func:`geocorr.data.images.read_mask`), or ``None``.
        mesh: its mesh + camera (the camera for the file's ``W x H``), or ``None``.
        settings: :class:`ImageInputSettings`.

    Returns:
        :class:`WorkingImage`.

    Raises:
        FileNotFoundError: a file is missing.
        ValueError: unreadable file, an image below ``min_side``, a mask or
            camera of another size than the image; messages name the file.
    """
    s = settings or ImageInputSettings()
    W, H = image_size(path)
    _check_side(W, H, str(path), s.min_side)
    w, h = resized_size(W, H, s.max_side)
    _check_side(w, h, f"{path} at the working resolution (longer side {s.max_side})",
                s.min_side)
    image = read_rgb(path, max_side=s.max_side)
    if image.shape[:2] != (h, w):  # a decoder disagreeing with its own header
        raise ValueError(f"{path}: decoded {image.shape[1]}x{image.shape[0]}, header says {W}x{H}")
    m = None
    if mask is not None:
        Wm, Hm = image_size(mask)
        if (Wm, Hm) != (W, H):
            raise ValueError(f"{mask}: mask is {Wm}x{Hm} but the image {path} is {W}x{H}")
        m = read_mask(mask, size=(w, h))
    if mesh is not None:
        cam = mesh.camera
        if (cam.width, cam.height) != (W, H):
            raise ValueError(f"camera of {path} is {cam.width}x{cam.height} but the image is "
                             f"{W}x{H}")
        if (w, h) != (W, H):
            mesh = MeshView(mesh.vertices, mesh.faces,
                            cam.scaled(w / W, h / H, width=w, height=h))
    return WorkingImage(image=image, mask=m, mesh=mesh, src_size=(W, H), path=str(path))


def _check_mask(mask: np.ndarray | None, image: np.ndarray, name: str) -> np.ndarray | None:
    if mask is None:
        return None
    mask = np.asarray(mask).astype(bool)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"{name}: mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                         f"{image.shape[1]}x{image.shape[0]}")
    return mask


def match_images(image_s: np.ndarray, image_t: np.ndarray, backbone: Backbone, *,
                 mask_s: np.ndarray | None = None, mask_t: np.ndarray | None = None,
                 mesh_s: MeshView | None = None, mesh_t: MeshView | None = None,
                 fusion: part_fusion.PartFusionSettings | None = None,
                 settings: MatchSettings | None = None
                 ) -> ImageMatchResult:
    """Candidate matches from ``image_s`` to ``image_t``.

    The images are used at the size given; image files should go through
    :func:`load_working_image` first (working resolution, masks and cameras scaled).

    Args:
        image_s: ``(H_s, W_s, 3)`` uint8 RGB source image.
        image_t: ``(H_t, W_t, 3)`` uint8 RGB target image.
        backbone: 2D feature backbone.
        mask_s: ``(H_s, W_s)`` object mask, or ``None`` (whole image; required with a mesh).
        mask_t: ``(H_t, W_t)`` object mask, or ``None``.
        mesh_s: source mesh + camera; give both meshes or neither.
        mesh_t: target mesh + camera.
        fusion: how the rendered part descriptors are fused (part weight, confidence rule).
        settings: matching settings.

    Returns:
        :class:`ImageMatchResult`.

    Raises:
        ValueError: an image with a side below ``ImageInputSettings().min_side``,
            masks or cameras that do not fit their image.
    """
    min_side = ImageInputSettings().min_side
    for image, side in ((image_s, "source"), (image_t, "target")):
        _check_side(image.shape[1], image.shape[0], side, min_side)
    mask_s = _check_mask(mask_s, image_s, "source")
    mask_t = _check_mask(mask_t, image_t, "target")
    if (mesh_s is None) != (mesh_t is None):
        raise ValueError("give a mesh + camera for both images or for neither")
    fs, ft = backbone.extract(image_s), backbone.extract(image_t)
    maps = {backbone.name: (fs, ft)}
    if mesh_s is not None and mesh_t is not None:
        desc = GeometricDescriptor()
        fusions = []
        for mv, mask, image, like, side in ((mesh_s, mask_s, image_s, fs, "source"),
                                            (mesh_t, mask_t, image_t, ft, "target")):
            if (mv.camera.height, mv.camera.width) != image.shape[:2]:
                raise ValueError(f"{side}: camera is {mv.camera.width}x{mv.camera.height} but "
                                 f"the image is {image.shape[1]}x{image.shape[0]}")
            if mask is None:
                from geocorr.geometry.raster import rasterize

                mask = rasterize(mv.vertices, mv.faces, mv.camera).mask
            fusions.append(part_fusion.fuse_part(like, mv.vertices, mv.faces, mv.camera, mask,
                                                 fusion, descriptor=desc))
        maps["rendered part descriptor"] = (fusions[0].part, fusions[1].part)
        maps["fused"] = (fusions[0].fused, fusions[1].fused)
        fs, ft = maps["fused"]
    matches = match_pair(fs, ft, mask_s, mask_t, settings or MatchSettings())
    return ImageMatchResult(matches=matches, maps=maps)

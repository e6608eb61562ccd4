"""Match two of a user's images: 2D features, optionally fused with a rendered part descriptor.

This is what ``geocorr match`` runs. With a mesh + camera per image (e.g. from
``geocorr reconstruct`` or SAM3D run elsewhere), the CPU geometric part
descriptor of each mesh is rendered into its image and fused with the 2D
features, so matches know left from right as far as the meshes are canonical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocorr.features.base import Backbone, FeatureMap
from geocorr.geometry.camera import Camera
from geocorr.matching.matches import Matches
from geocorr.matching.pair import MatchSettings, match_pair

__all__ = ["MeshView", "ImageMatchResult", "match_images"]


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
                 part_weight: float = 0.5, settings: MatchSettings | None = None
                 ) -> ImageMatchResult:
    """Candidate matches from ``image_s`` to ``image_t``.

    Args:
        image_s: ``(H_s, W_s, 3)`` uint8 RGB source image.
        image_t: ``(H_t, W_t, 3)`` uint8 RGB target image.
        backbone: 2D feature backbone.
        mask_s: ``(H_s, W_s)`` object mask, or ``None`` (whole image; required with a mesh).
        mask_t: ``(H_t, W_t)`` object mask, or ``None``.
        mesh_s: source mesh + camera; give both meshes or neither.
        mesh_t: target mesh + camera.
        part_weight: fusion weight of the rendered part descriptor (2D gets the rest).
        settings: matching settings.

    Returns:
        :class:`ImageMatchResult`.
    """
    from geocorr.features.fusion import FusionSettings, fuse

    mask_s = _check_mask(mask_s, image_s, "source")
    mask_t = _check_mask(mask_t, image_t, "target")
    if (mesh_s is None) != (mesh_t is None):
        raise ValueError("give a mesh + camera for both images or for neither")
    fs, ft = backbone.extract(image_s), backbone.extract(image_t)
    maps = {backbone.name: (fs, ft)}
    if mesh_s is not None and mesh_t is not None:
        if not 0.0 < part_weight < 1.0:
            raise ValueError(f"part_weight must be in (0, 1), got {part_weight}")
        from geocorr.features.geometric import GeometricDescriptor
        from geocorr.features.render import render_descriptors

        desc = GeometricDescriptor()
        parts = []
        for mv, mask, image, like, side in ((mesh_s, mask_s, image_s, fs, "source"),
                                            (mesh_t, mask_t, image_t, ft, "target")):
            if (mv.camera.height, mv.camera.width) != image.shape[:2]:
                raise ValueError(f"{side}: camera is {mv.camera.width}x{mv.camera.height} but "
                                 f"the image is {image.shape[1]}x{image.shape[0]}")
            if mask is None:
                from geocorr.geometry.raster import rasterize

                mask = rasterize(mv.vertices, mv.faces, mv.camera).mask
            parts.append(render_descriptors(mv.vertices, mv.faces,
                                            desc.describe(mv.vertices, mv.faces), mv.camera,
                                            mask, like, name="geometric"))
        weights = {backbone.name: 1.0 - part_weight, "geometric": part_weight}
        fused = tuple(fuse({backbone.name: f, "geometric": p}, FusionSettings(weights=weights))
                      for f, p in ((fs, parts[0]), (ft, parts[1])))
        maps["rendered part descriptor"] = (parts[0], parts[1])
        maps["fused"] = fused
        fs, ft = fused
    matches = match_pair(fs, ft, mask_s, mask_t, settings or MatchSettings())
    return ImageMatchResult(matches=matches, maps=maps)

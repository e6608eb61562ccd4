"""The feature kinds the viewer shows, composed from the library's own feature code.

Per image pair, in panel order: the 2D map (one backbone, or several fused by
:func:`geocorr.features.fusion.fuse`), the rendered part descriptor and the
2D+3D fused map of each image's stage-1 mesh
(:func:`geocorr.features.part_fusion.fuse_part`, the composition every command
uses), and a trained adapter's map. Nothing here computes a feature itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from geocorr.features.base import FeatureMap
from geocorr.features.geometric import GeometricDescriptor
from geocorr.features.part_fusion import PartFusion, PartFusionSettings, fuse_part
from geocorr.geometry.camera import Camera

__all__ = ["MeshInput", "PART_KIND", "FUSED_KIND", "ADAPTER_KIND", "fuse_image", "viewer_maps"]

PART_KIND = "rendered part descriptor"
FUSED_KIND = "fused"
ADAPTER_KIND = "adapter"


@dataclass(frozen=True, eq=False)
class MeshInput:
    """One image's stage-1 output, in the image's pixel frame.

    Attributes:
        vertices: ``(V, 3)`` canonicalized mesh vertices.
        faces: ``(F, 3)`` triangle indices.
        camera: renders the mesh onto the image.
        mask: ``(H, W)`` bool object mask, or ``None`` (the mesh's own silhouette).
        record: the stage-1 ``record.json`` (confidence of the part share), or ``None``.
    """

    vertices: np.ndarray
    faces: np.ndarray
    camera: Camera
    mask: np.ndarray | None = None
    record: Mapping[str, Any] | None = None

    def object_mask(self) -> np.ndarray:
        """``(H, W)`` bool: ``mask``, or the mesh's silhouette when there is none."""
        if self.mask is not None:
            return np.asarray(self.mask, dtype=bool)
        from geocorr.geometry.raster import rasterize

        return rasterize(self.vertices, self.faces, self.camera).mask


def fuse_image(fmap: FeatureMap, mesh: MeshInput, fusion: PartFusionSettings | None = None, *,
               descriptor: Any = None, vertex_desc: np.ndarray | None = None) -> PartFusion:
    """One image's rendered part descriptor and fused map on ``fmap``'s grid.

    :func:`~geocorr.features.part_fusion.fuse_part` with the image's mask (or
    the mesh's silhouette) and stage-1 record; ``descriptor`` defaults to the
    CPU geometric one, ``vertex_desc`` skips it.
    """

    if descriptor is None and vertex_desc is None:

        descriptor = GeometricDescriptor()
    return fuse_part(fmap, mesh.vertices, mesh.faces, mesh.camera, mesh.object_mask(), fusion,
                     record=mesh.record, descriptor=descriptor, vertex_desc=vertex_desc)


def viewer_maps(two_d: tuple[FeatureMap, FeatureMap], name: str, *,
                meshes: tuple[MeshInput, MeshInput] | None = None,
                fusion: PartFusionSettings | None = None,
                adapted: tuple[FeatureMap, FeatureMap] | None = None,
                descriptor: Any = None,
                fused: tuple[PartFusion, PartFusion] | None = None
                ) -> dict[str, tuple[FeatureMap, FeatureMap]]:
    """``kind -> (source map, target map)`` for one pair.

    Args:
        two_d: the 2D maps of source and target.
        name: the 2D kind's label (e.g. ``"xfeat"``).
        meshes: each image's stage-1 output; adds the rendered part
            descriptor and the fused map (both on the 2D grid, :func:`fuse_image`).
        fusion: :class:`~geocorr.features.part_fusion.PartFusionSettings`.
        adapted: an adapter's maps of source and target, or ``None``.
        descriptor: part descriptor (default: the CPU geometric one).
        fused: each image's :func:`fuse_image` result, already computed
            (instead of ``meshes``; a caller showing one image in many pairs).

    Returns:
        An ordered dict: ``name``, then :data:`PART_KIND` and :data:`FUSED_KIND`
        with meshes, then :data:`ADAPTER_KIND` with ``adapted``.
    """
    out = {name: two_d}
    if fused is None and meshes is not None:
        fused = (fuse_image(two_d[0], meshes[0], fusion, descriptor=descriptor),
                 fuse_image(two_d[1], meshes[1], fusion, descriptor=descriptor))
    if fused is not None:
        out[PART_KIND] = (fused[0].part, fused[1].part)
        out[FUSED_KIND] = (fused[0].fused, fused[1].fused)
    if adapted is not None:
        out[ADAPTER_KIND] = adapted
    return out

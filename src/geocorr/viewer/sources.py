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
from geocorr.features.part_fusion import PartFusionSettings
from geocorr.geometry.camera import Camera

__all__ = ["MeshInput", "PART_KIND", "FUSED_KIND", "ADAPTER_KIND", "viewer_maps"]

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


def viewer_maps(two_d: tuple[FeatureMap, FeatureMap], name: str, *,
                meshes: tuple[MeshInput, MeshInput] | None = None,
                fusion: PartFusionSettings | None = None,
                adapted: tuple[FeatureMap, FeatureMap] | None = None,
                descriptor: Any = None,
                vertex_desc: tuple[np.ndarray, np.ndarray] | None = None
                ) -> dict[str, tuple[FeatureMap, FeatureMap]]:
    """``kind -> (source map, target map)`` for one pair.

    Args:
        two_d: the 2D maps of source and target.
        name: the 2D kind's label (e.g. ``"xfeat"``).
        meshes: each image's stage-1 output; adds the rendered part
            descriptor and the fused map (both on the 2D grid).
        fusion: :class:`~geocorr.features.part_fusion.PartFusionSettings`.
        adapted: an adapter's maps of source and target, or ``None``.
        descriptor: part descriptor (default: the CPU geometric one).
        vertex_desc: precomputed per-vertex descriptors of the two meshes.

    Returns:
        An ordered dict: ``name``, then :data:`PART_KIND` and :data:`FUSED_KIND`
        with meshes, then :data:`ADAPTER_KIND` with ``adapted``.
    """
    from geocorr.features.part_fusion import fuse_part

    out = {name: two_d}
    if meshes is not None:
        if descriptor is None and vertex_desc is None:
            from geocorr.features.geometric import GeometricDescriptor

            descriptor = GeometricDescriptor()
        res = [fuse_part(fm, m.vertices, m.faces, m.camera, m.object_mask(), fusion,
                         record=m.record, descriptor=descriptor,
                         vertex_desc=None if vertex_desc is None else vertex_desc[i])
               for i, (fm, m) in enumerate(zip(two_d, meshes, strict=True))]
        out[PART_KIND] = (res[0].part, res[1].part)
        out[FUSED_KIND] = (res[0].fused, res[1].fused)
    if adapted is not None:
        out[ADAPTER_KIND] = adapted
    return out

"""The procedural benchmark's shape record: one instance of a parametric category.

Canonical object frame of every category: **X = front, Y = the object's left,
Z = up** (Orient Anything's convention), origin at the centre of the
bounding box, ground contact at the lowest Z. Yaw is rotation about Z.

Dense ground truth lives in *template coordinates*: every vertex carries the
part it belongs to and part-local coordinates normalised to ``[-1, 1]^3`` in
that part's own frame, defined on the category template so they transfer
across instances. Two surface points correspond iff they have the same part
id and close template coordinates. Mirror-symmetric or repeated parts (left
and right wheel) are different parts with the same ``part_material``: they
look alike, but matching one to the other is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SynthShape"]


@dataclass(frozen=True, eq=False)
class SynthShape:
    """One procedural instance, watertight and connected, in the canonical frame.

    Attributes:
        category: category name, e.g. ``"car"``.
        instance_id: index of the instance within its category.
        vertices: ``(V, 3)`` float64 vertex positions, canonical frame.
        faces: ``(F, 3)`` int64 triangle vertex indices.
        part_names: ``(P,)`` names of the parts, e.g. ``"wheel_front_left"``.
        part_material: ``(P,)`` appearance class of each part, e.g. ``"wheel"``;
            parts that should look alike share it.
        face_part: ``(F,)`` int32 part index of each face.
        vertex_part: ``(V,)`` int32 part index of each vertex.
        vertex_template: ``(V, 3)`` float64 part-local template coordinates in
            ``[-1, 1]^3``, consistent across instances of the category.
        keypoint_names: ``(K,)`` semantic keypoint names, fixed per category.
        keypoint_vertices: ``(K,)`` int64 index of the vertex each keypoint sits on.
        keypoint_groups: groups of keypoint indices that are the same part
            (left/right, the four wheels), SPair's geometry-aware groups.
        face_template: optional ``(F, 3, 3)`` float64 template coordinates of
            each face's three corners *in the face's own part*. A vertex on a
            seam between parts carries only one part's coordinates in
            ``vertex_template``; interpolate these per-corner values with the
            barycentrics instead to get exact dense ground truth next to seams.
            ``None`` when the producer did not record them.
    """

    category: str
    instance_id: int
    vertices: np.ndarray
    faces: np.ndarray
    part_names: tuple[str, ...]
    part_material: tuple[str, ...]
    face_part: np.ndarray
    vertex_part: np.ndarray
    vertex_template: np.ndarray
    keypoint_names: tuple[str, ...]
    keypoint_vertices: np.ndarray
    keypoint_groups: tuple[tuple[int, ...], ...]
    face_template: np.ndarray | None = None

    def __post_init__(self) -> None:
        V, F = len(self.vertices), len(self.faces)
        checks = {
            "vertices": (self.vertices.shape, (V, 3)),
            "faces": (self.faces.shape, (F, 3)),
            "face_part": (self.face_part.shape, (F,)),
            "vertex_part": (self.vertex_part.shape, (V,)),
            "vertex_template": (self.vertex_template.shape, (V, 3)),
            "keypoint_vertices": (self.keypoint_vertices.shape, (len(self.keypoint_names),)),
        }
        if self.face_template is not None:
            checks["face_template"] = (self.face_template.shape, (F, 3, 3))
        for name, (got, want) in checks.items():
            if got != want:
                raise ValueError(f"SynthShape.{name}: expected shape {want}, got {got}")
        if len(self.part_material) != len(self.part_names):
            raise ValueError("SynthShape: part_material and part_names differ in length")

    @property
    def num_parts(self) -> int:
        return len(self.part_names)

    @property
    def keypoints(self) -> np.ndarray:
        """``(K, 3)`` keypoint positions in the canonical frame."""
        return self.vertices[self.keypoint_vertices]

"""Does an imported mesh + camera use geocorr's object frame (X front, Y left, Z up)?

Meshes brought in with ``--meshes files:DIR`` (or ``--mesh`` in ``geocorr
match``) must be Z-up. A mesh in another convention, e.g. glTF's Y-up, still
renders onto the image with its own camera, so refinement does not notice;
the yaw vote and the part descriptor then work about the wrong axis. What
gives it away is the camera: the image's up direction, expressed in mesh
coordinates (``-R[1]``), points near +Z for an ordinary photo of a Z-up
object, and near +Y for a Y-up one.

The check: the angle between the camera's up direction and the mesh's +Z
must be at most ``max_angle_deg`` (60°). A Z-up mesh passes from any camera
elevation up to 60° (most photos); a Y-up mesh photographed from an
elevation under 30° fails, as does an upside-down (Z-down) mesh. Views from
high above a Z-up object (elevation over 60°) also fail: the warning says
so, it does not stop anything.

Converting the common Y-up glTF convention (+Y up, +Z front, +X left) to
geocorr's: ``V = V_gltf[:, [2, 0, 1]]`` and, for its camera,
``R = R_gltf[:, [2, 0, 1]]`` (a rotation, so ``t`` and ``K`` stay).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geocorr.geometry.camera import Camera

__all__ = ["FrameCheck", "camera_up_in_mesh", "check_frame"]

_AXES = ("X", "Y", "Z")


def camera_up_in_mesh(camera: Camera) -> np.ndarray:
    """The image's up direction (``-v``) in mesh coordinates, ``(3,)`` unit vector."""
    up = -np.asarray(camera.R, dtype=np.float64)[1]
    return up / np.linalg.norm(up)


@dataclass(frozen=True)
class FrameCheck:
    """Result of :func:`check_frame`.

    Attributes:
        camera_up: ``(3,)`` image-up direction in mesh coordinates.
        angle_deg: angle between ``camera_up`` and the mesh's +Z, degrees.
        closest_axis: the signed mesh axis nearest ``camera_up``, e.g. ``"+Y"``.
        ok: ``angle_deg <= max_angle_deg``.
    """

    camera_up: np.ndarray
    angle_deg: float
    closest_axis: str
    ok: bool

    def message(self, what: str) -> str:
        """A one-line warning for ``what`` (e.g. the mesh file); empty when ``ok``."""
        if self.ok:
            return ""
        hint = (" (looks Y-up, e.g. glTF: convert with V = V[:, [2, 0, 1]] and "
                "R = R[:, [2, 0, 1]])" if self.closest_axis == "+Y" else "")
        return (f"{what}: the camera's up direction is {self.angle_deg:.0f} deg from the "
                f"mesh's +Z and closest to its {self.closest_axis} axis; meshes must be Z-up, "
                f"X front, Y left{hint}")

    def to_dict(self) -> dict:
        return {"camera_up": [round(float(x), 4) for x in self.camera_up],
                "angle_deg": round(self.angle_deg, 2), "closest_axis": self.closest_axis,
                "ok": self.ok}


def check_frame(camera: Camera, max_angle_deg: float = 60.0) -> FrameCheck:
    """Check that a mesh's +Z is up in its image (see the module docstring).

    Args:
        camera: the camera that renders the mesh onto its image.
        max_angle_deg: largest accepted angle between the image's up direction
            and the mesh's +Z, 60°.

    Returns:
        :class:`FrameCheck`.
    """
    if not 0.0 < max_angle_deg < 180.0:
        raise ValueError(f"max_angle_deg must be in (0, 180), got {max_angle_deg}")
    up = camera_up_in_mesh(camera)
    angle = math.degrees(math.acos(float(np.clip(up[2], -1.0, 1.0))))
    i = int(np.argmax(np.abs(up)))
    axis = ("+" if up[i] >= 0 else "-") + _AXES[i]
    return FrameCheck(camera_up=up, angle_deg=angle, closest_axis=axis,
                      ok=angle <= max_angle_deg)

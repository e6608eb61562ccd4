"""Small building blocks for part placements (template ``[-1,1]^3`` -> canonical frame).

Category builders compose these into closures passed as ``PartSpec.place``.
All rotations are proper (det +1) so placed primitives stay outward-oriented;
left/right mirroring is done by ``PartSpec.mirror``, never by a placement.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "Y_AXIS_OUT",
    "X_AXIS_FORWARD",
    "affine",
    "rot_x",
    "rot_y",
    "rot_z",
    "smoothstep",
]


def rot_x(angle: float) -> np.ndarray:
    """``(3, 3)`` rotation by ``angle`` radians about +X."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(angle: float) -> np.ndarray:
    """``(3, 3)`` rotation by ``angle`` radians about +Y."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(angle: float) -> np.ndarray:
    """``(3, 3)`` rotation by ``angle`` radians about +Z."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


# Template Z (a cylinder's axis) -> world +Y: wheels, whose outer cap is template z = +1.
Y_AXIS_OUT = rot_x(-np.pi / 2)
# Template Z -> world +X: engines, fuselages, snouts, with the front cap at template z = +1.
X_AXIS_FORWARD = rot_y(np.pi / 2)


def smoothstep(s: np.ndarray) -> np.ndarray:
    """``3 s^2 - 2 s^3`` on ``s`` clipped to ``[0, 1]``: 0 below, 1 above, smooth between."""
    s = np.clip(s, 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def affine(center, half, rot: np.ndarray | None = None):
    """Placement ``x -> R (half * x) + center``.

    Args:
        center: ``(3,)`` world position of the template origin.
        half: ``(3,)`` half-sizes along template X, Y, Z.
        rot: optional ``(3, 3)`` proper rotation applied after scaling.

    Returns:
        A function mapping template points ``(N, 3)`` to world points ``(N, 3)``.
    """
    c = np.asarray(center, dtype=np.float64)
    h = np.asarray(half, dtype=np.float64)
    r = np.eye(3) if rot is None else np.asarray(rot, dtype=np.float64)

    def place(t: np.ndarray) -> np.ndarray:
        return (t * h) @ r.T + c

    return place

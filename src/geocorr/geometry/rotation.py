"""Rotations from axis-angle vectors (Rodrigues' formula)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["rotvec_matrix"]

#: below this angle (radians) :func:`rotvec_matrix` returns the identity exactly.
_SMALL_ANGLE = 1e-12


def rotvec_matrix(w: np.ndarray) -> np.ndarray:
    """``(3,)`` axis-angle vector (axis times angle, radians) -> ``(3, 3)`` rotation matrix.

    Rodrigues: ``I + sin(theta) K + (1 - cos(theta)) K^2`` with ``K`` the
    cross-product matrix of the unit axis; the identity when
    ``theta = |w| < 1e-12``.
    """
    w = np.asarray(w, dtype=np.float64).reshape(3)
    theta = float(np.linalg.norm(w))
    if theta < _SMALL_ANGLE:
        return np.eye(3)
    k = w / theta
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + math.sin(theta) * K + (1.0 - math.cos(theta)) * (K @ K)

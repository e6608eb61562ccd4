"""Relaxed cyclic consistency (method step 7).

For a source point ``p_s`` with forward match ``p_t`` and back-match
``p̂_s = NN_s(p_t)``, keep the candidate iff ``|p̂_s - p_s| <= tau * (w, h)``
per axis, with ``(w, h)`` the source object's bounding-box size. ``tau = 0``
is the strict mutual nearest neighbour (same cell back).
"""

from __future__ import annotations

import numpy as np

__all__ = ["cycle_error", "cyclic_tolerance", "cycle_consistent", "mask_bbox"]


def mask_bbox(mask: np.ndarray) -> np.ndarray:
    """Tight ``[x1, y1, x2, y2]`` of a boolean mask in pixel coordinates (pixel centres).

    Raises:
        ValueError: the mask is empty.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2 or not m.any():
        raise ValueError("mask must be a non-empty (H, W) boolean array")
    rows, cols = np.nonzero(m)
    return np.array([cols.min(), rows.min(), cols.max(), rows.max()], dtype=np.float64)


def cycle_error(p_s: np.ndarray, p_back: np.ndarray) -> np.ndarray:
    """Per-axis absolute cycle error ``|p̂_s - p_s|``, ``(N, 2)`` float64 (pixels)."""
    p_s = np.asarray(p_s, dtype=np.float64).reshape(-1, 2)
    p_back = np.asarray(p_back, dtype=np.float64).reshape(-1, 2)
    if p_s.shape != p_back.shape:
        raise ValueError(f"p_s {p_s.shape} and p_back {p_back.shape} differ")
    return np.abs(p_back - p_s)


def cyclic_tolerance(bbox: np.ndarray, tau: float) -> np.ndarray:
    """``tau * (w, h)`` of an ``[x1, y1, x2, y2]`` box, ``(2,)`` pixels."""
    b = np.asarray(bbox, dtype=np.float64).reshape(-1)
    if b.shape != (4,) or not np.all(np.isfinite(b)) or b[2] < b[0] or b[3] < b[1]:
        raise ValueError(f"bbox must be finite [x1, y1, x2, y2] with x2 >= x1, y2 >= y1, got {b}")
    if not tau >= 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    return tau * np.array([b[2] - b[0], b[3] - b[1]])


def cycle_consistent(p_s: np.ndarray, p_back: np.ndarray, bbox: np.ndarray,
                     tau: float) -> np.ndarray:
    """Which candidates pass the relaxed cyclic test.

    Args:
        p_s: ``(N, 2)`` source points (pixels, ``(u, v)``).
        p_back: ``(N, 2)`` their back-matches ``NN_s(NN_t(p_s))``.
        bbox: source object box ``[x1, y1, x2, y2]``.
        tau: tolerance as a fraction of the box size.

    Returns:
        ``(N,)`` bool, ``|p̂_s - p_s| <= tau * (w, h)`` on both axes.
    """
    tol = cyclic_tolerance(bbox, tau)
    return np.all(cycle_error(p_s, p_back) <= tol + 1e-9, axis=1)

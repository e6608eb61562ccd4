"""Middlebury ``.flo`` optical-flow files (TSS ground truth and flow predictions).

Layout, little-endian: float32 magic ``202021.25`` (the bytes ``"PIEH"``),
int32 width ``W``, int32 height ``H``, then ``H * W * 2`` float32 values,
row-major and interleaved ``(u, v)``. Values with magnitude above ``1e9``
mean "unknown".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geocorr.atomic import write_bytes_atomic

__all__ = ["FLO_MAGIC", "UNKNOWN_FLOW_THRESHOLD", "read_flo", "write_flo", "flow_known"]

FLO_MAGIC = 202021.25
UNKNOWN_FLOW_THRESHOLD = 1e9


def read_flo(path: str | Path) -> np.ndarray:
    """Read a ``.flo`` file.

    Args:
        path: the file.

    Returns:
        ``(H, W, 2)`` float32 flow ``(u, v)``; unknown entries keep their huge values
        (see :func:`flow_known`).

    Raises:
        FileNotFoundError: no such file.
        ValueError: wrong magic, non-positive size or truncated data (names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"flow file {path} does not exist")
    raw = path.read_bytes()
    if len(raw) < 12:
        raise ValueError(f"{path}: too short for a .flo header ({len(raw)} bytes)")
    magic = np.frombuffer(raw, dtype="<f4", count=1)[0]
    if magic != np.float32(FLO_MAGIC):
        raise ValueError(f"{path}: bad .flo magic {magic!r} (expected {FLO_MAGIC}, 'PIEH')")
    w, h = (int(x) for x in np.frombuffer(raw, dtype="<i4", count=2, offset=4))
    if w <= 0 or h <= 0 or w > 100_000 or h > 100_000:
        raise ValueError(f"{path}: implausible .flo size {w}x{h}")
    need = 12 + 8 * w * h
    if len(raw) < need:
        raise ValueError(f"{path}: truncated .flo data ({len(raw)} bytes, {w}x{h} needs {need})")
    data = np.frombuffer(raw, dtype="<f4", count=2 * w * h, offset=12)
    return data.reshape(h, w, 2).astype(np.float32)


def write_flo(path: str | Path, flow: np.ndarray) -> None:
    """Write ``(H, W, 2)`` flow as a ``.flo`` file, atomically (tmp file + rename).

    Raises:
        ValueError: ``flow`` is not ``(H, W, 2)``.
    """
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2 or flow.shape[0] == 0 or flow.shape[1] == 0:
        raise ValueError(f"flow must be (H, W, 2), got {flow.shape}")
    h, w = flow.shape[:2]
    path = Path(path)
    payload = (np.array([FLO_MAGIC], "<f4").tobytes() + np.array([w, h], "<i4").tobytes()
               + np.ascontiguousarray(flow, dtype="<f4").tobytes())
    write_bytes_atomic(path, payload)


def flow_known(flow: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: both components finite and at most ``1e9`` in magnitude."""
    flow = np.asarray(flow)
    with np.errstate(invalid="ignore"):
        return np.all(np.isfinite(flow) & (np.abs(flow) <= UNKNOWN_FLOW_THRESHOLD), axis=-1)

"""Pinhole camera with an object-to-camera rigid pose, OpenCV convention.

Axes: x right, y down, z forward (into the scene). A point ``X`` in the
object frame maps to camera coordinates ``Xc = R @ X + t`` and to pixels
``(u, v) = (fx * Xc_x / Xc_z + cx, fy * Xc_y / Xc_z + cy)``.

Pixel convention: integer coordinates are pixel *centres* (OpenCV); the pixel
in row ``i``, column ``j`` is centred at ``(u, v) = (j, i)`` and the image
covers ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``.

The JSON file format is ``{"K": 3x3, "R": 3x3, "t": [3], "width": W, "height": H}``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Camera", "CameraError", "load_camera", "save_camera", "look_at"]

_ORTHO_TOL = 1e-4


class CameraError(ValueError):
    """A camera is malformed (bad shape, NaN, non-orthonormal R, bad focal)."""


def _as_matrix(value, shape: tuple[int, ...], name: str, where: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CameraError(f"{where}: {name} is not numeric ({exc})") from None
    if arr.shape != shape:
        raise CameraError(f"{where}: {name} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise CameraError(f"{where}: {name} contains NaN or inf")
    return arr


@dataclass(frozen=True, eq=False)
class Camera:
    """Pinhole intrinsics plus object-to-camera pose.

    Attributes:
        K: ``(3, 3)`` intrinsics ``[[fx, s, cx], [0, fy, cy], [0, 0, 1]]``.
        R: ``(3, 3)`` rotation, object frame -> camera frame (orthonormal, det +1).
        t: ``(3,)`` translation, object frame -> camera frame.
        width: image width W in pixels.
        height: image height H in pixels.
    """

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self, where: str = "camera") -> None:
        """Raise :class:`CameraError` naming ``where`` if any field is invalid."""
        K = _as_matrix(self.K, (3, 3), "K", where)
        R = _as_matrix(self.R, (3, 3), "R", where)
        t = _as_matrix(self.t, (3,), "t", where)
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            raise CameraError(f"{where}: focal lengths must be positive, got fx={K[0, 0]}, "
                              f"fy={K[1, 1]}")
        if not np.allclose(K[2], [0.0, 0.0, 1.0]) or K[1, 0] != 0 or K[2, 0] != 0:
            raise CameraError(f"{where}: K must be upper triangular with last row [0, 0, 1]")
        err = np.abs(R @ R.T - np.eye(3)).max()
        if err > _ORTHO_TOL:
            raise CameraError(f"{where}: R is not orthonormal (max |R R^T - I| = {err:.2e})")
        if np.linalg.det(R) < 0:
            raise CameraError(f"{where}: R is a reflection (det < 0), not a rotation")
        for name, v in (("width", self.width), ("height", self.height)):
            if isinstance(v, bool) or int(v) != v or int(v) <= 0:
                raise CameraError(f"{where}: {name} must be a positive integer, got {v!r}")
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    # ------------------------------------------------------------- properties
    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)``."""
        return self.height, self.width

    @property
    def center(self) -> np.ndarray:
        """Camera centre in the object frame, ``(3,)``."""
        return -self.R.T @ self.t

    # --------------------------------------------------------------- mapping
    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """Object-frame points ``(N, 3)`` -> camera-frame points ``(N, 3)``."""
        points = _points(points)
        return points @ self.R.T + self.t

    def to_object(self, points_cam: np.ndarray) -> np.ndarray:
        """Camera-frame points ``(N, 3)`` -> object-frame points ``(N, 3)``."""
        points_cam = _points(points_cam)
        return (points_cam - self.t) @ self.R

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project object-frame points.

        Args:
            points: ``(N, 3)`` object-frame points.

        Returns:
            ``(uv, depth)``: ``(N, 2)`` pixel coordinates and ``(N,)`` camera z.
            Points with ``depth <= 0`` get ``uv = NaN``.
        """
        pc = self.to_camera(points)
        z = pc[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uvw = pc @ self.K.T
            uv = uvw[:, :2] / uvw[:, 2:3]
        uv[z <= 0] = np.nan
        return uv, z

    def backproject(self, uv: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Pixels ``(N, 2)`` at camera depth ``(N,)`` -> object-frame points ``(N, 3)``."""
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        depth = np.asarray(depth, dtype=np.float64).reshape(-1)
        if depth.shape[0] != uv.shape[0]:
            raise ValueError(f"uv has {uv.shape[0]} rows but depth has {depth.shape[0]}")
        rays = self._camera_rays(uv)
        return self.to_object(rays * depth[:, None])

    def _camera_rays(self, uv: np.ndarray) -> np.ndarray:
        """Camera-frame ray directions with z = 1, ``(N, 3)``."""
        hom = np.concatenate([uv, np.ones((uv.shape[0], 1))], axis=1)
        return hom @ np.linalg.inv(self.K).T

    def pixel_rays(self, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rays through pixels, in the object frame.

        Args:
            uv: ``(N, 2)`` pixel coordinates.

        Returns:
            ``(origins, directions)``, each ``(N, 3)``; directions are unit length.
        """
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        d = self._camera_rays(uv) @ self.R
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        o = np.broadcast_to(self.center, d.shape).copy()
        return o, d

    def pixel_grid(self) -> np.ndarray:
        """Centres of every pixel, ``(H, W, 2)`` as ``(u, v)``."""
        v, u = np.mgrid[0 : self.height, 0 : self.width].astype(np.float64)
        return np.stack([u, v], axis=-1)

    # ------------------------------------------------------------ transforms
    def with_pose(self, R: np.ndarray, t: np.ndarray) -> Camera:
        """Same intrinsics, new pose."""
        return Camera(self.K, R, t, self.width, self.height)

    def with_object_transform(self, scale: float, translation: np.ndarray) -> Camera:
        """Camera seeing the object after ``X' = scale * X + translation``.

        Equivalent to transforming the mesh: ``cam.project(s*X + T)`` equals
        ``cam.with_object_transform(s, T).project(X)``.
        """
        translation = np.asarray(translation, dtype=np.float64).reshape(3)
        # R (s X + T) + t = s R X + (R T + t)  ->  divide depth by s is not a rigid
        # map, so fold the scale into the pose as a similarity: project(sX + T) =
        # pi(K (s R X + R T + t)) = pi(K (R X + (R T + t)/s)).
        return Camera(self.K, self.R, (self.R @ translation + self.t) / scale,
                      self.width, self.height)

    def scaled(self, sx: float, sy: float | None = None,
               width: int | None = None, height: int | None = None) -> Camera:
        """Camera for the image resized by ``(sx, sy)``.

        Pixel centres map as ``u' = sx * (u + 0.5) - 0.5`` (the continuous image
        extent scales), which is what ``cv2.resize`` does.
        """
        sy = sx if sy is None else sy
        S = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1.0]])
        w = width if width is not None else int(round(self.width * sx))
        h = height if height is not None else int(round(self.height * sy))
        return Camera(S @ self.K, self.R, self.t, w, h)

    def padded(self, left: int, top: int, width: int, height: int) -> Camera:
        """Camera for the image placed at offset ``(left, top)`` in a ``width x height`` canvas.

        Negative offsets crop.
        """
        K = self.K.copy()
        K[0, 2] += left
        K[1, 2] += top
        return Camera(K, self.R, self.t, width, height)

    # ------------------------------------------------------------------ I/O
    def to_dict(self) -> dict:
        return {
            "K": self.K.tolist(),
            "R": self.R.tolist(),
            "t": self.t.tolist(),
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_dict(cls, d: dict, where: str = "camera") -> Camera:
        """Build from the JSON dict; errors name ``where`` and the field."""
        if not isinstance(d, dict):
            raise CameraError(f"{where}: expected a JSON object, got {type(d).__name__}")
        missing = [k for k in ("K", "R", "t", "width", "height") if k not in d]
        if missing:
            raise CameraError(f"{where}: missing field(s) {missing}")
        K = _as_matrix(d["K"], (3, 3), "K", where)
        R = _as_matrix(d["R"], (3, 3), "R", where)
        t = _as_matrix(d["t"], (3,), "t", where)
        cam = object.__new__(cls)
        for name, value in (("K", K), ("R", R), ("t", t), ("width", d["width"]),
                            ("height", d["height"])):
            object.__setattr__(cam, name, value)
        cam.validate(where)
        return cam

    def __repr__(self) -> str:
        return (f"Camera(fx={self.fx:.1f}, fy={self.fy:.1f}, cx={self.cx:.1f}, cy={self.cy:.1f}, "
                f"t={np.round(self.t, 3).tolist()}, size={self.width}x{self.height})")


def _points(points: np.ndarray) -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {arr.shape}")
    return arr


def load_camera(path: str | os.PathLike) -> Camera:
    """Read a camera JSON file; errors name the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CameraError(f"{path}: camera file not found") from None
    except json.JSONDecodeError as exc:
        raise CameraError(f"{path}: not valid JSON ({exc})") from None
    return Camera.from_dict(data, where=str(path))


def save_camera(camera: Camera, path: str | os.PathLike) -> None:
    """Write a camera JSON file atomically (no half-written file on failure)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        mask = os.umask(0o022)   # mkstemp makes 0600; give what open() would: 0666 & ~umask
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)
        with os.fdopen(fd, "w") as f:
            json.dump(camera.to_dict(), f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = (0.0, 0.0, 1.0)
            ) -> tuple[np.ndarray, np.ndarray]:
    """Object-to-camera ``(R, t)`` for a camera at ``eye`` looking at ``target``.

    ``up`` is the object-frame direction that should appear upward in the image
    (image y points down, so camera y = -up projected).
    """
    eye = np.asarray(eye, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    up = np.asarray(up, dtype=np.float64)
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    n = np.linalg.norm(x)
    if n < 1e-9:
        raise ValueError("look_at: viewing direction is parallel to `up`")
    x /= n
    y = np.cross(z, x)
    R = np.stack([x, y, z])
    t = -R @ eye
    return R, t


def fov_to_focal(fov_deg: float, size: int) -> float:
    """Focal length in pixels for a field of view (degrees) across ``size`` pixels."""
    return 0.5 * size / math.tan(math.radians(fov_deg) / 2)

"""Scene sampling for the procedural benchmark: camera, viewpoint, light.

A scene is drawn per image from one ``numpy.random.Generator``:

* **azimuth** uniform over the full circle. Convention (the shapes'): azimuth
  0 means the object faces the camera (the camera sits on the object's +X
  axis); it grows as the camera orbits counter-clockwise seen from above,
  i.e. towards the object's left (+Y). The camera centre direction is
  ``(cos e cos a, cos e sin a, sin e)``.
* **elevation** uniform in ``SceneSettings.elevation_deg`` (above the ground).
* **focal length** from a random horizontal field of view over the long side.
* **distance** chosen so that the object's projected bounding box fills a
  random fraction of the frame (the larger of width and height fractions).
* **in-plane offset**: the object is shifted inside the free margin; with
  probability ``truncation_prob`` it is pushed across one border so that part
  of it is cut off (SPair's ``truncated``).
* **light**: a direction in the camera frame, from the camera's side and
  mostly from above, plus an ambient term.
* **occluder** (optional, :func:`sample_occluder`): a flat ellipse or bar in
  front of the object, overlapping its box.

``azimuth_bin`` turns the true azimuth into SPair's ``azimuth_id`` (8 bins of
45 degrees, bin 0 centred on the frontal view, growing with the azimuth).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geocorr.geometry.camera import Camera, fov_to_focal, look_at

__all__ = ["SceneSettings", "Scene", "sample_scene", "azimuth_bin", "pose_name",
           "orbit_camera", "sample_occluder"]


@dataclass
class SceneSettings:
    """How views are drawn. Defaults give SPair-like variety at ~384 px.

    Attributes:
        size: long side of the image in pixels (384: the issue's 256-512 range).
        aspect_range: short/long side ratio, drawn uniformly (mild aspect variety,
            like photographs).
        portrait_prob: probability that the long side is vertical.
        elevation_deg: camera elevation range in degrees (0-35: street-level to
            mildly from above, as in most SPair photos).
        fov_deg: horizontal field-of-view range over the long side, degrees.
        fill_range: fraction of the frame the projected object covers (max of
            the width and height fractions), drawn uniformly (30-80%).
        truncation_prob: probability of pushing the object across a border.
        truncation_range: fraction of the object's box pushed outside when truncated.
        ambient_range: ambient light term range (the rest is Lambertian).
        occluder_prob: probability of a flat occluder in front of the object
            (SPair's ``occluded``; 0.1).
        occluder_cover: occluder area as a fraction of the object's box area.
    """

    size: int = 384
    aspect_range: tuple[float, float] = (0.72, 1.0)
    portrait_prob: float = 0.25
    elevation_deg: tuple[float, float] = (0.0, 35.0)
    fov_deg: tuple[float, float] = (30.0, 60.0)
    fill_range: tuple[float, float] = (0.3, 0.8)
    truncation_prob: float = 0.12
    truncation_range: tuple[float, float] = (0.1, 0.3)
    ambient_range: tuple[float, float] = (0.25, 0.5)
    occluder_prob: float = 0.1
    occluder_cover: tuple[float, float] = (0.1, 0.3)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the bad field."""
        if self.size < 32:
            raise ValueError(f"SceneSettings.size must be >= 32, got {self.size}")
        for name in ("aspect_range", "elevation_deg", "fov_deg", "fill_range",
                     "truncation_range", "ambient_range", "occluder_cover"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ValueError(f"SceneSettings.{name}: low {lo} > high {hi}")
        if not 0 < self.aspect_range[0] <= self.aspect_range[1] <= 1:
            raise ValueError(f"SceneSettings.aspect_range must lie in (0, 1], "
                             f"got {self.aspect_range}")
        if not (0 < self.fill_range[0] and self.fill_range[1] <= 1.5):
            raise ValueError(f"SceneSettings.fill_range must lie in (0, 1.5], "
                             f"got {self.fill_range}")
        if not (-89 < self.elevation_deg[0] and self.elevation_deg[1] < 89):
            raise ValueError(f"SceneSettings.elevation_deg must lie in (-89, 89), "
                             f"got {self.elevation_deg}")
        if not (0 < self.fov_deg[0] and self.fov_deg[1] < 170):
            raise ValueError(f"SceneSettings.fov_deg must lie in (0, 170), got {self.fov_deg}")
        for name in ("portrait_prob", "truncation_prob", "occluder_prob"):
            p = getattr(self, name)
            if not 0 <= p <= 1:
                raise ValueError(f"SceneSettings.{name} must be a probability, got {p}")


@dataclass(frozen=True, eq=False)
class Scene:
    """One sampled view of an object.

    Attributes:
        camera: ground-truth camera (object canonical frame -> image).
        azimuth_deg: true azimuth in ``[0, 360)`` (see module docstring).
        elevation_deg: true elevation in degrees.
        light_dir: ``(3,)`` unit vector in the camera frame pointing from the
            surface towards the light.
        ambient: ambient light term in ``[0, 1]``.
        pushed_out: whether the object was deliberately pushed across a border.
    """

    camera: Camera
    azimuth_deg: float
    elevation_deg: float
    light_dir: np.ndarray
    ambient: float
    pushed_out: bool

    @property
    def azimuth_id(self) -> int:
        """SPair's 8-bin ``azimuth_id`` of the true azimuth."""
        return azimuth_bin(self.azimuth_deg)


def azimuth_bin(azimuth_deg: float) -> int:
    """8 bins of 45 degrees, bin 0 centred on azimuth 0 (frontal), counter-clockwise.

    SPair's exact bin origin is not documented; we centre bin 0 on the frontal
    view and let the id grow with the azimuth (towards the object's left).
    """
    return int(math.floor(((azimuth_deg + 22.5) % 360.0) / 45.0)) % 8


def pose_name(azimuth_deg: float) -> str:
    """SPair/PASCAL ``pose`` word for an azimuth: Frontal, Left, Rear or Right."""
    a = azimuth_deg % 360.0
    if a < 45 or a >= 315:
        return "Frontal"
    if a < 135:
        return "Left"
    if a < 225:
        return "Rear"
    return "Right"


def orbit_camera(center: np.ndarray, azimuth_deg: float, elevation_deg: float,
                 distance: float, K: np.ndarray, width: int, height: int) -> Camera:
    """Camera on an orbit around ``center`` looking at it, Z up.

    Args:
        center: ``(3,)`` look-at point in the object frame.
        azimuth_deg: azimuth (0 = on the +X axis, growing towards +Y).
        elevation_deg: elevation above the XY plane.
        distance: distance from ``center``.
        K: ``(3, 3)`` intrinsics.
        width: image width.
        height: image height.
    """
    a, e = math.radians(azimuth_deg), math.radians(elevation_deg)
    direction = np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
    center = np.asarray(center, dtype=np.float64)
    R, t = look_at(center + distance * direction, center)
    return Camera(K, R, t, width, height)


def _projected_box(vertices: np.ndarray, camera: Camera) -> np.ndarray:
    uv, _ = camera.project(vertices)
    return np.concatenate([uv.min(axis=0), uv.max(axis=0)])


def sample_scene(vertices: np.ndarray, rng: np.random.Generator,
                 settings: SceneSettings | None = None) -> Scene:
    """Draw a camera, viewpoint and light for an object.

    Args:
        vertices: ``(V, 3)`` object vertices in its canonical frame.
        rng: the image's random generator (consumed in a fixed order).
        settings: sampling ranges; defaults to :class:`SceneSettings`.

    Returns:
        A :class:`Scene`.
    """
    settings = settings or SceneSettings()
    settings.validate()
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) == 0:
        raise ValueError(f"vertices must have shape (V, 3), got {vertices.shape}")

    long = int(settings.size)
    short = int(round(long * rng.uniform(*settings.aspect_range)))
    portrait = rng.random() < settings.portrait_prob
    width, height = (short, long) if portrait else (long, short)
    focal = fov_to_focal(rng.uniform(*settings.fov_deg), long)
    K = np.array([[focal, 0.0, (width - 1) / 2], [0.0, focal, (height - 1) / 2],
                  [0.0, 0.0, 1.0]])

    azimuth = float(rng.uniform(0.0, 360.0))
    elevation = float(rng.uniform(*settings.elevation_deg))
    fill = float(rng.uniform(*settings.fill_range))
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    center = (lo + hi) / 2
    radius = float(np.linalg.norm(vertices - center, axis=1).max())
    distance = 2.0 * radius * focal / (fill * min(width, height))
    for _ in range(6):  # apparent size ~ 1/distance: a few fixed-point steps
        distance = max(distance, 1.2 * radius)
        cam = orbit_camera(center, azimuth, elevation, distance, K, width, height)
        box = _projected_box(vertices, cam)
        extent = max((box[2] - box[0]) / width, (box[3] - box[1]) / height)
        distance *= extent / fill
    distance = max(distance, 1.2 * radius)
    cam = orbit_camera(center, azimuth, elevation, distance, K, width, height)
    box = _projected_box(vertices, cam)
    bw, bh = box[2] - box[0], box[3] - box[1]
    mid = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])

    # Shift the box: inside the free margin, or across one border when truncated.
    room = np.maximum(np.array([width - bw, height - bh]) / 2, 0.0)
    target = np.array([(width - 1) / 2, (height - 1) / 2]) + rng.uniform(-0.6, 0.6, 2) * room
    pushed_out = bool(rng.random() < settings.truncation_prob)
    frac = float(rng.uniform(*settings.truncation_range))
    side = int(rng.integers(4))
    if pushed_out:
        axis, sign = side // 2, (-1.0 if side % 2 == 0 else 1.0)
        half = (bw if axis == 0 else bh) / 2
        limit = (width if axis == 0 else height) - 1
        edge = 0.0 if sign < 0 else limit
        target[axis] = edge - sign * (half - frac * 2 * half)
    shift = target - mid
    depth_center = float(cam.to_camera(center[None])[0, 2])
    t = cam.t + np.array([shift[0] * depth_center / focal, shift[1] * depth_center / focal, 0.0])
    cam = cam.with_pose(cam.R, t)

    light = np.array([rng.uniform(-1.0, 1.0), rng.uniform(-1.0, 0.3), -rng.uniform(0.4, 1.0)])
    light /= np.linalg.norm(light)
    ambient = float(rng.uniform(*settings.ambient_range))
    return Scene(camera=cam, azimuth_deg=azimuth, elevation_deg=elevation, light_dir=light,
                 ambient=ambient, pushed_out=pushed_out)


def sample_occluder(height: int, width: int, bndbox: np.ndarray, rng: np.random.Generator,
                    cover: tuple[float, float] = (0.1, 0.3)) -> np.ndarray:
    """A flat occluder overlapping the object's box: an ellipse or a rotated bar.

    Args:
        height: H.
        width: W.
        bndbox: ``[x1, y1, x2, y2]`` of the object.
        rng: the image's generator.
        cover: occluder area as a fraction of the box area, drawn uniformly.

    Returns:
        ``(H, W)`` bool occluder mask.
    """
    import cv2

    x1, y1, x2, y2 = (float(v) for v in bndbox)
    bw, bh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    area = float(rng.uniform(*cover)) * bw * bh
    center = (x1 + rng.uniform(0.1, 0.9) * bw, y1 + rng.uniform(0.1, 0.9) * bh)
    angle = float(rng.uniform(0.0, 180.0))
    elongation = float(rng.uniform(1.0, 4.0))
    a = math.sqrt(area * elongation / math.pi)  # ellipse semi-axes a, b with pi a b = area
    b = area / (math.pi * a)
    out = np.zeros((height, width), dtype=np.uint8)
    if rng.random() < 0.5:
        cv2.ellipse(out, (int(round(center[0])), int(round(center[1]))),
                    (max(1, int(round(a))), max(1, int(round(b)))), angle, 0, 360, 1, -1)
    else:
        half = (math.sqrt(area * elongation) / 2, math.sqrt(area / elongation) / 2)
        box = cv2.boxPoints(((center[0], center[1]), (2 * half[0], 2 * half[1]), angle))
        cv2.fillPoly(out, [np.round(box).astype(np.int32)], 1)
    return out.astype(bool)

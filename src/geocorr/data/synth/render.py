"""Render a procedural instance: shaded textured image, mask, dense part/template maps.

One z-buffer pass with :func:`geocorr.geometry.raster.rasterize` ("rasterize
once, gather many") gives the visible face and barycentrics per pixel; from
them we gather template coordinates (texture + dense ground truth; per face
corner when the shape has ``face_template``, so seams do not mix parts) and
smooth vertex normals (Lambertian shading), and take the part of the visible
face. Shading: ``albedo * (ambient + (1 - ambient) * max(0, n . l))``, with
the normal flipped towards the camera. Then the object is composited over a
random background and fine sensor noise is added.

Keypoint visibility (:func:`keypoint_visibility`): a keypoint is visible when
its projection lies inside the image and the z-buffer depth at its nearest
pixel is not in front of the keypoint by more than a tolerance (a fraction of
the object's size), i.e. no other surface hides it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geocorr.data.synth.instance import SynthShape
from geocorr.data.synth.textures import MaterialLook, shade_material
from geocorr.geometry.camera import Camera
from geocorr.geometry.raster import interpolate, rasterize

__all__ = ["Rendering", "render_shape", "surface_template", "occlude", "vertex_normals",
           "keypoint_visibility", "VISIBILITY_TOLERANCE"]

VISIBILITY_TOLERANCE = 0.02
"""Depth tolerance for keypoint visibility, as a fraction of the bbox diagonal."""


@dataclass(frozen=True, eq=False)
class Rendering:
    """One rendered view.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        mask: ``(H, W)`` bool object mask.
        part: ``(H, W)`` int16 part id of the visible surface, ``-1`` on background.
        template: ``(H, W, 3)`` float32 template coordinates, ``0`` on background.
        depth: ``(H, W)`` float32 camera-frame depth, ``inf`` on background,
            ``0`` under a flat occluder (see :func:`occlude`).
    """

    image: np.ndarray
    mask: np.ndarray
    part: np.ndarray
    template: np.ndarray
    depth: np.ndarray


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals, ``(V, 3)`` float64.

    Args:
        vertices: ``(V, 3)``.
        faces: ``(F, 3)`` counter-clockwise seen from outside.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    out = np.zeros_like(v)
    for k in range(3):
        np.add.at(out, f[:, k], fn)
    n = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(n, 1e-12)


def surface_template(fragments, shape: SynthShape) -> np.ndarray:
    """Template coordinates of the visible surface, ``(H, W, 3)`` float32 (0 on background).

    Uses ``shape.face_template`` (each corner in its face's own part) when the
    shape has it: interpolating ``vertex_template`` is wrong on faces touching
    a seam vertex that carries another part's coordinates.
    """
    if shape.face_template is None:
        return interpolate(fragments, shape.faces, shape.vertex_template)
    fi = fragments.face_index
    out = np.zeros(fi.shape + (3,), dtype=np.float32)
    mask = fi >= 0
    corners = np.asarray(shape.face_template, dtype=np.float64)[fi[mask]]  # (N, 3, 3)
    bary = fragments.bary[mask].astype(np.float64)  # (N, 3)
    out[mask] = np.einsum("nk,nkd->nd", bary, corners)
    return out


def render_shape(shape: SynthShape, camera: Camera, looks: dict[str, MaterialLook],
                 light_dir: np.ndarray, ambient: float, background: np.ndarray,
                 rng: np.random.Generator, noise: float = 2.0 / 255) -> Rendering:
    """Render ``shape`` seen by ``camera`` over ``background``.

    Args:
        shape: the instance (canonical frame).
        camera: ground-truth camera.
        looks: material name -> look, covering every ``shape.part_material``.
        light_dir: ``(3,)`` unit direction to the light, camera frame.
        ambient: ambient term in ``[0, 1]``.
        background: ``(H, W, 3)`` float RGB in ``[0, 1]``.
        rng: the image's generator (sensor noise).
        noise: standard deviation of the additive sensor noise (``[0, 1]`` units).

    Returns:
        A :class:`Rendering`.
    """
    H, W = camera.size
    if background.shape != (H, W, 3):
        raise ValueError(f"background must have shape {(H, W, 3)}, got {background.shape}")
    missing = sorted(set(shape.part_material) - set(looks))
    if missing:
        raise ValueError(f"looks: no look for material(s) {missing}")
    frags = rasterize(shape.vertices, shape.faces, camera)
    mask = frags.mask
    fi = frags.face_index
    part = np.full((H, W), -1, dtype=np.int16)
    part[mask] = shape.face_part[fi[mask]]
    template = surface_template(frags, shape)
    normals = interpolate(frags, shape.faces, vertex_normals(shape.vertices, shape.faces))

    image = background.astype(np.float32).copy()
    if mask.any():
        n = normals[mask].astype(np.float64) @ camera.R.T
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
        # Flip normals facing away from the viewer (pixel ray points into +z).
        rays = np.concatenate([camera.pixel_grid()[mask], np.ones((int(mask.sum()), 1))], 1)
        rays = rays @ np.linalg.inv(camera.K).T
        n[np.sum(n * rays, axis=1) > 0] *= -1
        light = np.asarray(light_dir, dtype=np.float64)
        lambert = np.clip(n @ light, 0.0, None)
        shading = (ambient + (1.0 - ambient) * lambert).astype(np.float32)
        albedo = np.zeros((int(mask.sum()), 3), dtype=np.float32)
        mats = np.asarray(shape.part_material, dtype=object)[part[mask]]
        tmpl = template[mask]
        for name, look in looks.items():
            sel = mats == name
            if sel.any():
                albedo[sel] = shade_material(look, tmpl[sel])
        image[mask] = albedo * shading[:, None]
    image = image + rng.normal(0.0, noise, image.shape).astype(np.float32)
    image = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return Rendering(image=image, mask=mask, part=part, template=template, depth=frags.depth)


def occlude(rendering: Rendering, occluder: np.ndarray, texture: np.ndarray) -> Rendering:
    """Paste a flat occluder in front of everything.

    Occluded pixels leave the mask and the dense maps (part ``-1``, template
    0) and get depth 0, so :func:`keypoint_visibility` hides keypoints under it.

    Args:
        rendering: the unoccluded rendering.
        occluder: ``(H, W)`` bool occluder mask.
        texture: ``(H, W, 3)`` uint8 occluder appearance.
    """
    H, W = rendering.mask.shape
    if occluder.shape != (H, W) or texture.shape != (H, W, 3):
        raise ValueError(f"occluder {occluder.shape} and texture {texture.shape} must be "
                         f"{(H, W)} and {(H, W, 3)}")
    image = rendering.image.copy()
    image[occluder] = texture[occluder]
    part = rendering.part.copy()
    part[occluder] = -1
    template = rendering.template.copy()
    template[occluder] = 0
    depth = rendering.depth.copy()
    depth[occluder] = 0
    return Rendering(image=image, mask=rendering.mask & ~occluder, part=part, template=template,
                     depth=depth)


def keypoint_visibility(points: np.ndarray, camera: Camera, depth: np.ndarray,
                        tolerance: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project keypoints and test them against the z-buffer.

    Args:
        points: ``(K, 3)`` keypoints on the surface, object frame.
        camera: the camera that produced ``depth``.
        depth: ``(H, W)`` z-buffer (``inf`` on background).
        tolerance: allowed depth by which the z-buffer may lie in front of the
            keypoint (scene units).

    Returns:
        ``(uv, z, visible)``: ``(K, 2)`` pixel coordinates, ``(K,)`` camera
        depth, ``(K,)`` bool visibility.
    """
    H, W = camera.size
    if depth.shape != (H, W):
        raise ValueError(f"depth must have shape {(H, W)}, got {depth.shape}")
    uv, z = camera.project(points)
    inside = (np.isfinite(uv).all(axis=1) & (z > 0) & (uv[:, 0] >= -0.5) & (uv[:, 0] < W - 0.5)
              & (uv[:, 1] >= -0.5) & (uv[:, 1] < H - 0.5))
    visible = np.zeros(len(uv), dtype=bool)
    idx = np.flatnonzero(inside)
    if idx.size:
        cols = np.clip(np.rint(uv[idx, 0]).astype(np.int64), 0, W - 1)
        rows = np.clip(np.rint(uv[idx, 1]).astype(np.int64), 0, H - 1)
        visible[idx] = depth[rows, cols] >= z[idx] - tolerance
    return uv, z, visible

"""SAM3D error simulator: what a single-image 3D reconstructor would hand us.

From a ground-truth instance (canonical frame ``X``: X front, Y left, Z up)
and its ground-truth camera ``(K, R, t)`` we produce:

1. **A re-meshed surface** ``X_r``: occupancy of the watertight mesh on a
   voxel grid at a random resolution (inside points plus surface-sample
   voxels, so thin parts thicken rather than vanish), marching cubes,
   fragments below 1% of the vertices dropped, Taubin smoothing, then
   Gaussian noise along the normals. Vertices differ from the ground truth;
   thin parts get thicker or vanish, as in real reconstructions. The grid
   resolution adapts so the result keeps 2k-8k vertices.
2. **Its own canonical frame**: ``Y = Q (X_r - c) / n`` with ``c`` the centre
   of ``X_r``'s bounding box, ``n`` its bounding-box diagonal (so ``Y`` has a
   unit diagonal) and ``Q = Rz(90 deg * k_err)`` a yaw mis-canonicalisation:
   ``k_err != 0`` with probability ``flip_prob`` (``flip_prob_elongated`` for
   elongated categories), then 1, 2, 3 with weights 1/4, 1/2, 1/4.
3. **A predicted camera**: the exact camera for ``Y`` is
   ``C* = (K, R Q^T, (R c + t) / n)`` (the true view rotation composed with
   the yaw error: rendering ``Y`` with ``C*`` reproduces the image). The
   predicted camera is ``C_pred = C*.with_object_transform(sigma, tau)``: it
   sees the mesh as if it were ``sigma * Y + tau``, with a log-normal scale
   error ``log sigma ~ N(0, scale_sigma)`` and a translation error
   ``tau ~ N(0, (translation / sqrt 3)^2 I)`` (norm ~ ``translation`` times the
   unit object size), so its render is off the mask.

**The true corrections** (stored in GroundTruth, scored against stage 1).
Stage 1 (a) refines the mesh with the camera fixed, ``X' = s Y + T``, then (b)
rotates it about its own Z by ``90 deg * k`` and updates the camera so the
image is unchanged: ``X'' = Rz(90 k) X'``, ``R'' = R_pred Rz(90 k)^T``,
``t'' = t_pred`` (see :func:`apply_stage1_corrections`). The ideal answers are

* ``true_scale = 1 / sigma`` and ``true_translation = -tau / sigma``: then
  ``C_pred`` renders ``X'`` exactly as ``C*`` renders ``Y`` (a perfect overlay).
  Under perspective, scaling about the camera centre leaves the image
  unchanged, so a silhouette alone fixes ``(s, T)`` only up to that family;
  score refinement by reprojection (or compare ``s`` after fixing the depth),
  not by ``|s - true_scale|`` alone.
* ``true_k = -k_err mod 4``: then the mesh axes are the ground-truth
  canonical axes and ``R'' = R`` (the ground-truth rotation).

With the camera fixed, the corrected mesh lives in the predicted camera's
frame, a similarity of the ground truth's: ``X_gt ~ a X'' + b`` with
``a = n sigma = gt_scale`` and ``b = n Q^T tau + c = gt_offset`` (both
stored). Equivalently, in camera coordinates the corrected mesh is the
ground-truth mesh scaled by ``1 / a`` about the camera centre (the image is
the same).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from geocorr.data.synth.errors import ReconstructionErrors
from geocorr.data.synth.shape_errors import apply_shape_errors, draw_shape_errors
from geocorr.geometry.camera import Camera
from geocorr.geometry.rotation import rotvec_matrix

__all__ = ["SimulatorSettings", "SimulatedReconstruction", "simulate_reconstruction",
           "yaw_rotation", "remesh", "apply_stage1_corrections", "rotation_error_deg",
           "draw_yaw_flip", "count_components", "draw_camera_errors"]


@dataclass
class SimulatorSettings:
    """Error model of the simulated reconstructor.

    Attributes:
        flip_prob: probability of a yaw mis-canonicalisation (``k_err != 0``)
            for non-elongated categories (0.3: the paper sees it regularly).
        flip_prob_elongated: same for elongated categories (0.6: the paper
            sees it mostly for elongated/symmetric shapes). With both >= 0.3,
            >= 30% of images are flipped overall.
        scale_sigma: standard deviation of ``log sigma`` (0.3: SAM3D's scale is
            off by tens of percent).
        scale_clip: ``sigma`` is clipped to this range so the camera stays
            outside the mis-scaled object.
        translation: expected norm of ``tau`` in units of the object's
            bounding-box diagonal (0.15).
        resolution_range: voxel-grid resolution (cells along the longest side)
            drawn uniformly; adapted to keep ``vertex_range``.
        vertex_range: wanted vertex count of the re-meshed surface (2k-8k).
        blur_voxels: Gaussian blur of the occupancy grid, in voxels (0: thin
            parts survive; Taubin smoothing removes the voxel staircase).
        smooth_iterations: Taubin smoothing iterations after marching cubes
            (8: removes the staircase, keeps the shape).
        surface_noise: standard deviation of the normal noise as a fraction
            of the bounding-box diagonal.
        errors: the error terms beyond scale/translation/yaw flip
            (:class:`geocorr.data.synth.errors.ReconstructionErrors`: rotation,
            tilt, per-category flip rates, intrinsics, shape); ``None`` = the
            oracle simulator (exact rotation and intrinsics, true shape up to
            remeshing), whose output is byte-identical to the simulator before
            these terms existed. With ``errors``, the flip rates come from
            ``errors.flip_prob`` and ``flip_prob``/``flip_prob_elongated`` are unused.
    """

    flip_prob: float = 0.3
    flip_prob_elongated: float = 0.6
    scale_sigma: float = 0.3
    scale_clip: tuple[float, float] = (0.5, 2.0)
    translation: float = 0.15
    resolution_range: tuple[int, int] = (36, 60)
    vertex_range: tuple[int, int] = (2000, 8000)
    blur_voxels: float = 0.0
    smooth_iterations: int = 8
    surface_noise: float = 0.003
    errors: ReconstructionErrors | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` naming the bad field."""
        for name in ("flip_prob", "flip_prob_elongated"):
            p = getattr(self, name)
            if not 0 <= p <= 1:
                raise ValueError(f"SimulatorSettings.{name} must be in [0, 1], got {p}")
        for name in ("scale_sigma", "translation", "surface_noise", "blur_voxels"):
            if getattr(self, name) < 0:
                raise ValueError(f"SimulatorSettings.{name} must be >= 0, "
                                 f"got {getattr(self, name)}")
        if not 0 < self.scale_clip[0] <= 1 <= self.scale_clip[1]:
            raise ValueError(f"SimulatorSettings.scale_clip must bracket 1, got {self.scale_clip}")
        if not 8 <= self.resolution_range[0] <= self.resolution_range[1]:
            raise ValueError(f"SimulatorSettings.resolution_range must be >= 8 and ordered, "
                             f"got {self.resolution_range}")
        if not 0 < self.vertex_range[0] < self.vertex_range[1]:
            raise ValueError(f"SimulatorSettings.vertex_range must be ordered and positive, "
                             f"got {self.vertex_range}")


@dataclass(frozen=True, eq=False)
class SimulatedReconstruction:
    """A simulated SAM3D output and the true corrections that undo its errors.

    Attributes:
        vertices: ``(V, 3)`` float64 mesh in its own canonical frame (unit bbox diagonal).
        faces: ``(F, 3)`` int64 triangles, counter-clockwise from outside.
        camera: predicted camera for ``vertices`` (scale/translation errors).
        yaw_error_k: ``k_err``, the applied mis-canonicalisation ``Rz(90 k_err)``.
        true_k: yaw correction ``(-k_err) mod 4`` (see module docstring).
        true_scale: ideal refinement scale ``1 / sigma``.
        true_translation: ``(3,)`` ideal refinement translation ``-tau / sigma``.
        center: ``(3,)`` ``c``: the ground-truth-frame point at the mesh origin.
        normaliser: ``n``: ground-truth units per mesh unit.
        gt_scale: ``a``: after the true corrections, ``X_gt ~ a X'' + b``.
        gt_offset: ``(3,)`` ``b`` of that similarity.
        gt_rotation: ``(3, 3)`` ``T^T``, the inverse of the mesh frame's tilt:
            ``X_gt ~ a T^T X'' + b`` (identity without errors).
        errors: JSON-ready true values of every error term (see
            :func:`simulate_reconstruction`); ``{}`` for the oracle.
    """

    vertices: np.ndarray
    faces: np.ndarray
    camera: Camera
    yaw_error_k: int
    true_k: int
    true_scale: float
    true_translation: np.ndarray
    center: np.ndarray
    normaliser: float
    gt_scale: float
    gt_offset: np.ndarray
    gt_rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    errors: dict = field(default_factory=dict)

    def corrected_vertices(self) -> np.ndarray:
        """The mesh after the true corrections, mapped to the ground-truth frame, ``(V, 3)``."""
        v, _ = apply_stage1_corrections(self.vertices, self.camera, self.true_scale,
                                        self.true_translation, self.true_k)
        return self.gt_scale * v @ self.gt_rotation.T + self.gt_offset


def yaw_rotation(k: int) -> np.ndarray:
    """``Rz(90 deg * k)``, exact integer entries, ``(3, 3)``."""
    k = int(k) % 4
    c, s = [1, 0, -1, 0][k], [0, 1, 0, -1][k]
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=np.float64)


def apply_stage1_corrections(vertices: np.ndarray, camera: Camera, scale: float,
                             translation: np.ndarray, k: int) -> tuple[np.ndarray, Camera]:
    """Stage 1's documented correction: refine ``X' = s X + T``, then yaw ``Rz(90 k)``.

    Args:
        vertices: ``(V, 3)`` mesh in its own frame.
        camera: its predicted camera (kept fixed during refinement).
        scale: ``s``.
        translation: ``(3,)`` ``T``.
        k: quarter turns about the mesh's own Z.

    Returns:
        ``(vertices'', camera'')`` with ``X'' = Rz(90 k) (s X + T)`` and
        ``camera''`` = ``camera`` with ``R'' = R Rz(90 k)^T`` (same image).
    """
    v = np.asarray(vertices, dtype=np.float64)
    Rk = yaw_rotation(k)
    refined = scale * v + np.asarray(translation, dtype=np.float64).reshape(1, 3)
    out = refined @ Rk.T
    return out, camera.with_pose(camera.R @ Rk.T, camera.t)


def remesh(vertices: np.ndarray, faces: np.ndarray, resolution: int,
           blur_voxels: float = 0.0, seed: int = 0, edit=None,
           margin: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Occupancy-grid re-meshing of a watertight mesh (marching cubes).

    The occupancy is the grid points inside the mesh plus every voxel that a
    dense surface sample falls in, so parts thinner than a voxel thicken to
    about one voxel instead of vanishing (as in learned reconstructions).

    Args:
        vertices: ``(V, 3)``.
        faces: ``(F, 3)``.
        resolution: grid cells along the longest bounding-box side.
        blur_voxels: optional Gaussian blur of the occupancy, in voxels (rounder
            surfaces; above ~0.5 it erodes one-voxel-thin parts).
        seed: seed of the surface sample.
        edit: optional ``edit(occupancy (X, Y, Z) bool, origin (3,), pitch) ->
            occupancy`` applied before blurring (the shape errors of
            :mod:`geocorr.data.synth.shape_errors`).
        margin: empty voxels around the bounding box (room for ``edit``).

    Returns:
        ``(vertices (V', 3), faces (F', 3))`` outward-oriented; fragments with
        fewer than 1% of the vertices are dropped.
    """
    import trimesh
    from scipy import ndimage
    from skimage.measure import marching_cubes

    mesh = trimesh.Trimesh(np.asarray(vertices, np.float64), np.asarray(faces, np.int64),
                           process=False)
    lo, hi = mesh.bounds
    pitch = float((hi - lo).max()) / int(resolution)
    origin = lo - margin * pitch
    n = np.ceil((hi - lo) / pitch).astype(np.int64) + 2 * margin + 1
    axes = [origin[i] + pitch * np.arange(n[i]) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    occ = mesh.contains(grid).reshape(tuple(n))
    count = int(4 * mesh.area / pitch**2) + 1000
    samples, _ = trimesh.sample.sample_surface(mesh, count, seed=int(seed))
    cells = np.clip(np.rint((samples - origin) / pitch).astype(np.int64), 0, n - 1)
    occ[cells[:, 0], cells[:, 1], cells[:, 2]] = True
    if edit is not None:
        occ = edit(occ, origin, pitch)
    occ = occ.astype(np.float32)
    if blur_voxels > 0:
        occ = ndimage.gaussian_filter(occ, blur_voxels)
    if occ.max() <= 0.5:
        raise ValueError(f"remesh: resolution {resolution} is too coarse for this mesh "
                         f"(nothing inside the surface)")
    v, f, _, _ = marching_cubes(occ, 0.5, spacing=(pitch, pitch, pitch))
    v = v.astype(np.float64) + origin
    f = f.astype(np.int64)
    out = trimesh.Trimesh(v, f, process=True)
    parts = out.split(only_watertight=False)
    if len(parts) > 1:
        keep = [p for p in parts if len(p.vertices) >= 0.01 * len(out.vertices)]
        out = trimesh.util.concatenate(keep)
    if out.volume < 0:
        out.invert()
    return np.asarray(out.vertices, np.float64), np.asarray(out.faces, np.int64)


def _taubin(vertices: np.ndarray, faces: np.ndarray, iterations: int) -> np.ndarray:
    import trimesh

    mesh = trimesh.Trimesh(vertices.copy(), faces, process=False)
    if iterations > 0:
        trimesh.smoothing.filter_taubin(mesh, lamb=0.5, nu=0.53, iterations=iterations)
    return np.asarray(mesh.vertices, np.float64)


def simulate_reconstruction(vertices: np.ndarray, faces: np.ndarray, camera: Camera,
                            elongated: bool, rng: np.random.Generator,
                            settings: SimulatorSettings | None = None, *,
                            category: str = "", vertex_part: np.ndarray | None = None,
                            part_names: tuple[str, ...] = (),
                            error_rng: np.random.Generator | None = None
                            ) -> SimulatedReconstruction:
    """Simulate SAM3D's output for one image.

    With ``settings.errors`` (see :class:`geocorr.data.synth.errors.ReconstructionErrors`)
    the mesh's own frame is ``Y = A (X_r - c) / n`` with ``A = Q T`` (``T`` a
    tilt about a horizontal axis, ``Q`` the yaw flip), the shape is edited
    before meshing (:mod:`geocorr.data.synth.shape_errors`), and the
    predicted camera is ``(K', E R A^T, (R c + t) / n)`` seen through the
    scale/translation error, with ``E`` a camera-relative rotation error about
    the object's centre and ``K'`` the intrinsics with a focal and
    principal-point error. Those draws come from ``error_rng``; the draws of
    the oracle terms still come from ``rng``, in the oracle's order.

    Args:
        vertices: ``(V, 3)`` ground-truth mesh, canonical frame, watertight.
        faces: ``(F, 3)`` its triangles.
        camera: ground-truth camera of the image.
        elongated: whether the category is yaw-ambiguous (oracle flip rate).
        rng: the image's generator.
        settings: the error model; defaults to :class:`SimulatorSettings`.
        category: category name (per-category flip rates, articulated parts).
        vertex_part: ``(V,)`` part of each vertex (shape errors need it).
        part_names: ``(P,)`` part names.
        error_rng: generator of the error terms; required with ``settings.errors``.

    Returns:
        A :class:`SimulatedReconstruction`; its ``errors`` holds every drawn
        term's true value.
    """
    from functools import partial

    from geocorr.data.synth.render import vertex_normals

    settings = settings or SimulatorSettings()
    settings.validate()
    err = settings.errors
    shape_err = None
    edit, margin = None, 3
    if err is not None:
        if error_rng is None or vertex_part is None or not part_names:
            raise ValueError("simulate_reconstruction: settings.errors needs error_rng, "
                             "vertex_part and part_names")
        shape_err = draw_shape_errors(category, vertices, vertex_part, part_names,
                                      camera.center, err, error_rng)
        edit = partial(apply_shape_errors, errors=shape_err, vertices=vertices,
                       vertex_part=vertex_part)
    lo_v, hi_v = settings.vertex_range
    res = int(rng.integers(settings.resolution_range[0], settings.resolution_range[1] + 1))
    sample_seed = int(rng.integers(2**31))
    for _ in range(4):
        if edit is not None:
            margin = 3 + int(math.ceil(0.15 * res))
        rv, rf = remesh(vertices, faces, res, settings.blur_voxels, sample_seed, edit, margin)
        if lo_v <= len(rv) <= hi_v:
            break
        target = math.sqrt(lo_v * hi_v)
        res = max(8, int(round(res * math.sqrt(target / max(len(rv), 1)))))
    rv = _taubin(rv, rf, settings.smooth_iterations)
    size = float(np.linalg.norm(rv.max(axis=0) - rv.min(axis=0)))
    noise = rng.normal(0.0, settings.surface_noise * size, len(rv))
    rv = rv + noise[:, None] * vertex_normals(rv, rf)
    lo, hi = rv.min(axis=0), rv.max(axis=0)
    center = (lo + hi) / 2
    normaliser = float(np.linalg.norm(hi - lo))

    if err is None:
        p = settings.flip_prob_elongated if elongated else settings.flip_prob
        weights = [0.25, 0.5, 0.25]
    else:
        p = err.flip_probability(category)
        weights = list(np.asarray(err.flip_weights, np.float64) / sum(err.flip_weights))
    k_err = draw_yaw_flip(rng, p, weights)
    Q = yaw_rotation(k_err)
    T, E, K = np.eye(3), np.eye(3), camera.K
    record: dict = {}
    if err is not None:
        T, E, K, record = draw_camera_errors(err, camera, error_rng)
    A = Q @ T
    Y = (rv - center) @ A.T / normaliser

    exact = Camera(K, E @ camera.R @ A.T, (camera.R @ center + camera.t) / normaliser,
                   camera.width, camera.height)
    lo_s, hi_s = settings.scale_clip
    sigma, tau = 1.0, np.zeros(3)
    for _ in range(10):  # redraw until the mis-placed mesh stays in front of the camera
        s_try = float(np.clip(math.exp(rng.normal(0.0, settings.scale_sigma)), lo_s, hi_s))
        t_try = rng.normal(0.0, settings.translation / math.sqrt(3.0), 3)
        z = exact.to_camera(s_try * Y + t_try)[:, 2]
        if z.min() > 0.05 * float(exact.to_camera(np.zeros((1, 3)))[0, 2]):
            sigma, tau = s_try, t_try
            break
    predicted = exact.with_object_transform(sigma, tau)
    if err is not None:
        record.update({
            "yaw_error_k": int(k_err), "frame_rotation": A.tolist(),
            "center": center.tolist(), "normaliser": normaliser,
            "scale_error": sigma, "translation_error": tau.tolist(),
            "predicted_rotation_error_deg": rotation_error_deg(camera.R, predicted.R),
            "shape": shape_err.record(tuple(part_names)),
            "components": count_components(rf, len(Y)),
        })
    return SimulatedReconstruction(
        vertices=Y, faces=rf, camera=predicted, yaw_error_k=k_err, true_k=(-k_err) % 4,
        true_scale=1.0 / sigma, true_translation=-tau / sigma, center=center,
        normaliser=normaliser, gt_scale=normaliser * sigma,
        gt_offset=normaliser * (T.T @ Q.T @ tau) + center, gt_rotation=T.T, errors=record,
    )


def draw_yaw_flip(rng: np.random.Generator, prob: float, weights) -> int:
    """``k_err``: 0 with probability ``1 - prob``, else 1, 2, 3 with ``weights``.

    Draws a uniform and then a choice whatever the outcome (the oracle's order).
    """
    flipped = rng.random() < prob
    k_choice = int(rng.choice([1, 2, 3], p=weights))
    return k_choice if flipped else 0


def count_components(faces: np.ndarray, num_vertices: int) -> int:
    """Connected components of a triangle mesh (vertices used by no face not counted)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    f = np.asarray(faces, np.int64)
    if len(f) == 0:
        return 0
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    g = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(num_vertices, num_vertices))
    _, labels = connected_components(g, directed=False)
    return len(np.unique(labels[np.unique(f)]))


def rotation_error_deg(R_true: np.ndarray, R: np.ndarray, modulo_yaw: bool = True) -> float:
    """Angle between two object-to-camera rotations, optionally modulo ``Rz(90 deg k)``.

    Args:
        R_true: ``(3, 3)`` the true rotation (canonical frame -> camera).
        R: ``(3, 3)`` a predicted rotation (mesh frame -> camera).
        modulo_yaw: take the smallest angle over ``R Rz(90 deg k)``, k = 0..3
            (a mesh whose axes are the canonical ones up to a quarter-turn yaw
            flip scores 0).

    Returns:
        Degrees in ``[0, 180]``.
    """
    best = 180.0
    for k in range(4 if modulo_yaw else 1):
        rel = np.asarray(R_true, np.float64).T @ np.asarray(R, np.float64) @ yaw_rotation(k)
        c = float(np.clip((np.trace(rel) - 1.0) / 2.0, -1.0, 1.0))
        best = min(best, math.degrees(math.acos(c)))
    return best


def _random_axis(rng: np.random.Generator) -> np.ndarray:
    a = rng.normal(size=3)
    return a / (np.linalg.norm(a) or 1.0)


def draw_camera_errors(err: ReconstructionErrors, camera: Camera, rng: np.random.Generator
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Tilt ``T`` of the mesh frame, camera rotation error ``E``, intrinsics ``K'``."""
    phi = rng.uniform(0, 2 * np.pi)
    tilt = np.array([math.cos(phi), math.sin(phi), 0.0]) * math.radians(
        rng.normal(0.0, err.tilt_sigma_deg))
    if rng.random() < err.rotation_outlier_prob:
        lo, hi = err.rotation_outlier_deg
        rot = _random_axis(rng) * math.radians(rng.uniform(lo, hi))
    else:
        rot = rng.normal(0.0, math.radians(err.rotation_sigma_deg), 3)
    if rng.random() < err.focal_outlier_prob:
        focal = 1.0 + err.focal_outlier * (1.0 if rng.random() < 0.5 else -1.0)
    else:
        focal = math.exp(rng.normal(0.0, err.focal_sigma))
    pp = rng.normal(0.0, err.principal_point_sigma * max(camera.width, camera.height), 2)
    K = np.array(camera.K, np.float64, copy=True)
    K[0, 0] *= focal
    K[1, 1] *= focal
    K[0, 2] += pp[0]
    K[1, 2] += pp[1]
    record = {
        "tilt_rotvec_deg": np.degrees(tilt).tolist(),
        "tilt_deg": float(np.degrees(np.linalg.norm(tilt))),
        "camera_rotation_error_rotvec_deg": np.degrees(rot).tolist(),
        "camera_rotation_error_deg": float(np.degrees(np.linalg.norm(rot))),
        "focal_factor": float(focal),
        "principal_point_offset_px": pp.tolist(),
    }
    return rotvec_matrix(tilt), rotvec_matrix(rot), K, record

"""Render-and-compare refinement of a mesh's scale, translation and a small rotation
(method.md step 3; the rotation goes beyond the paper, which fits scale and translation).

With the predicted camera fixed, find ``X' = s X + T`` so that the soft
silhouette of the mesh matches the object mask: a distance-transform phase
(long-range pull, :func:`~geocorr.reconstruct.losses.dt_loss`), then a soft-IoU
phase to sharpen.

Parametrisation. Under a fixed camera, scaling the whole scene about the camera
centre changes nothing in the image, so ``(s, T)`` has a one-dimensional gauge.
We remove it: the mesh is scaled by ``s = exp(sigma)`` about its bounding-box
centre ``c`` and shifted parallel to the image plane,

    R X' + t = s R (X - c) + (R c + t) + r (a, b, 0)

with ``r`` the bounding-box half-diagonal. The depth of ``c`` stays fixed; the
three free parameters ``(sigma, a, b)`` are well conditioned (one unit of ``a``
moves the mesh by its own radius). The result is reported as the usual
``(s, T)`` with ``X' = s X + T``, ``T = (1 - s) c + R^T r (a, b, 0)``, and as the
camera that renders the *original* mesh exactly as the refined one.

Rotation. A second pass of both soft phases, started from the scale/translation
fit, frees an axis-angle ``w`` (camera frame, about ``c``; optionally a focal
factor ``e^phi``): ``R X' + t = s E(w) R (X - c) + (R c + t) + r (a, b, 0)``.
Silhouettes are ambiguous for some turns (about a symmetry axis, or the
mirror turn of a shape symmetric about a plane through the viewing ray), and
an imperfect mesh can match the mask better at a wrong rotation, so a turn is
only kept if it pays for itself three times over:

* **Regulariser** toward the reconstruction's own rotation:
  ``rotation_weight * L_0 * (|w| / theta_p)^2`` (``L_0`` the phase's first
  loss, so the pull is the same fraction of the data term in both phases);
* **Cap**: ``|w|`` is projected onto ``max_rotation_deg`` after every step
  and the polish never steps beyond it (quarter-turn yaw errors are the yaw
  vote's business, not this pass's);
* **Hard-IoU check**: both solutions are polished on the z-buffer IoU and the
  rotated one is kept only if it beats the scale/translation-only one by
  ``rotation_margin``; a turn the silhouette cannot see gains nothing and is
  dropped (``RefineResult.rotation_status``).

Robustness:

* **Disjoint start** (render far from the mask, even outside the image): a
  coarse initialisation from mask moments (area -> scale, centroid ->
  shift) computed on an unclipped render; ``init="auto"`` keeps it only when
  its hard IoU beats the raw start.
* **Truncation** at the image border: only in-image pixels are rendered, and
  the distance fields replicate the border (see
  :func:`~geocorr.reconstruct.losses.distance_fields`); the moment init uses
  clipped moments when the mask touches the border.
* **Tiny masks**: the working resolution never shrinks the mask's bounding box
  below ``min_mask_px`` pixels.
* **Failures** (final IoU below ``fail_iou``, empty mask, mesh behind the
  camera) are flagged in :attr:`RefineResult.failed` with a reason; the
  returned pose is then the better of start and result, never a NaN.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import torch

from geocorr.geometry.camera import Camera
from geocorr.geometry.rotation import rotvec_matrix
from geocorr.geometry.soft_silhouette import SoftRasterSettings, soft_silhouette
from geocorr.reconstruct.losses import distance_fields, dt_loss, mask_iou, soft_iou_loss

__all__ = ["RefineSettings", "RefineResult", "refine_pose", "render_mask", "cluster_vertices",
           "Pose", "polish_hard_iou", "POLISH_MAX_SWEEPS"]


@dataclass
class RefineSettings:
    """Options of :func:`refine_pose` (defaults chosen by the sweep in
    ``benchmarks/results/reconstruct.md``).

    Attributes:
        max_side: working resolution of the soft phases: the image is
            downscaled so its longest side is at most this many pixels (speed:
            the soft silhouette costs per (pixel, face) pair; the hard-IoU
            polish recovers full accuracy). 64.
        min_mask_px: raise the working resolution (up to full) until the mask's
            bounding box spans at least this many pixels (tiny masks). 24.
        sigma: soft-rasteriser sharpness in working pixels squared. 1.0.
        dilation_px: ``r``, dilation of the mask for ``phi_out`` in working
            pixels (tolerance for coarse mesh borders). 2.0 (mean IoU 0.852 vs
            0.839 at 1.0 and 0.784 at 0 in the sweep).
        coverage_weight: ``lambda``, reward for covering the mask interior. 0.5.
        dt_steps: Adam steps of the distance-transform phase. 30.
        iou_steps: Adam steps of the soft-IoU phase. 15.
        lr_dt: Adam learning rate in the DT phase (units: log-scale and object
            radii). 0.05.
        lr_iou: Adam learning rate in the IoU phase. 0.003: at 0.01 the phase
            followed the soft silhouette's dilation bias and lowered the final
            IoU (sweep); with 0.003 it is neutral-to-positive.
        init: ``"auto"`` (moment initialisation if it beats the raw start),
            ``"moments"`` (always), ``"none"``.
        moment_iters: fixed-point iterations of the moment initialisation. 3.
        fail_iou: final full-resolution IoU below which the result is flagged
            as failed. 0.6: on the benchmark even the simulator's *true* pose
            only reaches 0.62-0.75 IoU on thin categories (aeroplane, table:
            re-meshing thickens wings and legs), so 0.8 flagged correct fits.
        cull_backfaces: passed to the soft rasteriser. Halves the cost but
            drops the back faces' soft band on the rim, which made a truncated
            icosphere stop at IoU 0.91 instead of 0.99; False.
        simplify_cells: the soft-silhouette phases run on a vertex-clustered
            copy of the mesh with this many grid cells along the bounding box's
            longest side (the outline is kept to within one cell; a 16k-face
            reconstruction drops to ~1.5k faces). 0 = use the full mesh. 24.
        engine: soft-rasteriser engine (:class:`SoftRasterSettings.engine`):
            ``"auto"`` (numba on CPU, torch elsewhere), ``"numba"``, ``"torch"``.
            The numba engine costs 3-8x less CPU per soft step on the
            clustered part assemblies of ``benchmarks/reconstruct.py
            --assemblies``.
        polish_side: working resolution of the final polish (see below); 0
            disables it. 256.
        polish_steps: step sizes (log-scale and object radii) of the polish's
            pattern search, coarse to fine. ``(0.02, 0.01, 0.005, 0.0025)``.
            The rotation coordinates use the same sizes in radians (1.1 deg
            down to 0.14 deg).
        rotation: also fit a small rotation ``w`` of the mesh about its centre
            (axis-angle in the camera frame), in a second pass of both soft
            phases started from the scale/translation result. True.
        rotation_prior_deg: ``theta_p`` of the regulariser toward the
            reconstruction's own rotation: the loss gains
            ``rotation_weight * L_0 * (|w| / theta_p)^2``, ``L_0`` the phase's
            loss at its first step (so the pull is the same fraction of the
            data term in the DT and soft-IoU phases). 10.
        rotation_weight: see ``rotation_prior_deg``. 1.0.
        max_rotation_deg: ``|w|`` is projected onto this ball after every
            step (a cap: the reconstruction's rotation error is assumed small;
            yaw quarter-turns are the yaw vote's business). 20.
        rotation_margin: the rotated solution is kept only if its hard IoU at
            the polish resolution beats the scale/translation-only solution's
            by this much; otherwise ``w = 0`` is returned. 0.02.
        rotation_side: working resolution of the rotation pass (as
            ``max_side``; a rotation of a few degrees moves the outline by
            about a pixel at 64). 128.
        rotation_dt_steps: Adam steps of the rotation pass's DT phase. 30.
        rotation_iou_steps: Adam steps of the rotation pass's soft-IoU phase. 15.
        fit_focal: also fit a focal-length factor ``e^phi`` (principal point
            kept) in the rotation pass; it is nearly degenerate with scale
            except through perspective, and it changes the camera, which the
            stage-1 cache keeps as predicted (``refined.ply`` carries only the
            similarity and the rotation). False.

    The polish exists because the soft silhouette of a finely tessellated mesh
    is slightly *dilated* (``1 - prod(1 - D_j)`` accumulates the tails of many
    small faces near the outline), so the soft-IoU optimum is a mesh shrunk by
    about a pixel. A derivative-free pattern search on the *hard* IoU (z-buffer
    rasterizer) removes that bias at negligible cost.
    """

    max_side: int = 64
    min_mask_px: int = 24
    sigma: float = 1.0
    dilation_px: float = 2.0
    coverage_weight: float = 0.5
    dt_steps: int = 30
    iou_steps: int = 15
    lr_dt: float = 0.05
    lr_iou: float = 0.003
    init: Literal["auto", "moments", "none"] = "auto"
    moment_iters: int = 3
    fail_iou: float = 0.6
    cull_backfaces: bool = False
    simplify_cells: int = 24
    engine: Literal["auto", "torch", "numba"] = "auto"
    polish_side: int = 256
    polish_steps: tuple[float, ...] = (0.02, 0.01, 0.005, 0.0025)
    rotation: bool = True
    rotation_prior_deg: float = 10.0
    rotation_weight: float = 1.0
    max_rotation_deg: float = 20.0
    rotation_margin: float = 0.02
    rotation_side: int = 128
    rotation_dt_steps: int = 30
    rotation_iou_steps: int = 15
    fit_focal: bool = False

    def __post_init__(self) -> None:
        if self.init not in ("auto", "moments", "none"):
            raise ValueError(f"RefineSettings.init must be auto|moments|none, got {self.init!r}")
        if self.max_side < 8 or self.rotation_side < 8:
            raise ValueError(f"RefineSettings.max_side and rotation_side must be >= 8, got "
                             f"{self.max_side}, {self.rotation_side}")
        if self.engine not in ("auto", "torch", "numba"):
            raise ValueError(f"RefineSettings.engine must be auto|torch|numba, got {self.engine!r}")
        if min(self.dt_steps, self.iou_steps, self.rotation_dt_steps,
               self.rotation_iou_steps) < 0:
            raise ValueError("RefineSettings.dt_steps, iou_steps, rotation_dt_steps and "
                             "rotation_iou_steps must be >= 0")
        if not self.rotation_prior_deg > 0 or not 0 < self.max_rotation_deg <= 90:
            raise ValueError(f"RefineSettings.rotation_prior_deg must be > 0 and "
                             f"max_rotation_deg in (0, 90], got {self.rotation_prior_deg}, "
                             f"{self.max_rotation_deg}")
        if self.rotation_weight < 0:
            raise ValueError(f"RefineSettings.rotation_weight must be >= 0, got "
                             f"{self.rotation_weight}")


@dataclass(frozen=True, eq=False)
class RefineResult:
    """Outcome of :func:`refine_pose`.

    Attributes:
        scale: ``s`` in ``X' = s Q X + T``.
        translation: ``(3,)`` ``T`` in ``X' = s Q X + T`` (object frame).
        camera: camera that renders the *original* vertices exactly as the
            refined mesh under the input camera (with the fitted focal factor).
        iou_before: hard IoU of the input pose at full resolution.
        iou_after: hard IoU of the returned pose at full resolution.
        init: which start the optimisation used: ``"none"`` or ``"moments"``.
        failed: ``True`` when ``iou_after < fail_iou`` or the input was unusable.
        reason: why it failed (empty string otherwise).
        seconds: wall time.
        history: ``(steps,)`` loss per optimisation step.
        rotation: ``(3, 3)`` ``Q`` in ``X' = s Q X + T``: the rotation change,
            object frame (identity when no rotation was kept).
        rotvec_deg: ``(3,)`` the same change as an axis-angle in the *input
            camera's* frame, degrees (``Q = R^T E(w) R``).
        focal_scale: factor applied to the focal lengths (1 unless
            ``fit_focal``).
        rotation_status: ``"off"``, ``"accepted"`` or ``"rejected"`` (the
            rotated fit did not beat the fixed-rotation one by
            ``rotation_margin`` hard IoU).
        iou_fixed: hard IoU of the scale/translation-only solution at the
            polish resolution (NaN when the rotation pass did not run).
        iou_rotated: hard IoU of the rotated solution there (NaN likewise).
    """

    scale: float
    translation: np.ndarray
    camera: Camera
    iou_before: float
    iou_after: float
    init: str
    failed: bool
    reason: str
    seconds: float
    history: np.ndarray = field(repr=False)
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    rotvec_deg: np.ndarray = field(default_factory=lambda: np.zeros(3))
    focal_scale: float = 1.0
    rotation_status: str = "off"
    iou_fixed: float = float("nan")
    iou_rotated: float = float("nan")

    @property
    def rotation_deg(self) -> float:
        """Angle of the rotation change, degrees."""
        return float(np.linalg.norm(self.rotvec_deg))

    def apply(self, vertices: np.ndarray) -> np.ndarray:
        """``(V, 3)`` -> refined ``(V, 3)`` vertices ``s Q X + T``."""
        return (self.scale * np.asarray(vertices, dtype=np.float64) @ self.rotation.T
                + self.translation)

    def in_own_frame(self, vertices: np.ndarray, camera: Camera) -> tuple[np.ndarray, Camera]:
        """The refinement with the rotation kept in the camera, not in the mesh.

        :meth:`apply` turns the mesh inside its own frame (``X' = s Q X + T``),
        which tilts the axes a canonical frame is read from. This returns the
        same image with the mesh only scaled and shifted: ``s X + Q^T T``
        rendered by ``(K', E R, t)`` (``E R = camera.R`` of this result), since
        ``E R (s X + Q^T T) + t = R (s Q X + T) + t``.

        Args:
            vertices: ``(V, 3)`` original vertices.
            camera: the input camera of :func:`refine_pose`.

        Returns:
            ``(vertices (V, 3), camera)``.
        """
        v = self.scale * np.asarray(vertices, dtype=np.float64) + self.rotation.T @ self.translation
        return v, Camera(self.camera.K, self.camera.R, camera.t, camera.width, camera.height)

    def to_dict(self) -> dict:
        return {"scale": self.scale, "translation": self.translation.tolist(),
                "rotation": self.rotation.tolist(), "rotvec_deg": self.rotvec_deg.tolist(),
                "rotation_deg": self.rotation_deg, "focal_scale": self.focal_scale,
                "rotation_status": self.rotation_status,
                "iou_fixed": None if math.isnan(self.iou_fixed) else self.iou_fixed,
                "iou_rotated": None if math.isnan(self.iou_rotated) else self.iou_rotated,
                "iou_before": self.iou_before, "iou_after": self.iou_after, "init": self.init,
                "failed": self.failed, "reason": self.reason, "seconds": self.seconds}


def cluster_vertices(vertices: np.ndarray, faces: np.ndarray, cells: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Vertex-clustering simplification: merge vertices sharing a grid cell.

    Args:
        vertices: ``(V, 3)``.
        faces: ``(F, 3)``.
        cells: grid cells along the bounding box's longest side.

    Returns:
        ``(vertices (V', 3), faces (F', 3))``: cluster means, faces with three
        distinct clusters, duplicates removed.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    lo, hi = v.min(0), v.max(0)
    h = max(float((hi - lo).max()) / max(cells, 1), 1e-12)
    key = np.floor((v - lo) / h).astype(np.int64)
    _, label, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    label = label.reshape(-1)
    sums = np.zeros((len(counts), 3))
    np.add.at(sums, label, v)
    verts = sums / counts[:, None]
    tri = label[f]
    ok = (tri[:, 0] != tri[:, 1]) & (tri[:, 1] != tri[:, 2]) & (tri[:, 0] != tri[:, 2])
    tri = tri[ok]
    _, first = np.unique(np.sort(tri, axis=1), axis=0, return_index=True)
    return verts, tri[np.sort(first)]


class _Adam:
    """Adam on one tensor, the update of ``torch.optim.Adam`` (single-tensor path,
    betas 0.9/0.999, eps 1e-8, no weight decay).

    Why not ``torch.optim.Adam``: its constructor imports ``torch._dynamo`` on
    first use, 1.3 s of CPU (8 s wall at load 14) that every process running
    one refinement (``geocorr refine``) paid on top of the refinement itself.
    """

    def __init__(self, param: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.m = torch.zeros_like(param)
        self.v = torch.zeros_like(param)
        self.t = 0

    @torch.no_grad()
    def step(self) -> None:
        b1, b2 = self.betas
        g = self.param.grad
        self.t += 1
        self.m.lerp_(g, 1 - b1)
        self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        step_size = self.lr / (1 - b1 ** self.t)
        denom = (self.v.sqrt() / math.sqrt(1 - b2 ** self.t)).add_(self.eps)
        self.param.addcdiv_(self.m, denom, value=-step_size)


def render_mask(vertices: np.ndarray, faces: np.ndarray, camera: Camera) -> np.ndarray:
    """Hard silhouette ``(H, W)`` bool of a mesh (z-buffer rasterizer)."""
    from geocorr.geometry.raster import rasterize

    return rasterize(vertices, faces, camera).face_index >= 0


def _rotvec_matrix_torch(w: torch.Tensor) -> torch.Tensor:
    """Differentiable Rodrigues, finite (with the right gradient) at ``w = 0``."""
    theta2 = (w * w).sum()
    theta = torch.sqrt(theta2 + 1e-12)
    a = torch.sin(theta) / theta
    b = (1.0 - torch.cos(theta)) / (theta2 + 1e-12)
    z = torch.zeros((), dtype=w.dtype, device=w.device)
    K = torch.stack([torch.stack([z, -w[2], w[1]]), torch.stack([w[2], z, -w[0]]),
                     torch.stack([-w[1], w[0], z])])
    return torch.eye(3, dtype=w.dtype, device=w.device) + a * K + b * (K @ K)


#: parameter vector of the refinement: ``(sigma, a, b, wx, wy, wz, phi)``.
N_PARAMS = 7
_ST, _ROT, _FOCAL = (0, 1, 2), (3, 4, 5), (6,)

#: :func:`polish_hard_iou` sweeps the coordinates at most this many times per
#: step size. A sweep moves each coordinate by at most one step, so the polish
#: stays a local correction of the soft phases' optimum: at most 6 steps per
#: size, 0.12 + 0.06 + 0.03 + 0.015 in log-scale and object radii with the
#: default ``RefineSettings.polish_steps``. Measured on stage 1 of a
#: 20-image synthetic set (5 categories, ``realistic`` errors, 40 polish
#: calls, 160 step sizes): 10 of the 160 step sizes stopped at the cap; without
#: it they ran up to 16 sweeps, for 4 % more renders and a mean polished IoU
#: of 0.6651 instead of 0.6648, the median stage-1 IoU unchanged (0.761).
POLISH_MAX_SWEEPS = 6

#: :func:`polish_hard_iou` keys its memo of scores by the offset from the start
#: rounded to this many decimals: points reached by different sums of steps
#: (float error ~1e-16) share a key, distinct lattice points (steps >= 1e-4
#: apart) never do.
_LATTICE_DECIMALS = 12


@dataclass(frozen=True, eq=False)
class Pose:
    """A mesh under a fixed camera and the refinement's parametrisation of its pose.

    ``p = (sigma, a, b, wx, wy, wz, phi)`` (a shorter ``p`` means zeros for the
    rest) maps the original vertices ``X`` to::

        R X' + t = s E(w) R (X - c) + (R c + t) + r (a, b, 0),   s = e^sigma,   f' = e^phi f

    ``w`` is an axis-angle rotation *in the camera frame* about the
    bounding-box centre ``c`` (radians), ``phi`` the log of a focal-length
    factor. Build one with :meth:`of`.

    Attributes:
        vertices: ``(V, 3)`` float64 original vertices, object frame.
        center: ``(3,)`` ``c``, the bounding-box centre.
        radius: ``r``, the bounding-box half-diagonal (at least 1e-12).
        R: ``(3, 3)`` rotation of the fixed camera.
        t: ``(3,)`` translation of the fixed camera.
    """

    vertices: np.ndarray
    center: np.ndarray
    radius: float
    R: np.ndarray
    t: np.ndarray

    @classmethod
    def of(cls, vertices: np.ndarray, camera: Camera) -> Pose:
        """The parametrisation of ``(V, 3)`` ``vertices`` under ``camera``.

        Raises:
            ValueError: ``vertices`` is not a non-empty ``(V, 3)`` array.
        """
        v = np.asarray(vertices, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
            raise ValueError(f"vertices must have shape (V, 3) with V > 0, got {v.shape}")
        lo, hi = v.min(0), v.max(0)
        return cls(vertices=v, center=0.5 * (lo + hi),
                   radius=max(0.5 * float(np.linalg.norm(hi - lo)), 1e-12),
                   R=camera.R, t=camera.t)

    @property
    def camera_center(self) -> np.ndarray:
        """``(3,)`` ``R c + t``: the centre in the camera frame (its depth never changes)."""
        return self.R @ self.center + self.t

    @staticmethod
    def full(p: np.ndarray) -> np.ndarray:
        """``(P,)`` parameters -> the ``(N_PARAMS,)`` vector, zeros for the missing ones."""
        q = np.zeros(N_PARAMS)
        q[:len(p)] = p
        return q

    def object_rotation(self, p: np.ndarray) -> np.ndarray:
        """``(3, 3)`` ``R^T E(w) R``: the rotation of the object about ``c``, object frame."""
        w = self.full(p)[3:6]
        return self.R.T @ rotvec_matrix(w) @ self.R if w.any() else np.eye(3)

    def params_to_st(self, p: np.ndarray) -> tuple[float, np.ndarray]:
        """``(s, T)`` of ``X' = s Q X + T`` with ``Q`` :meth:`object_rotation`."""
        q = self.full(p)
        s = math.exp(float(q[0]))
        shift = self.radius * np.array([q[1], q[2], 0.0])
        return s, self.center - s * self.object_rotation(q) @ self.center + self.R.T @ shift

    def object_vertices(self, p: np.ndarray) -> np.ndarray:
        """``(V, 3)`` vertices ``X'`` at parameters ``p``, object frame."""
        s, T = self.params_to_st(p)
        return s * self.vertices @ self.object_rotation(p).T + T

    @staticmethod
    def camera(p: np.ndarray, camera: Camera) -> Camera:
        """``camera`` with its focal lengths times ``e^phi`` (principal point kept)."""
        phi = float(Pose.full(p)[6])
        if phi == 0.0:
            return camera
        K = np.array(camera.K, dtype=np.float64, copy=True)
        K[:2, :2] *= math.exp(phi)
        return Camera(K, camera.R, camera.t, camera.width, camera.height)


def _working_camera(camera: Camera, mask: np.ndarray, settings: RefineSettings
                    ) -> tuple[Camera, np.ndarray]:
    """Downscaled camera and mask (area-averaged, thresholded at 0.5)."""
    import cv2

    H, W = mask.shape
    factor = min(1.0, settings.max_side / max(H, W))
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    extent = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    factor = min(1.0, max(factor, settings.min_mask_px / extent))
    w, h = max(8, round(W * factor)), max(8, round(H * factor))
    if (w, h) == (W, H):
        return camera, mask
    cam = camera.scaled(w / W, h / H, width=w, height=h)
    m = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) >= 0.5
    if not m.any():
        m = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    return cam, m


def _moments(m: np.ndarray) -> tuple[float, np.ndarray]:
    ys, xs = np.nonzero(m)
    return float(len(xs)), np.array([xs.mean(), ys.mean()]) if len(xs) else np.zeros(2)


def _unclipped_render(vertices: np.ndarray, faces: np.ndarray, camera: Camera
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Hard silhouette on a canvas containing the whole projection (capped at 7x the image).

    Returns:
        ``(mask (h, w) bool, offset (2,))``: canvas pixel ``(x, y)`` is image
        pixel ``(x, y) + offset``.
    """
    uv, z = camera.project(vertices)
    ok = np.isfinite(uv).all(1) & (z > 0)
    H, W = camera.height, camera.width
    if not ok.any():
        return np.zeros((H, W), bool), np.zeros(2)
    lo = np.floor(np.minimum(uv[ok].min(0), [0, 0])).astype(int) - 2
    hi = np.ceil(np.maximum(uv[ok].max(0), [W - 1, H - 1])).astype(int) + 2
    lo = np.maximum(lo, [-3 * W, -3 * H])
    hi = np.minimum(hi, [4 * W, 4 * H])
    cw, ch = int(hi[0] - lo[0] + 1), int(hi[1] - lo[1] + 1)
    big = camera.padded(int(-lo[0]), int(-lo[1]), cw, ch)
    return render_mask(vertices, faces, big), lo.astype(np.float64)


def _moment_init(pose: Pose, faces: np.ndarray, camera: Camera, mask: np.ndarray,
                 p0: np.ndarray, iters: int) -> np.ndarray:
    """Match the render's area and centroid to the mask's (unclipped unless truncated)."""
    touches = bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
    area_m, cen_m = _moments(mask)
    p = p0.copy()
    f = 0.5 * (camera.fx + camera.fy)
    for _ in range(iters):
        verts = pose.object_vertices(p)
        rend, offset = render_mask(verts, faces, camera), np.zeros(2)
        if not touches or not rend.any():  # clipped moments only for truncated objects
            rend, offset = _unclipped_render(verts, faces, camera)
        area_r, cen_r = _moments(rend)
        if area_r == 0:
            break
        cen_r = cen_r + offset
        p[0] += 0.5 * math.log(area_m / area_r)
        # pixel offset at the centre's depth -> camera-frame shift, in object radii
        p[1] += (cen_m[0] - cen_r[0]) * pose.camera_center[2] / (f * pose.radius)
        p[2] += (cen_m[1] - cen_r[1]) * pose.camera_center[2] / (f * pose.radius)
    return p


def refine_pose(vertices: np.ndarray, faces: np.ndarray, camera: Camera, mask: np.ndarray,
                settings: RefineSettings | None = None, device: str | torch.device = "cpu"
                ) -> RefineResult:
    """Fit scale and translation of a mesh to an object mask under a fixed camera.

    Args:
        vertices: ``(V, 3)`` mesh vertices, object frame.
        faces: ``(F, 3)`` triangle indices.
        camera: predicted camera (``camera.size`` must equal ``mask.shape``).
        mask: ``(H, W)`` bool object mask.
        settings: :class:`RefineSettings` (defaults if ``None``).
        device: torch device for the optimisation.

    Returns:
        :class:`RefineResult` (check ``failed``).

    Raises:
        ValueError: shapes disagree or the mesh is empty.
    """

    settings = settings or RefineSettings()
    t0 = time.perf_counter()
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
        raise ValueError(f"vertices must have shape (V, 3) with V > 0, got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise ValueError(f"faces must have shape (F, 3) with F > 0, got {f.shape}")
    m = np.asarray(mask).astype(bool)
    if m.shape != camera.size:
        raise ValueError(f"mask is {m.shape} but the camera image is {camera.size} (H, W)")

    iou_before = mask_iou(render_mask(v, f, camera), m)
    pose = Pose.of(v, camera)
    rot_info = {"rotation_status": "off", "iou_fixed": float("nan"),
                "iou_rotated": float("nan")}

    def result(p, init, failed, reason, hist):
        q = pose.full(p)
        s, T = pose.params_to_st(q)
        Q = pose.object_rotation(q)
        cam0 = pose.camera(q, camera)
        # R (s Q X + T) + t = s E R X + (R T + t): the camera (E R, (R T + t) / s)
        cam = Camera(cam0.K, rotvec_matrix(q[3:6]) @ camera.R, (camera.R @ T + camera.t) / s,
                     camera.width, camera.height)
        iou = mask_iou(render_mask(v, f, cam), m) if m.any() else 0.0
        info = dict(rot_info)
        if iou < iou_before:  # never return something worse than the start
            s, T, cam, iou, init = 1.0, np.zeros(3), camera, iou_before, "none"
            q, Q = np.zeros(N_PARAMS), np.eye(3)
            if info["rotation_status"] == "accepted":
                info["rotation_status"] = "rejected"
        failed = failed or iou < settings.fail_iou
        if failed and not reason:
            reason = f"final IoU {iou:.3f} < fail_iou {settings.fail_iou}"
        return RefineResult(scale=s, translation=T, camera=cam, iou_before=iou_before,
                            iou_after=iou, init=init, failed=failed, reason=reason,
                            seconds=time.perf_counter() - t0, history=np.asarray(hist),
                            rotation=Q, rotvec_deg=np.degrees(q[3:6]),
                            focal_scale=math.exp(float(q[6])), **info)

    p = np.zeros(N_PARAMS)
    if not m.any():
        return result(p, "none", True, "empty mask", [])
    if pose.camera_center[2] <= 0:
        return result(p, "none", True, "mesh centre is behind the camera", [])

    cam_w, m_w = _working_camera(camera, m, settings)
    init = "none"
    if settings.init != "none":
        p_m = _moment_init(pose, f, cam_w, m_w, p, settings.moment_iters)
        if settings.init == "moments":
            p, init = p_m, "moments"
        else:
            iou0 = mask_iou(render_mask(pose.object_vertices(p), f, cam_w), m_w)
            iou1 = mask_iou(render_mask(pose.object_vertices(p_m), f, cam_w), m_w)
            if iou1 > iou0:
                p, init = p_m, "moments"

    if settings.simplify_cells > 0:
        v_s, f_s = cluster_vertices(v, f, settings.simplify_cells)
    else:
        v_s, f_s = v, f
    soft = _SoftFit(pose, v_s, f_s, cam_w, m_w, settings, device)
    soft_rot = soft
    if settings.rotation_side != settings.max_side:
        cam_r, m_r = _working_camera(camera, m, replace(settings, max_side=settings.rotation_side))
        soft_rot = _SoftFit(pose, v_s, f_s, cam_r, m_r, settings, device)
    hist: list[float] = []
    best_p = soft.run(p, _ST, settings.dt_steps, settings.iou_steps, hist)
    if best_p is None:
        return result(np.zeros(N_PARAMS), "none", True, "optimisation diverged", hist)
    polish = settings.polish_side > 0 and bool(settings.polish_steps)
    if polish:
        cam_p, m_p = _working_camera(camera, m, replace(settings, max_side=settings.polish_side))
    else:
        cam_p, m_p = cam_w, m_w
    if polish:
        best_p = polish_hard_iou(pose, f, cam_p, m_p, best_p, settings.polish_steps, _ST)
    free = _ST + (_ROT if settings.rotation else ()) + (_FOCAL if settings.fit_focal else ())
    if len(free) > len(_ST):
        rot_p = soft_rot.run(best_p, free, settings.rotation_dt_steps, settings.rotation_iou_steps,
                         hist)
        if rot_p is not None:
            if polish:
                rot_p = polish_hard_iou(pose, f, cam_p, m_p, rot_p, settings.polish_steps, free,
                                        max_rotation=math.radians(settings.max_rotation_deg))
            iou_fixed = _hard_iou(pose, f, cam_p, m_p, best_p)
            iou_rot = _hard_iou(pose, f, cam_p, m_p, rot_p)
            ok = iou_rot >= iou_fixed + settings.rotation_margin
            rot_info = {"rotation_status": "accepted" if ok else "rejected",
                        "iou_fixed": iou_fixed, "iou_rotated": iou_rot}
            if ok:
                best_p = rot_p
        else:
            rot_info = {"rotation_status": "rejected", "iou_fixed": float("nan"),
                        "iou_rotated": float("nan")}
    return result(best_p, init, False, "", hist)


def _hard_iou(pose: Pose, faces: np.ndarray, camera: Camera, mask: np.ndarray,
              p: np.ndarray) -> float:
    return mask_iou(render_mask(pose.object_vertices(p), faces, pose.camera(p, camera)), mask)


class _SoftFit:
    """The two soft phases (DT, then soft IoU) on a subset of the parameters."""

    def __init__(self, pose: Pose, v_s: np.ndarray, f_s: np.ndarray, cam_w: Camera,
                 m_w: np.ndarray, settings: RefineSettings, device) -> None:
        dtype = torch.float32
        self.settings, self.device, self.dtype, self.cam_w = settings, device, dtype, cam_w
        fields = distance_fields(m_w, settings.dilation_px)
        self.phi_out, self.phi_in = fields.tensors(device, dtype)
        self.target = torch.as_tensor(m_w, device=device, dtype=dtype)
        self.pose = pose
        self.vc = torch.as_tensor(v_s - pose.center, device=device, dtype=dtype)
        self.c_t = torch.as_tensor(pose.center, device=device, dtype=dtype)
        self.R_t = torch.as_tensor(pose.R, device=device, dtype=dtype)
        self.t_t = torch.as_tensor(pose.t, device=device, dtype=dtype)
        self.f_t = torch.as_tensor(f_s, device=device)
        self.soft = SoftRasterSettings(sigma=settings.sigma,
                                       cull_backfaces=settings.cull_backfaces,
                                       engine=settings.engine)

    def silhouette(self, q: torch.Tensor) -> torch.Tensor:
        """``(7,)`` parameters -> ``(h, w)`` soft silhouette at the working resolution."""
        zero = torch.zeros((), device=self.device, dtype=self.dtype)
        shift = self.pose.radius * torch.stack([q[1], q[2], zero])
        E = _rotvec_matrix_torch(q[3:6])
        # object frame: X' = c + s R^T E R (X - c) + R^T shift  (row vectors)
        rot = self.R_t.T @ E @ self.R_t
        verts = self.c_t + torch.exp(q[0]) * (self.vc @ rot.T) + shift @ self.R_t
        if self.settings.fit_focal:
            # focal factor e^phi == camera-frame x, y scaled by e^phi about the optical axis
            pc = verts @ self.R_t.T + self.t_t
            scale = torch.stack([torch.exp(q[6]), torch.exp(q[6]), torch.ones_like(q[6])])
            verts = (pc * scale - self.t_t) @ self.R_t
        return soft_silhouette(verts, self.f_t, self.cam_w, self.soft)

    def run(self, p: np.ndarray, free: tuple[int, ...], dt_steps: int, iou_steps: int,
            hist: list[float]) -> np.ndarray | None:
        """Adam on the ``free`` coordinates from ``p``; the best soft-IoU point, or
        ``None`` when the optimisation diverged."""
        st = self.settings
        param = torch.tensor(Pose.full(p), device=self.device, dtype=self.dtype,
                             requires_grad=True)
        keep = torch.zeros(N_PARAMS, device=self.device, dtype=self.dtype)
        keep[list(free)] = 1.0
        rotating = 3 in free
        prior = math.radians(st.rotation_prior_deg)
        cap = math.radians(st.max_rotation_deg)
        best_p, best_iou = Pose.full(p), -1.0
        for phase, steps, lr in (("dt", dt_steps, st.lr_dt), ("iou", iou_steps, st.lr_iou)):
            opt = _Adam(param, lr)
            ref = None
            for _ in range(steps):
                param.grad = None
                sil = self.silhouette(param)
                siou = soft_iou_loss(sil, self.target)
                loss = dt_loss(sil, self.phi_out, self.phi_in, st.coverage_weight) \
                    if phase == "dt" else siou
                if ref is None:
                    ref = abs(float(loss.detach())) + 1e-12
                if rotating and st.rotation_weight > 0:
                    loss = loss + st.rotation_weight * ref * (param[3:6] ** 2).sum() / prior ** 2
                hist.append(float(loss.detach()))
                cur = 1.0 - float(siou.detach())
                if phase == "iou" and cur > best_iou:
                    best_iou, best_p = cur, param.detach().cpu().numpy().astype(np.float64)
                loss.backward()
                if not torch.isfinite(param.grad).all():
                    break
                param.grad.mul_(keep)
                opt.step()
                if rotating:
                    with torch.no_grad():
                        n = float(param[3:6].norm())
                        if n > cap:
                            param[3:6] *= cap / n
        final = param.detach().cpu().numpy().astype(np.float64)
        with torch.no_grad():
            last_iou = 1.0 - float(soft_iou_loss(self.silhouette(param), self.target))
        if last_iou >= best_iou or iou_steps == 0:
            best_p = final
        return best_p if np.all(np.isfinite(best_p)) else None


def polish_hard_iou(pose: Pose, faces: np.ndarray, camera: Camera, mask: np.ndarray,
                    p0: np.ndarray, steps: tuple[float, ...],
                    coords: tuple[int, ...] | None = None,
                    max_rotation: float = math.inf,
                    max_sweeps: int = POLISH_MAX_SWEEPS) -> np.ndarray:
    """Coordinate pattern search on the pose parameters maximising the hard IoU.

    Args:
        pose: parametrisation of the mesh.
        faces: ``(F, 3)`` triangle indices.
        camera: camera at the polish resolution.
        mask: ``(H, W)`` bool mask at that resolution.
        p0: ``(P,)`` start parameters (``(sigma, a, b)`` or the full
            ``(sigma, a, b, wx, wy, wz, phi)``).
        steps: step sizes, coarse to fine; at each size, sweep the
            coordinates (+/-) until no move improves.
        coords: which coordinates to move (all of ``p0``'s by default).
        max_rotation: moves that take ``|w|`` beyond this (radians) are not tried.
        max_sweeps: at most this many sweeps per step size
            (:data:`POLISH_MAX_SWEEPS`).

    Returns:
        ``(P,)`` parameters with hard IoU >= that of ``p0``.

    Each point is rendered once: a sweep after an accepted move tries the
    reverse move first or later, i.e. the point it came from (21 % of the
    renders on the part assemblies of ``benchmarks/reconstruct.py``). Such a
    point scores below the current best, so reusing its score changes no
    decision.
    """
    scores: dict[tuple[float, ...], float] = {}

    def score(q: np.ndarray) -> float:
        key = tuple(np.round(q - p0, _LATTICE_DECIMALS).tolist())
        if key not in scores:
            scores[key] = mask_iou(render_mask(pose.object_vertices(q), faces,
                                               pose.camera(q, camera)), mask)
        return scores[key]

    coords = tuple(range(len(p0))) if coords is None else coords
    rotates = len(p0) > max(_ROT)  # p0 carries the rotation w
    p, best = np.asarray(p0, dtype=np.float64).copy(), score(p0)
    for h in steps:
        improved = True
        sweeps = 0
        while improved and sweeps < max_sweeps:
            improved, sweeps = False, sweeps + 1
            for i in coords:
                for sign in (1.0, -1.0):
                    q = p.copy()
                    q[i] += sign * h
                    if rotates and np.linalg.norm(q[list(_ROT)]) > max_rotation:
                        continue
                    sq = score(q)
                    if sq > best:
                        p, best, improved = q, sq, True
                        break
    return p

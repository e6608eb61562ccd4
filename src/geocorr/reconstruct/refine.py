"""Render-and-compare refinement of a mesh's scale and translation (method.md step 3).

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
from geocorr.reconstruct.losses import distance_fields, dt_loss, mask_iou, soft_iou_loss

__all__ = ["RefineSettings", "RefineResult", "refine_pose", "render_mask", "cluster_vertices",
           "polish_hard_iou"]


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

    def __post_init__(self) -> None:
        if self.init not in ("auto", "moments", "none"):
            raise ValueError(f"RefineSettings.init must be auto|moments|none, got {self.init!r}")
        if self.max_side < 8:
            raise ValueError(f"RefineSettings.max_side must be >= 8, got {self.max_side}")
        if self.engine not in ("auto", "torch", "numba"):
            raise ValueError(f"RefineSettings.engine must be auto|torch|numba, got {self.engine!r}")
        if self.dt_steps < 0 or self.iou_steps < 0:
            raise ValueError("RefineSettings.dt_steps and iou_steps must be >= 0")


@dataclass(frozen=True, eq=False)
class RefineResult:
    """Outcome of :func:`refine_pose`.

    Attributes:
        scale: ``s`` in ``X' = s X + T``.
        translation: ``(3,)`` ``T`` in ``X' = s X + T`` (object frame).
        camera: camera that renders the *original* vertices exactly as the
            refined mesh under the input camera (``camera.with_object_transform``).
        iou_before: hard IoU of the input pose at full resolution.
        iou_after: hard IoU of the returned pose at full resolution.
        init: which start the optimisation used: ``"none"`` or ``"moments"``.
        failed: ``True`` when ``iou_after < fail_iou`` or the input was unusable.
        reason: why it failed (empty string otherwise).
        seconds: wall time.
        history: ``(steps,)`` loss per optimisation step.
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

    def apply(self, vertices: np.ndarray) -> np.ndarray:
        """``(V, 3)`` -> refined ``(V, 3)`` vertices ``s X + T``."""
        return self.scale * np.asarray(vertices, dtype=np.float64) + self.translation

    def to_dict(self) -> dict:
        return {"scale": self.scale, "translation": self.translation.tolist(),
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


class _Pose:
    """``(sigma, a, b)`` -> camera-frame vertices, in numpy and torch."""

    def __init__(self, vertices: np.ndarray, camera: Camera) -> None:
        self.v = vertices
        lo, hi = vertices.min(0), vertices.max(0)
        self.c = 0.5 * (lo + hi)
        self.r = max(0.5 * float(np.linalg.norm(hi - lo)), 1e-12)
        self.R, self.t = camera.R, camera.t
        self.cc = self.R @ self.c + self.t  # camera-frame centre, fixed depth

    def params_to_st(self, p: np.ndarray) -> tuple[float, np.ndarray]:
        s = math.exp(float(p[0]))
        shift = self.r * np.array([p[1], p[2], 0.0])
        return s, (1.0 - s) * self.c + self.R.T @ shift

    def object_vertices(self, p: np.ndarray) -> np.ndarray:
        s, T = self.params_to_st(p)
        return s * self.v + T


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


def _moment_init(pose: _Pose, faces: np.ndarray, camera: Camera, mask: np.ndarray,
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
        p[1] += (cen_m[0] - cen_r[0]) * pose.cc[2] / (f * pose.r)
        p[2] += (cen_m[1] - cen_r[1]) * pose.cc[2] / (f * pose.r)
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
    from geocorr.geometry.soft_silhouette import SoftRasterSettings, soft_silhouette

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
    pose = _Pose(v, camera)

    def result(p, init, failed, reason, hist):
        s, T = pose.params_to_st(p)
        cam = camera.with_object_transform(s, T)
        iou = mask_iou(render_mask(v, f, cam), m) if m.any() else 0.0
        if iou < iou_before:  # never return something worse than the start
            s, T, cam, iou, init = 1.0, np.zeros(3), camera, iou_before, "none"
        failed = failed or iou < settings.fail_iou
        if failed and not reason:
            reason = f"final IoU {iou:.3f} < fail_iou {settings.fail_iou}"
        return RefineResult(scale=s, translation=T, camera=cam, iou_before=iou_before,
                            iou_after=iou, init=init, failed=failed, reason=reason,
                            seconds=time.perf_counter() - t0, history=np.asarray(hist))

    p = np.zeros(3)
    if not m.any():
        return result(p, "none", True, "empty mask", [])
    if pose.cc[2] <= 0:
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

    dtype = torch.float32
    fields = distance_fields(m_w, settings.dilation_px)
    phi_out, phi_in = fields.tensors(device, dtype)
    target = torch.as_tensor(m_w, device=device, dtype=dtype)
    if settings.simplify_cells > 0:
        v_s, f_s = cluster_vertices(v, f, settings.simplify_cells)
    else:
        v_s, f_s = v, f
    vc = torch.as_tensor(v_s - pose.c, device=device, dtype=dtype)
    c_t = torch.as_tensor(pose.c, device=device, dtype=dtype)
    Rt = torch.as_tensor(pose.R.T, device=device, dtype=dtype)
    f_t = torch.as_tensor(f_s, device=device)
    soft = SoftRasterSettings(sigma=settings.sigma, cull_backfaces=settings.cull_backfaces,
                              engine=settings.engine)
    param = torch.tensor(p, device=device, dtype=dtype, requires_grad=True)
    zero = torch.zeros((), device=device, dtype=dtype)

    def silhouette(q: torch.Tensor) -> torch.Tensor:
        shift = pose.r * torch.stack([q[1], q[2], zero])
        verts = c_t + torch.exp(q[0]) * vc + shift @ Rt.T
        return soft_silhouette(verts, f_t, cam_w, soft)

    hist: list[float] = []
    best_p, best_iou = p.copy(), -1.0
    for phase, steps, lr in (("dt", settings.dt_steps, settings.lr_dt),
                             ("iou", settings.iou_steps, settings.lr_iou)):
        opt = _Adam(param, lr)
        for _ in range(steps):
            param.grad = None
            sil = silhouette(param)
            siou = soft_iou_loss(sil, target)
            loss = dt_loss(sil, phi_out, phi_in, settings.coverage_weight) if phase == "dt" \
                else siou
            hist.append(float(loss.detach()))
            cur = 1.0 - float(siou.detach())
            if phase == "iou" and cur > best_iou:
                best_iou, best_p = cur, param.detach().cpu().numpy().astype(np.float64)
            loss.backward()
            if not torch.isfinite(param.grad).all():
                break
            opt.step()
    final = param.detach().cpu().numpy().astype(np.float64)
    with torch.no_grad():
        last_iou = 1.0 - float(soft_iou_loss(silhouette(param), target))
    if last_iou >= best_iou or settings.iou_steps == 0:
        best_p = final
    if not np.all(np.isfinite(best_p)):
        return result(np.zeros(3), "none", True, "optimisation diverged", hist)
    if settings.polish_side > 0 and settings.polish_steps:
        cam_p, m_p = _working_camera(camera, m, replace(settings, max_side=settings.polish_side))
        best_p = polish_hard_iou(pose, f, cam_p, m_p, best_p, settings.polish_steps)
    return result(best_p, init, False, "", hist)


def polish_hard_iou(pose: _Pose, faces: np.ndarray, camera: Camera, mask: np.ndarray,
                    p0: np.ndarray, steps: tuple[float, ...]) -> np.ndarray:
    """Coordinate pattern search on ``(sigma, a, b)`` maximising the hard IoU.

    Args:
        pose: parametrisation of the mesh.
        faces: ``(F, 3)`` triangle indices.
        camera: camera at the polish resolution.
        mask: ``(H, W)`` bool mask at that resolution.
        p0: ``(3,)`` start parameters.
        steps: step sizes, coarse to fine; at each size, sweep the three
            coordinates (+/-) until no move improves.

    Returns:
        ``(3,)`` parameters with hard IoU >= that of ``p0``.

    Each point is rendered once: a sweep after an accepted move tries the
    reverse move first or later, i.e. the point it came from (21 % of the
    renders on the part assemblies of ``benchmarks/reconstruct.py``). Such a
    point scores below the current best, so reusing its score changes no
    decision.
    """
    scores: dict[tuple[float, ...], float] = {}

    def score(q: np.ndarray) -> float:
        key = tuple(np.round(q - p0, 12).tolist())  # points on the steps' lattice
        if key not in scores:
            scores[key] = mask_iou(render_mask(pose.object_vertices(q), faces, camera), mask)
        return scores[key]

    p, best = p0.copy(), score(p0)
    for h in steps:
        improved = True
        sweeps = 0
        while improved and sweeps < 6:
            improved, sweeps = False, sweeps + 1
            for i in range(3):
                for sign in (1.0, -1.0):
                    q = p.copy()
                    q[i] += sign * h
                    sq = score(q)
                    if sq > best:
                        p, best, improved = q, sq, True
                        break
    return p

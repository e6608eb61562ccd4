"""Differentiable soft silhouette of a triangle mesh (SoftRas, Liu et al. 2019).

For pixel ``i`` (centre at integer ``(u, v)``, see :mod:`geocorr.geometry.camera`)
and face ``j`` projected to the image::

    D_ij = sigmoid(delta_ij * d(i, j)^2 / sigma)
    S_i  = 1 - prod_j (1 - D_ij)

where ``d`` is the distance (pixels) from the pixel centre to the boundary of
the projected triangle and ``delta = +1`` inside, ``-1`` outside. The product is
taken in log space, ``log(1 - D) = -softplus(delta d^2 / sigma)``, so deep-inside
pixels give ``S = 1`` with no overflow and no NaN gradient.

**Culling.** ``D_ij <= eps`` once ``d^2 >= sigma * ln((1 - eps) / eps)``, so
only (pixel, face) pairs inside each face's pixel bounding box expanded by
``margin = sqrt(sigma * ln((1 - eps) / eps))`` are evaluated; the pairs are
enumerated with vectorised torch ops (per-face box sizes, ``repeat_interleave``)
in chunks that bound memory, so the cost scales with the pixels the mesh
covers, not with ``F * H * W``. Skipped pairs each change ``S`` by at most
``eps * (1 - S)``. Faces with any vertex at camera ``z <= near`` and faces with
zero projected area are skipped (no clipping, as in :mod:`geocorr.geometry.raster`).

**Engines** (``SoftRasterSettings.engine``). ``"torch"`` builds the pairs as
dense tensor blocks (below; any device). ``"numba"``
(:mod:`geocorr.geometry.soft_numba`) loops over each face's box on the CPU and
skips the box pixels outside the face and beyond the margin; it builds no
per-pair tensors. Forward + backward CPU time, one thread: 3-8x less than the
torch engine on the vertex-clustered part assemblies of
``benchmarks/reconstruct.py --assemblies`` (140-680 faces at ~64 px), 2.6x
less on ``make bench``'s 4224-face sphere at 128 px. ``"auto"`` (default)
uses numba for CPU tensors.

Everything is differentiable with respect to the object-frame vertices through
the (fixed) camera; the face set chosen by culling is a discrete decision made
without gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from geocorr.geometry.camera import Camera

__all__ = ["SoftRasterSettings", "soft_silhouette", "soft_silhouette_dense"]


@dataclass
class SoftRasterSettings:
    """Options of :func:`soft_silhouette`.

    Attributes:
        sigma: sharpness in pixels squared; ``D = 0.5`` on the triangle edge,
            ``~0.88`` (inside) / ``~0.12`` (outside) at ``sqrt(2 sigma)`` pixels
            from it. Default ``2.0`` gives a ~3-pixel soft band, suited to a
            128-256 px render (SoftRas's default ``1e-4`` in NDC units is
            ``1.6 px^2`` at 256 px); raise it for smoother, longer-range gradients.
        eps: culling threshold; pairs with ``D_ij <= eps`` are skipped. ``1e-4``
            (the margin is then ``sqrt(sigma * ln(1e4))`` ~ 4.3 px at sigma 2).
        near: camera-z near plane; faces with any vertex at ``z <= near`` are
            skipped whole (same rule as the hard rasterizer).
        cull_backfaces: skip faces whose counter-clockwise normal points away
            from the camera. For a closed, outward-wound mesh the silhouette is
            the same up to the soft band of the back faces on the rim, at about
            half the cost. Default ``False`` (plain SoftRas: all faces).
        chunk_pairs: torch engine: at most this many (pixel, face) pairs are
            built at once (each chunk keeps ~40 floats per pair for backward).
            ``2_000_000``.
        engine: ``"numba"`` (CPU loops over each face's box, no per-pair
            tensors, backward recomputes the pairs; see
            :mod:`geocorr.geometry.soft_numba`), ``"torch"`` (bucketed dense
            blocks, any device) or ``"auto"`` (default: numba for CPU tensors,
            torch otherwise). Both give the same values up to float rounding
            and the ``eps`` pairs the numba engine skips.
    """

    sigma: float = 2.0
    eps: float = 1e-4
    near: float = 1e-4
    cull_backfaces: bool = False
    chunk_pairs: int = 2_000_000
    engine: Literal["auto", "torch", "numba"] = "auto"

    def __post_init__(self) -> None:
        if self.engine not in ("auto", "torch", "numba"):
            raise ValueError(f"SoftRasterSettings.engine must be auto|torch|numba, "
                             f"got {self.engine!r}")
        if not (self.sigma > 0):
            raise ValueError(f"SoftRasterSettings.sigma must be positive, got {self.sigma}")
        if not (0 < self.eps < 0.5):
            raise ValueError(f"SoftRasterSettings.eps must be in (0, 0.5), got {self.eps}")
        if not (self.near > 0):
            raise ValueError(f"SoftRasterSettings.near must be positive, got {self.near}")
        if self.chunk_pairs < 1:
            raise ValueError(f"SoftRasterSettings.chunk_pairs must be >= 1, got "
                             f"{self.chunk_pairs}")

    @property
    def margin(self) -> float:
        """Pixels beyond a face's boundary where ``D_ij`` drops to ``eps``."""
        return math.sqrt(self.sigma * math.log((1 - self.eps) / self.eps))


# ------------------------------------------------------------------- helpers
def _check_inputs(vertices, faces, camera) -> None:
    if not isinstance(vertices, torch.Tensor) or vertices.ndim != 2 or vertices.shape[1] != 3:
        shape = tuple(vertices.shape) if isinstance(vertices, torch.Tensor) else type(vertices)
        raise ValueError(f"vertices must be a torch.Tensor of shape (V, 3), got {shape}")
    if not vertices.is_floating_point():
        raise ValueError(f"vertices must be floating point, got {vertices.dtype}")
    if not isinstance(faces, torch.Tensor) or faces.ndim != 2 or faces.shape[1] != 3:
        shape = tuple(faces.shape) if isinstance(faces, torch.Tensor) else type(faces)
        raise ValueError(f"faces must be a torch.LongTensor of shape (F, 3), got {shape}")
    if faces.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"faces must be an integer tensor, got {faces.dtype}")
    if faces.numel() and (int(faces.min()) < 0 or int(faces.max()) >= vertices.shape[0]):
        raise ValueError(f"faces index vertices outside [0, {vertices.shape[0]})")
    if not isinstance(camera, Camera):
        raise ValueError(f"camera must be a geocorr Camera, got {type(camera).__name__}")


def _project(vertices: torch.Tensor, camera: Camera) -> tuple[torch.Tensor, torch.Tensor]:
    """``(V, 3)`` object frame -> ``(V, 2)`` pixels and ``(V,)`` camera z, differentiable."""
    R = torch.as_tensor(camera.R, dtype=vertices.dtype, device=vertices.device)
    t = torch.as_tensor(camera.t, dtype=vertices.dtype, device=vertices.device)
    pc = vertices @ R.T + t
    z = pc[:, 2]
    zs = torch.where(z.abs() > 1e-12, z, torch.full_like(z, 1e-12))
    K = camera.K
    u = (K[0, 0] * pc[:, 0] + K[0, 1] * pc[:, 1]) / zs + K[0, 2]
    v = K[1, 1] * pc[:, 1] / zs + K[1, 2]
    return torch.stack([u, v], dim=1), pc


class _FaceGeometry:
    """Per-face projected corners and edge data for the kept faces (each ``(F',)``)."""

    def __init__(self, tri: torch.Tensor) -> None:
        # tri: (F', 3, 2) projected corners.
        self.ax, self.ay = tri[:, 0, 0], tri[:, 0, 1]
        self.bx, self.by = tri[:, 1, 0], tri[:, 1, 1]
        self.cx, self.cy = tri[:, 2, 0], tri[:, 2, 1]
        e = tri.roll(-1, dims=1) - tri  # e_k = v_{k+1} - v_k, (F', 3, 2)
        self.ex, self.ey = e[..., 0], e[..., 1]
        self.inv_len2 = 1.0 / (self.ex**2 + self.ey**2).clamp_min(1e-12)
        area2 = self.ex[:, 0] * (self.cy - self.ay) - self.ey[:, 0] * (self.cx - self.ax)
        self.sign = torch.sign(area2.detach())


def _log_one_minus_d(px: torch.Tensor, py: torch.Tensor, geo: _FaceGeometry,
                     fid: torch.Tensor | None, inv_sigma: float) -> torch.Tensor:
    """``log(1 - D)`` for pixels ``(P,)`` against faces ``fid`` (``(P,)`` or all, broadcast).

    With ``fid=None``, ``px``/``py`` are ``(1, P)`` and faces broadcast as ``(F', 1)``.
    """
    def g(x: torch.Tensor) -> torch.Tensor:
        return x[:, None] if fid is None else x[fid]

    vx = (g(geo.ax), g(geo.bx), g(geo.cx))
    vy = (g(geo.ay), g(geo.by), g(geo.cy))
    sign = g(geo.sign)
    d2 = None
    inside = None
    for k in range(3):
        ex = g(geo.ex[:, k])
        ey = g(geo.ey[:, k])
        dx = px - vx[k]
        dy = py - vy[k]
        t = ((dx * ex + dy * ey) * g(geo.inv_len2[:, k])).clamp(0.0, 1.0)
        qx = dx - t * ex
        qy = dy - t * ey
        dk = qx * qx + qy * qy
        d2 = dk if d2 is None else torch.minimum(d2, dk)
        with torch.no_grad():
            ins = (ex * dy - ey * dx) * sign > 0
        inside = ins if inside is None else inside & ins
    delta = torch.where(inside, 1.0, -1.0).to(d2.dtype)
    return -F.softplus(delta * d2 * inv_sigma)


def _kept_faces(uv: torch.Tensor, pc: torch.Tensor, faces: torch.Tensor,
                settings: SoftRasterSettings) -> torch.Tensor:
    with torch.no_grad():
        keep = (pc[:, 2][faces] > settings.near).all(dim=1)
        tri = uv[faces]
        e1 = tri[:, 1] - tri[:, 0]
        e2 = tri[:, 2] - tri[:, 0]
        keep &= (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) != 0
        if settings.cull_backfaces:
            p = pc[faces]
            n = torch.linalg.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0], dim=1)
            keep &= (n * p[:, 0]).sum(dim=1) < 0
    return torch.nonzero(keep).squeeze(1)


# ------------------------------------------------------- culled fast path
# Each kept face gets a pixel box (its bounding box grown by the margin, clipped
# to the image). Faces are grouped into buckets of equal padded box size
# (BH, BW) so a bucket is a dense (Fb, BH * BW) block: per-face quantities
# broadcast against per-offset ones, with no per-pair gathers. Padding pairs
# (offsets beyond a face's own box) are masked to contribute 0.
#
# Per face and edge k (v = v_k, e = v_{k+1} - v_k, L2 = |e|^2), with pixel
# offsets (ox, oy) from the box origin, two affine forms give the distance:
#   t_k = alpha ox + beta oy + gamma      foot parameter along the edge
#   s_k = a ox + b oy + c                 signed distance to the edge line (> 0 inside)
#   d_k^2 = s_k^2 + L2 (t_k - clamp(t_k, 0, 1))^2,   d^2 = min_k d_k^2.
# The backward pass returns gradients for these 7 coefficients per edge
# (sums over pixels, i.e. mat-vecs); autograd maps them to the vertices.
_N_COEF = 7


def _size_class(n: torch.Tensor) -> torch.Tensor:
    """Round box sides up to a few classes (even numbers up to 16, then ~12% steps).

    Finer classes waste fewer padded pairs but make more buckets (each costs a
    fixed ~40 small torch calls); this choice pads ~8% on typical meshes.
    """
    q = torch.clamp(2 ** (torch.log2(n.clamp_min(1).double()).floor() - 3), min=2).long()
    return (n + q - 1) // q * q


def _face_coefficients(tri: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor) -> torch.Tensor:
    """``(F, 3, 7)`` affine coefficients ``[alpha, beta, gamma, a, b, c, L2]`` per edge.

    Args:
        tri: ``(F, 3, 2)`` projected corners (differentiable).
        x0, y0: ``(F,)`` box origins (pixels, no gradient).
    """
    rel = tri - torch.stack([x0, y0], dim=1).to(tri.dtype).unsqueeze(1)
    e = rel.roll(-1, dims=1) - rel
    ex, ey = e[..., 0], e[..., 1]
    rx, ry = rel[..., 0], rel[..., 1]
    l2 = (ex * ex + ey * ey).clamp_min(1e-12)
    area2 = ex[:, 0] * (rel[:, 2, 1] - ry[:, 0]) - ey[:, 0] * (rel[:, 2, 0] - rx[:, 0])
    sgn = torch.sign(area2.detach()).unsqueeze(1)
    inv_l = sgn / l2.sqrt()
    return torch.stack([ex / l2, ey / l2, -(rx * ex + ry * ey) / l2,
                        -ey * inv_l, ex * inv_l, (ey * rx - ex * ry) * inv_l, l2], dim=-1)


class _Bucket:
    """Faces sharing one padded box size; all tensors built without gradient."""

    def __init__(self, idx, BH, BW, x0, y0, bw, bh, W, dtype):
        self.idx = idx
        oy, ox = torch.meshgrid(torch.arange(BH, device=idx.device),
                                torch.arange(BW, device=idx.device), indexing="ij")
        oy, ox = oy.reshape(1, -1), ox.reshape(1, -1)
        self.valid = (ox < bw[:, None]) & (oy < bh[:, None])
        pix = (y0[:, None] + oy) * W + (x0[:, None] + ox)
        self.pix = torch.where(self.valid, pix, 0).reshape(-1)
        self.ox = ox.to(dtype)
        self.oy = oy.to(dtype)


def _buckets(tri: torch.Tensor, W: int, H: int, settings: SoftRasterSettings
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[_Bucket]]:
    """Boxes of the faces that meet the image, grouped into buckets.

    Returns:
        ``(on, x0, y0, buckets)``: indices (into ``tri``) of faces whose box is
        non-empty, their box origins ``(F',)``, and buckets whose ``idx``
        index ``tri[on]``.
    """
    margin = settings.margin
    x0 = torch.ceil(tri[..., 0].amin(1) - margin).clamp_min(0)
    x1 = torch.floor(tri[..., 0].amax(1) + margin).clamp_max(W - 1)
    y0 = torch.ceil(tri[..., 1].amin(1) - margin).clamp_min(0)
    y1 = torch.floor(tri[..., 1].amax(1) + margin).clamp_max(H - 1)
    on = torch.nonzero((x1 >= x0) & (y1 >= y0)).squeeze(1)
    x0, x1, y0, y1 = x0[on].long(), x1[on].long(), y0[on].long(), y1[on].long()
    bw, bh = x1 - x0 + 1, y1 - y0 + 1
    BW, BH = _size_class(bw), _size_class(bh)
    key = BH * (W + 64) + BW
    order = torch.argsort(key)
    keys, counts = torch.unique_consecutive(key[order], return_counts=True)
    buckets = []
    start = 0
    for kv, n in zip(keys.tolist(), counts.tolist(), strict=True):
        bh_c, bw_c = divmod(kv, W + 64)
        step = max(1, settings.chunk_pairs // (bh_c * bw_c))
        for s in range(start, start + n, step):
            idx = order[s:min(s + step, start + n)]
            buckets.append(_Bucket(idx, bh_c, bw_c, x0[idx], y0[idx], bw[idx], bh[idx], W,
                                   tri.dtype))
        start += n
    return on, x0, y0, buckets


def _bucket_forward(coef: torch.Tensor, bk: _Bucket, inv_sigma: float, need_grad: bool):
    """Per-pair ``log(1 - D)`` ``(Fb, P)`` (0 on padding) and what backward needs."""
    d2 = kmin = inside = None
    ss, us = [], []
    for k in range(3):
        c = coef[:, k]
        t = torch.addcmul(c[:, 2:3], c[:, 0:1], bk.ox).addcmul_(c[:, 1:2], bk.oy)
        s = torch.addcmul(c[:, 5:6], c[:, 3:4], bk.ox).addcmul_(c[:, 4:5], bk.oy)
        u = t.sub_(t.clamp(0.0, 1.0))
        dk = (s * s).addcmul_(u * u, c[:, 6:7])
        ins = s > 0
        if k == 0:
            d2, inside = dk, ins
            if need_grad:
                kmin = torch.zeros(dk.shape, dtype=torch.uint8, device=dk.device)
        else:
            inside = inside.logical_and_(ins)
            if need_grad:
                kmin.masked_fill_(dk < d2, k)
            d2 = torch.minimum(d2, dk)
        ss.append(s)
        us.append(u)
    z = torch.where(inside, d2, -d2).mul_(inv_sigma)
    terms = F.softplus(z).neg_().mul_(bk.valid)
    if not need_grad:
        return terms, None
    # d log(1 - D) / d d^2 = -sigmoid(z) * delta / sigma (0 on padding).
    sig = torch.sigmoid(z).mul_(inv_sigma).mul_(bk.valid)
    cpair = torch.where(inside, sig.neg(), sig)
    return terms, (cpair, kmin, ss, us)


class _CulledSoftSilhouette(torch.autograd.Function):
    """``sum_j log(1 - D_ij)`` per pixel over bucketed pairs, analytic backward."""

    @staticmethod
    def forward(ctx, coef, buckets, n_pix, inv_sigma):  # noqa: D102
        need = ctx.needs_input_grad[0]
        coef_d = coef.detach()
        log_acc = coef.new_zeros(n_pix)
        saved = []
        for bk in buckets:
            terms, extra = _bucket_forward(coef_d.index_select(0, bk.idx), bk, inv_sigma, need)
            log_acc.index_add_(0, bk.pix, terms.reshape(-1))
            if need:
                saved.append(extra)
        ctx.buckets = buckets
        ctx.saved_pairs = saved
        ctx.save_for_backward(coef_d)
        return log_acc

    @staticmethod
    def backward(ctx, grad_log):  # noqa: D102
        (coef,) = ctx.saved_tensors
        grad = torch.zeros_like(coef)
        for bk, (cpair, kmin, ss, us) in zip(ctx.buckets, ctx.saved_pairs, strict=True):
            G = grad_log.index_select(0, bk.pix).reshape(cpair.shape).mul_(cpair).mul_(2.0)
            ox, oy = bk.ox.reshape(-1), bk.oy.reshape(-1)
            l2 = coef.index_select(0, bk.idx)[:, :, 6]  # (Fb, 3)
            rows = []
            for k in range(3):
                w = G.masked_fill(kmin != k, 0.0)  # 2 dL/dd^2 on pairs where edge k wins
                gs = w * ss[k]  # dL/ds
                gt = (w * us[k]).mul_(l2[:, k:k + 1])  # dL/dt
                gl2 = (w * us[k]).mul_(us[k]).mul_(0.5)  # dL/dL2
                rows.append(torch.stack([gt @ ox, gt @ oy, gt.sum(1), gs @ ox, gs @ oy,
                                         gs.sum(1), gl2.sum(1)], dim=1))
            grad[bk.idx] = torch.stack(rows, dim=1)
        return grad, None, None, None


# ----------------------------------------------------------------- public API
def soft_silhouette(vertices: torch.Tensor, faces: torch.Tensor, camera: Camera,
                    settings: SoftRasterSettings | None = None) -> torch.Tensor:
    """Soft silhouette of a mesh, differentiable w.r.t. the vertices.

    Args:
        vertices: ``(V, 3)`` float tensor, object frame (its device and dtype
            are used throughout).
        faces: ``(F, 3)`` int64 tensor of vertex indices.
        camera: fixed camera; the image is ``camera.height x camera.width``.
        settings: :class:`SoftRasterSettings` (defaults if ``None``).

    Returns:
        ``(H, W)`` tensor in ``[0, 1]``; 0 where no face is within the margin.

    Raises:
        ValueError: bad shapes or dtypes, out-of-range face indices, or a
            camera that is not a :class:`Camera`.
    """
    settings = settings or SoftRasterSettings()
    _check_inputs(vertices, faces, camera)
    H, W = camera.height, camera.width
    faces = faces.long()
    if faces.shape[0] == 0:
        return vertices.new_zeros(H, W) + 0.0 * vertices.sum()
    uv, pc = _project(vertices, camera)
    kept = _kept_faces(uv, pc, faces, settings)
    engine = settings.engine
    if engine == "auto":
        engine = "numba" if vertices.device.type == "cpu" else "torch"
    if engine == "numba":
        from geocorr.geometry.soft_numba import soft_log_coverage

        log_acc = soft_log_coverage(uv[faces[kept]], W, H, settings.margin, 1.0 / settings.sigma)
        return (-torch.expm1(log_acc)).reshape(H, W)
    with torch.no_grad():
        on, x0, y0, buckets = _buckets(uv.detach()[faces[kept]], W, H, settings)
    if on.numel() == 0:
        return vertices.new_zeros(H, W) + 0.0 * vertices.sum()
    coef = _face_coefficients(uv[faces[kept[on]]], x0, y0)
    log_acc = _CulledSoftSilhouette.apply(coef, buckets, H * W, 1.0 / settings.sigma)
    return (-torch.expm1(log_acc)).reshape(H, W)


class _Recompute(torch.autograd.Function):
    """``fn(x)`` without keeping its graph; backward recomputes it (checkpointing).

    (``torch.utils.checkpoint`` would do, but importing it pulls in
    ``torch._dynamo``, several seconds.)
    """

    @staticmethod
    def forward(ctx, fn, x):  # noqa: D102
        ctx.fn = fn
        ctx.save_for_backward(x)
        with torch.no_grad():
            return fn(x)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        (x,) = ctx.saved_tensors
        with torch.enable_grad():
            xd = x.detach().requires_grad_(True)
            (gx,) = torch.autograd.grad(ctx.fn(xd), xd, grad)
        return None, gx


def soft_silhouette_dense(vertices: torch.Tensor, faces: torch.Tensor, camera: Camera,
                          settings: SoftRasterSettings | None = None) -> torch.Tensor:
    """Reference without culling: every (pixel, face) pair, ``O(F H W)`` time.

    Same formula and face rules (near plane, zero area, back faces) as
    :func:`soft_silhouette` but no bounding-box culling; faces are processed in
    recomputed groups (activation checkpointing) so memory stays ``O(H W)``
    per group; the gradient is plain autograd, independent of the fast path's
    analytic backward. For tests and
    benchmarks.

    Args:
        vertices: ``(V, 3)`` float tensor, object frame.
        faces: ``(F, 3)`` int64 tensor.
        camera: fixed camera.
        settings: :class:`SoftRasterSettings` (``eps``/``chunk_pairs`` bound the
            group size only).

    Returns:
        ``(H, W)`` tensor in ``[0, 1]``.
    """
    settings = settings or SoftRasterSettings()
    _check_inputs(vertices, faces, camera)
    H, W = camera.height, camera.width
    faces = faces.long()
    log_acc = vertices.new_zeros(H * W)
    if faces.shape[0] == 0:
        return (-torch.expm1(log_acc)).reshape(H, W)
    uv, pc = _project(vertices, camera)
    kept = _kept_faces(uv, pc, faces, settings)
    v_i, u_i = torch.meshgrid(torch.arange(H, device=vertices.device),
                              torch.arange(W, device=vertices.device), indexing="ij")
    px = u_i.reshape(1, -1).to(vertices.dtype)
    py = v_i.reshape(1, -1).to(vertices.dtype)
    inv_sigma = 1.0 / settings.sigma
    group = max(1, settings.chunk_pairs // (H * W))

    def block(tri: torch.Tensor) -> torch.Tensor:
        return _log_one_minus_d(px, py, _FaceGeometry(tri), None, inv_sigma).sum(0)

    for s in range(0, kept.numel(), group):
        tri = uv[faces[kept[s:s + group]]]
        log_acc = log_acc + _Recompute.apply(block, tri)
    return (-torch.expm1(log_acc)).reshape(H, W)

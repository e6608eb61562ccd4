"""CPU engine of :func:`geocorr.geometry.soft_silhouette.soft_silhouette`: numba loops.

Same formula, face rules and culling as the torch engine (see
:mod:`geocorr.geometry.soft_silhouette`): for each kept face, every pixel of its
bounding box grown by ``margin`` is visited; a pair contributes
``log(1 - D) = -softplus(delta d^2 / sigma)`` unless the pixel is outside the
face and farther than ``margin`` from it (then ``D <= eps``: the same pairs the
torch engine pads with near-zero terms are skipped outright). No per-pair
tensors are built, so the cost is the arithmetic alone; the backward pass
visits the same pairs again instead of storing them.

Gradient. With ``t_k`` the clamped foot parameter of the nearest edge
``k`` (``a = v_k``, ``b = v_{k+1}``) and ``q = p - a - t_k (b - a)`` the
residual, ``d^2 = |q|^2`` and, by the envelope theorem (``t_k`` minimises
``|q|^2`` over ``[0, 1]``), ``d d^2 / d a = -2 q (1 - t_k)``,
``d d^2 / d b = -2 q t_k``; ``d log(1 - D) / d d^2 = -sigmoid(z) delta / sigma``
with ``z = delta d^2 / sigma``. The inside flag ``delta`` is piecewise constant
(no gradient), as in the torch engine.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

__all__ = ["soft_log_coverage"]


@numba.njit(cache=True, inline="always")
def _pair(px, py, ax, ay, bx, by, cx, cy, sgn):
    """``(d^2, inside, k, t, qx, qy)`` of pixel ``(px, py)`` against one triangle."""
    d2 = np.inf
    inside = True
    kbest = 0
    tbest = 0.0
    qxb = 0.0
    qyb = 0.0
    for k in range(3):
        if k == 0:
            vx, vy, wx, wy = ax, ay, bx, by
        elif k == 1:
            vx, vy, wx, wy = bx, by, cx, cy
        else:
            vx, vy, wx, wy = cx, cy, ax, ay
        ex = wx - vx
        ey = wy - vy
        dx = px - vx
        dy = py - vy
        l2 = ex * ex + ey * ey
        if l2 < 1e-12:
            l2 = 1e-12
        t = (dx * ex + dy * ey) / l2
        if t < 0.0:
            t = 0.0
        elif t > 1.0:
            t = 1.0
        qx = dx - t * ex
        qy = dy - t * ey
        dk = qx * qx + qy * qy
        if dk < d2:
            d2 = dk
            kbest = k
            tbest = t
            qxb = qx
            qyb = qy
        if (ex * dy - ey * dx) * sgn <= 0.0:
            inside = False
    return d2, inside, kbest, tbest, qxb, qyb


@numba.njit(cache=True)
def _box(ax, ay, bx, by, cx, cy, margin, W, H):
    x0 = max(math.ceil(min(ax, bx, cx) - margin), 0)
    x1 = min(math.floor(max(ax, bx, cx) + margin), W - 1)
    y0 = max(math.ceil(min(ay, by, cy) - margin), 0)
    y1 = min(math.floor(max(ay, by, cy) + margin), H - 1)
    return x0, x1, y0, y1


@numba.njit(cache=True, inline="always")
def _face(tri, f, margin, W, H):
    """Corners of face ``f`` of ``tri``, its orientation ``sgn`` (+1, -1; 0 for zero
    area) and its pixel box grown by ``margin``: ``(ax, ay, bx, by, cx, cy, sgn,
    x0, x1, y0, y1)``."""
    ax, ay = tri[f, 0, 0], tri[f, 0, 1]
    bx, by = tri[f, 1, 0], tri[f, 1, 1]
    cx, cy = tri[f, 2, 0], tri[f, 2, 1]
    area2 = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    sgn = 0.0 if area2 == 0.0 else (1.0 if area2 > 0.0 else -1.0)
    x0, x1, y0, y1 = _box(ax, ay, bx, by, cx, cy, margin, W, H)
    return ax, ay, bx, by, cx, cy, sgn, x0, x1, y0, y1


@numba.njit(cache=True)
def _softplus(z):
    if z > 0.0:
        return z + math.log1p(math.exp(-z))
    return math.log1p(math.exp(z))


@numba.njit(cache=True)
def _forward(tri, W, H, margin, inv_sigma, out):
    """``out[p] += sum_faces log(1 - D)``; ``tri`` is ``(F, 3, 2)`` float64."""
    m2 = margin * margin
    for f in range(tri.shape[0]):
        ax, ay, bx, by, cx, cy, sgn, x0, x1, y0, y1 = _face(tri, f, margin, W, H)
        if sgn == 0.0:
            continue
        for iy in range(y0, y1 + 1):
            py = float(iy)
            row = iy * W
            for ix in range(x0, x1 + 1):
                d2, inside, k, t, qx, qy = _pair(float(ix), py, ax, ay, bx, by, cx, cy, sgn)
                if inside:
                    out[row + ix] -= _softplus(d2 * inv_sigma)
                elif d2 < m2:
                    out[row + ix] -= _softplus(-d2 * inv_sigma)


@numba.njit(cache=True)
def _backward(tri, W, H, margin, inv_sigma, grad_log, grad):
    """``grad (F, 3, 2) = d(sum_p grad_log[p] out[p]) / d tri`` (see module docstring)."""
    m2 = margin * margin
    for f in range(tri.shape[0]):
        ax, ay, bx, by, cx, cy, sgn, x0, x1, y0, y1 = _face(tri, f, margin, W, H)
        if sgn == 0.0:
            continue
        g0x = g0y = g1x = g1y = g2x = g2y = 0.0
        for iy in range(y0, y1 + 1):
            py = float(iy)
            row = iy * W
            for ix in range(x0, x1 + 1):
                gl = grad_log[row + ix]
                if gl == 0.0:
                    continue
                d2, inside, k, t, qx, qy = _pair(float(ix), py, ax, ay, bx, by, cx, cy, sgn)
                if not inside and d2 >= m2:
                    continue
                delta = 1.0 if inside else -1.0
                z = delta * d2 * inv_sigma
                sig = 1.0 / (1.0 + math.exp(-z))
                g = -2.0 * gl * (-sig * delta * inv_sigma)  # times -q for d d^2 / d corner
                ga = g * (1.0 - t)
                gb = g * t
                if k == 0:
                    g0x += ga * qx
                    g0y += ga * qy
                    g1x += gb * qx
                    g1y += gb * qy
                elif k == 1:
                    g1x += ga * qx
                    g1y += ga * qy
                    g2x += gb * qx
                    g2y += gb * qy
                else:
                    g2x += ga * qx
                    g2y += ga * qy
                    g0x += gb * qx
                    g0y += gb * qy
        grad[f, 0, 0] += g0x
        grad[f, 0, 1] += g0y
        grad[f, 1, 0] += g1x
        grad[f, 1, 1] += g1y
        grad[f, 2, 0] += g2x
        grad[f, 2, 1] += g2y


class _SoftLogCoverage(torch.autograd.Function):
    """``(F, 3, 2)`` projected corners -> ``(H * W,)`` ``sum_j log(1 - D_ij)``."""

    @staticmethod
    def forward(ctx, tri, W, H, margin, inv_sigma):  # noqa: D102
        t = np.ascontiguousarray(tri.detach().cpu().numpy(), dtype=np.float64)
        out = np.zeros(H * W)
        _forward(t, W, H, margin, inv_sigma, out)
        ctx.tri = t
        ctx.args = (W, H, margin, inv_sigma)
        return torch.from_numpy(out).to(device=tri.device, dtype=tri.dtype)

    @staticmethod
    def backward(ctx, grad_log):  # noqa: D102
        W, H, margin, inv_sigma = ctx.args
        g = np.ascontiguousarray(grad_log.detach().cpu().numpy(), dtype=np.float64)
        grad = np.zeros_like(ctx.tri)
        _backward(ctx.tri, W, H, margin, inv_sigma, g, grad)
        return (torch.from_numpy(grad).to(device=grad_log.device, dtype=grad_log.dtype),
                None, None, None, None)


def soft_log_coverage(tri: torch.Tensor, width: int, height: int, margin: float,
                      inv_sigma: float) -> torch.Tensor:
    """``sum_j log(1 - D_ij)`` per pixel, differentiable w.r.t. the projected corners.

    Args:
        tri: ``(F, 3, 2)`` projected triangle corners in pixels (kept faces only).
        width, height: image size.
        margin: pixels beyond a face where its pairs are skipped.
        inv_sigma: ``1 / sigma``.

    Returns:
        ``(height * width,)`` tensor of ``tri``'s dtype and device (computed in
        float64 on the CPU).
    """
    return _SoftLogCoverage.apply(tri, int(width), int(height), float(margin), float(inv_sigma))

"""Stand-in for Orient Anything V2's ``vision_tower.VGGT_OriAny_Ref``.

Same constructor (``out_dim=900, dtype, nopretrain``), ``get_device()`` and
forward contract: ``(B, S, 3, H, W)`` images in [0, 1] (object on white) ->
``(B, S, 900)`` logits, 360 azimuth bins, 180 elevation bins (-90..89), 360
roll bins (-180..179). Instead of a network it "knows" one object: a vertical
prism over the polygon ``{p : n_i . p <= 1}`` whose side normals ``n_i`` have
the azimuths stored in the ``side_azimuths_deg`` buffer (loaded from the checkpoint), seen in a
normal-shaded render (pixel = (n + 1) / 2 of the camera-frame face normal,
OpenCV axes, turned towards the camera; geocorr's ``render_view``).

The azimuth follows Orient Anything's convention: 0 = the object faces the
camera, growing as the camera orbits counter-clockwise seen from above. For a
camera at azimuth ``a`` the image-right axis is ``r = (-sin a, cos a, 0)`` in the
object frame, so a side face with normal azimuth ``b`` shows ``n_x = sin(b - a)``,
is visible when ``cos(b - a) > 0``, and spans the image columns between its two
corners projected on ``r`` (orthographic approximation, as a fraction of the
object's width). Side pixels are told from the top face by ``n_y >= 0`` (the
top shows ``n_y = -cos(elevation)``). The logit of bin ``a`` is minus the mean
over side pixels of how far their ``(n_x, column)`` lie from the nearest
predicted face.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

N_SIDES = 6
"""Side faces of the known prism (the checkpoint's buffer has this length)."""


class VGGT_OriAny_Ref(nn.Module):  # noqa: N801 - the repository's class name
    def __init__(self, out_dim: int = 900, dtype: torch.dtype = torch.bfloat16,
                 nopretrain: bool = False) -> None:
        super().__init__()
        if out_dim != 900:
            raise ValueError(f"out_dim must be 900 (360 + 180 + 360 bins), got {out_dim}")
        self.dtype = dtype
        self.register_buffer("side_azimuths_deg", torch.zeros(N_SIDES))
        self.logit_scale = nn.Parameter(torch.ones(1))

    def get_device(self) -> torch.device:
        return self.logit_scale.device

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 5 or images.shape[2] != 3:
            raise ValueError(f"expected (B, S, 3, H, W), got {tuple(images.shape)}")
        B, S = images.shape[:2]
        out = torch.full((B, S, 900), -1e4)
        for b in range(B):
            for s in range(S):
                out[b, s, :360] = self._azimuth_logits(images[b, s])
                out[b, s, 360 + 90] = 0.0   # elevation 0 (not modelled)
                out[b, s, 540 + 180] = 0.0  # roll 0
        return out

    def _azimuth_logits(self, img: torch.Tensor) -> torch.Tensor:
        rgb = img.detach().float().cpu().numpy()
        obj = rgb[2] < 0.55  # normal z <= 0 after the turn: blue <= 0.5; background 1.0
        if not obj.any():
            return torch.zeros(360)
        nx, ny = rgb[0] * 2.0 - 1.0, rgb[1] * 2.0 - 1.0
        cols = np.nonzero(obj.any(axis=0))[0]
        side = obj & (ny > -0.2)
        _, cc = np.nonzero(side)
        q = (cc - cols.min()) / max(int(cols.max() - cols.min()), 1)
        hist, _, _ = np.histogram2d(nx[side], q, bins=[100, 50], range=[[-1, 1], [0, 1]])
        nx_c = np.linspace(-0.99, 0.99, 100)
        q_c = np.linspace(0.01, 0.99, 50)
        b = np.sort(self.side_azimuths_deg.detach().double().cpu().numpy())
        corners = _corners(b)
        cost = np.empty(360)
        for a in range(360):
            r = np.array([-math.sin(math.radians(a)), math.cos(math.radians(a))])
            u = corners @ r
            pos = (u - u.min()) / (u.max() - u.min())
            rel = np.radians(b - a)
            d = np.ones(hist.shape)
            for i in np.nonzero(np.cos(rel) > 0.02)[0]:  # side i spans corners i-1 and i
                lo, hi = sorted((pos[i - 1], pos[i]))
                dq = np.maximum(0.0, np.maximum(lo - q_c, q_c - hi))
                di = np.abs(nx_c - math.sin(rel[i]))[:, None] / 0.05 + dq[None, :] / 0.1
                d = np.minimum(d, di)
            cost[a] = (d * hist).sum() / max(hist.sum(), 1.0)
        scale = float(self.logit_scale.detach().abs().cpu())
        return torch.as_tensor(-cost * 100.0 * scale, dtype=torch.float32)


def _corners(side_azimuths_deg: np.ndarray) -> np.ndarray:
    """``(K, 2)`` corners of ``{p : n_i . p <= 1}``; corner i joins sides i and i + 1."""
    b = np.radians(side_azimuths_deg)
    n = np.stack([np.cos(b), np.sin(b)], axis=1)
    k = len(b)
    return np.array([np.linalg.solve(np.stack([n[i], n[(i + 1) % k]]), [1.0, 1.0])
                     for i in range(k)])

"""Stand-in for PartField's ``partfield/model/PVCNN/encoder_pc.py``.

``sample_triplane_feat(feature_triplane, normalized_pos)`` has the
repository's contract: triplanes ``(B, 3, C, R, R)``, query points
``(B, N, 3)`` in [-1, 1], bilinear lookup (``align_corners=True``, border
padding) of plane 0 at ``(x, y)``, plane 1 at ``(y, z)``, plane 2 at
``(x, z)`` (first coordinate along the plane's width), summed -> ``(B, N, C)``.

``TriPlanePC2Encoder`` stands in for the PVCNN point encoder: instead of
learned features it returns coordinate ramps, plane ``k`` holding its two
coordinates over ``[-1, 1]`` (so a linear mix of its channels is a linear
function of the query position, exactly reproduced by the bilinear lookup).
Like the repository's, it expects points inside its ``[-1, 1]^3`` grid and is
built on a device (the repository passes ``"cuda"``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_PLANE_AXES = ((0, 1), (1, 2), (0, 2))


def sample_triplane_feat(feature_triplane: torch.Tensor, normalized_pos: torch.Tensor):
    feats = 0
    for k, (i, j) in enumerate(_PLANE_AXES):
        grid = normalized_pos[:, :, [i, j]].unsqueeze(1)           # (B, 1, N, 2)
        plane = feature_triplane[:, k]                              # (B, C, R, R)
        grid = grid.to(plane.dtype)
        feats = feats + F.grid_sample(plane, grid, padding_mode="border", align_corners=True)
    return feats.squeeze(2).permute(0, 2, 1)                       # (B, N, C)


class TriPlanePC2Encoder(nn.Module):
    def __init__(self, cfg, device="cuda", shape_min=-1.0, shape_length=2.0,
                 use_2d_feat=False, resolution=32):
        super().__init__()
        self.device = torch.device(device)
        self.shape_min, self.shape_length = shape_min, shape_length
        ramp = torch.linspace(-1.0, 1.0, resolution, device=self.device)
        u = ramp[None, :].expand(resolution, resolution)    # along the width
        v = ramp[:, None].expand(resolution, resolution)    # along the height
        self.register_buffer("ramps", torch.stack([u, v])[None].repeat(3, 1, 1, 1))

    def forward(self, pc: torch.Tensor, pc_feat: torch.Tensor) -> torch.Tensor:
        if pc.ndim != 3 or pc.shape[0] != 1 or pc.shape[2] != 3:
            raise ValueError(f"expected a (1, N, 3) point cloud, got {tuple(pc.shape)}")
        lo, hi = self.shape_min, self.shape_min + self.shape_length
        if float(pc.min()) < lo or float(pc.max()) > hi:
            raise ValueError(f"points outside the encoder's [{lo}, {hi}]^3 grid: normalise "
                             "the mesh first")
        return self.ramps[None].to(pc.device)                       # (1, 3, 2, R, R)

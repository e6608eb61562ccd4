"""Stand-in for PartField's ``partfield/model_trainer_pvcnn_only_demo.py``: ``Model(cfg)``.

The attributes geocorr's adapter uses, with the repository's names:
``pvcnn`` (point cloud -> low-resolution triplanes), ``triplane_transformer``
(-> ``(B, 3, 512, R, R)``: 64 SDF + 448 part channels) and ``logit_scale``.
The transformer is one learned linear map per plane from the encoder's two
coordinate ramps to 512 channels, so the part feature of a point ``p`` is
exactly ``A p`` with ``A`` read off the checkpoint (see
``tests/features/test_partfield_adapter.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from partfield.model.PVCNN.encoder_pc import TriPlanePC2Encoder


class TriplaneTransformer(nn.Module):
    def __init__(self, triplane_dim: int = 512):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(3, triplane_dim, 2))

    def forward(self, planes: torch.Tensor) -> torch.Tensor:  # (B, 3, 2, R, R)
        return torch.einsum("kcj,bkjhw->bkchw", self.weight.to(planes.dtype), planes)


class Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.triplane_transformer = TriplaneTransformer(cfg.triplane_channels_high)
        self.pvcnn = TriPlanePC2Encoder(cfg.pvcnn, device=cfg.pvcnn.device, shape_min=-1,
                                        shape_length=2)
        self.logit_scale = nn.Parameter(torch.tensor([1.0]))

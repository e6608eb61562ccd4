"""The DIY-SC adapter: one bottleneck block per frozen feature source, softmax-mixed.

Each source ``i`` (e.g. SD decoder s3/s4/s5 with 640/1280/1280 channels and
DINOv2 with 768, or the CPU backbones' maps) goes through input dropout and a
ResNet bottleneck block ``1x1 -> 3x3 -> 1x1`` (GroupNorm, bottleneck width =
``out_dim / 4``, a 1x1 projection shortcut when the widths differ) to
``out_dim`` channels; the blocks' outputs are summed with softmax-normalised
learnable weights and L2-normalised per cell. The network also holds the
CLIP-style learnable logit scale of the training loss, so one state dict is
the whole trained model.

Wider context for weak local backbones (off by default, so the DIY-SC adapter
over DINOv2 + SD is unchanged): a 64-d XFeat cell sees ~8 px, and a 3x3 block
on top of it cannot learn what the pseudo-labels teach about left vs right or
front vs rear (those need the rest of the object). Two options act on the
mixed map before the normalisation:

* ``global_pool``: the image-mean of the mixed map through a linear layer,
  added to every cell (a coarse "what the whole object looks like" code);
* ``context_blocks``: that many residual bottleneck blocks with dilated 3x3
  convolutions (dilation 2, 4, 8, ...), whose receptive field grows to the
  whole 64x64 grid after four.

Both start as the identity (zero-initialised last GroupNorm / linear layer),
so training begins from the plain DIY-SC adapter.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

__all__ = ["AdapterSettings", "Adapter", "BottleneckBlock", "group_count"]


def group_count(channels: int, max_groups: int = 32) -> int:
    """GroupNorm groups for ``channels``: ``max_groups`` when it divides, else its largest divisor.

    DIY-SC uses GroupNorm(32); the CPU backbones' widths (e.g. 64 -> bottleneck
    16, or odd DAISY+Lab widths) need not be multiples of 32, so the largest
    divisor of ``channels`` not above ``max_groups`` is used (1 = LayerNorm-like).
    """
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    return max(d for d in range(1, max_groups + 1) if channels % d == 0)


@dataclass
class AdapterSettings:
    """Architecture of an :class:`Adapter`.

    Attributes:
        sources: ``(name, channels)`` per feature source, in mixing order,
            e.g. ``(("sd_s3", 640), ("sd_s4", 1280), ("sd_s5", 1280),
            ("dinov2", 768))``; the names are the keys of the input dict.
        out_dim: output descriptor width. 768 for DINO+SD (DIY-SC); smaller
            (e.g. 128) for the 64-d CPU backbones, where 768 would only add
            parameters. Must be divisible by 4 (bottleneck width = out/4).
        dropout: input dropout probability (DIY-SC: 0.2), applied per source
            before its block, in training mode only.
        max_groups: GroupNorm groups (DIY-SC: 32; see :func:`group_count`).
        init_logit_scale: initial CLIP logit scale (1/0.07, CLIP's value).
        context_blocks: dilated residual bottleneck blocks after the mix
            (dilations ``2, 4, 8, ...``); 0 = DIY-SC exact (the right choice
            for DINO+SD, whose tokens already carry image-wide context).
        global_pool: add a learned projection of the image-mean mixed
            descriptor to every cell (off = DIY-SC exact).
    """

    sources: tuple[tuple[str, int], ...] = field(default_factory=tuple)
    out_dim: int = 768
    dropout: float = 0.2
    max_groups: int = 32
    init_logit_scale: float = 1 / 0.07
    context_blocks: int = 0
    global_pool: bool = False

    def __post_init__(self) -> None:
        self.sources = tuple((str(n), int(c)) for n, c in self.sources)
        if not self.sources:
            raise ValueError("AdapterSettings.sources must name at least one (name, channels)")
        names = [n for n, _ in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"AdapterSettings.sources has duplicate names: {names}")
        for n, c in self.sources:
            if c < 1:
                raise ValueError(f"AdapterSettings.sources: {n!r} has {c} channels")
        if self.out_dim < 4 or self.out_dim % 4:
            raise ValueError(f"AdapterSettings.out_dim must be a multiple of 4, got {self.out_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"AdapterSettings.dropout must be in [0, 1), got {self.dropout}")
        if self.init_logit_scale <= 0:
            raise ValueError("AdapterSettings.init_logit_scale must be > 0")
        if self.context_blocks < 0:
            raise ValueError(f"AdapterSettings.context_blocks must be >= 0, "
                             f"got {self.context_blocks}")
        self.global_pool = bool(self.global_pool)

    def to_dict(self) -> dict:
        """Plain types only (loadable with ``torch.load(weights_only=True)``)."""
        d = asdict(self)
        d["sources"] = [[n, c] for n, c in self.sources]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> AdapterSettings:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        known = {"sources", "out_dim", "dropout", "max_groups", "init_logit_scale",
                 "context_blocks", "global_pool"}
        extra = set(d) - known
        if extra:
            raise ValueError(f"unknown AdapterSettings fields: {sorted(extra)}")
        d = dict(d)
        d["sources"] = tuple((n, c) for n, c in d.get("sources", ()))
        return cls(**d)


class BottleneckBlock(nn.Module):
    """ResNet bottleneck ``1x1 -> 3x3 -> 1x1`` with GroupNorm and a projection shortcut.

    Args:
        in_ch: input channels.
        out_ch: output channels; the bottleneck width is ``out_ch // 4``.
        max_groups: GroupNorm groups cap (see :func:`group_count`).
        dilation: dilation of the 3x3 convolution (1 = DIY-SC); the
            padding keeps the grid size.
        zero_init: zero the last GroupNorm's scale, so that a block with an
            identity shortcut starts as ``relu(x)`` (the identity on the
            non-negative outputs of another block).
    """

    def __init__(self, in_ch: int, out_ch: int, max_groups: int = 32, dilation: int = 1,
                 zero_init: bool = False) -> None:
        super().__init__()
        mid = out_ch // 4

        def norm(c: int) -> nn.GroupNorm:
            return nn.GroupNorm(group_count(c, max_groups), c)

        self.conv1 = nn.Conv2d(in_ch, mid, 1, bias=False)
        self.norm1 = norm(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=dilation, dilation=dilation, bias=False)
        self.norm2 = norm(mid)
        self.conv3 = nn.Conv2d(mid, out_ch, 1, bias=False)
        self.norm3 = norm(out_ch)
        if zero_init:
            nn.init.zeros_(self.norm3.weight)
        self.shortcut: nn.Module
        if in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, bias=False), norm(out_ch))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_ch, h, w) -> (B, out_ch, h, w)``."""
        y = torch.relu(self.norm1(self.conv1(x)))
        y = torch.relu(self.norm2(self.conv2(y)))
        y = self.norm3(self.conv3(y))
        return torch.relu(y + self.shortcut(x))


class Adapter(nn.Module):
    """Frozen multi-source features -> one L2-normalised descriptor map.

    Args:
        settings: architecture (sources, output width, dropout).
    """

    def __init__(self, settings: AdapterSettings) -> None:
        super().__init__()
        self.settings = settings
        self.blocks = nn.ModuleDict(
            {name: BottleneckBlock(ch, settings.out_dim, settings.max_groups)
             for name, ch in settings.sources})
        self.mix_logits = nn.Parameter(torch.zeros(len(settings.sources)))
        d = settings.out_dim
        self.global_proj: nn.Linear | None = None
        if settings.global_pool:
            self.global_proj = nn.Linear(d, d)
            nn.init.zeros_(self.global_proj.weight)
            nn.init.zeros_(self.global_proj.bias)
        self.context = nn.Sequential(*(
            BottleneckBlock(d, d, settings.max_groups, dilation=2 ** (i + 1), zero_init=True)
            for i in range(settings.context_blocks)))
        self.dropout = nn.Dropout(settings.dropout)
        self.log_logit_scale = nn.Parameter(
            torch.tensor(math.log(settings.init_logit_scale), dtype=torch.float32))

    @property
    def source_names(self) -> list[str]:
        return [n for n, _ in self.settings.sources]

    def mix_weights(self) -> torch.Tensor:
        """Softmax-normalised mixing weights ``(num_sources,)``."""
        return torch.softmax(self.mix_logits, dim=0)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Adapt one batch.

        Args:
            features: source name -> ``(B, C_i, h, w)`` on a common grid; every
                source of the settings must be present with its channel count.

        Returns:
            ``(B, out_dim, h, w)`` descriptors, unit L2 norm per cell.

        Raises:
            ValueError: a missing source, wrong channels or mismatched grids.
        """
        shape = None
        for name, ch in self.settings.sources:
            if name not in features:
                raise ValueError(f"adapter input is missing source {name!r} "
                                 f"(have {sorted(features)})")
            x = features[name]
            if x.ndim != 4 or x.shape[1] != ch:
                raise ValueError(f"adapter source {name!r} must be (B, {ch}, h, w), "
                                 f"got {tuple(x.shape)}")
            key = (x.shape[0], x.shape[2], x.shape[3])
            if shape is not None and key != shape:
                raise ValueError(f"adapter sources must share (B, h, w); {name!r} has {key}, "
                                 f"expected {shape}")
            shape = key
        w = self.mix_weights()
        out = None
        for i, name in enumerate(self.source_names):
            y = w[i] * self.blocks[name](self.dropout(features[name]))
            out = y if out is None else out + y
        if self.global_proj is not None:
            out = out + self.global_proj(out.mean(dim=(2, 3)))[:, :, None, None]
        out = self.context(out)
        return nn.functional.normalize(out, dim=1)

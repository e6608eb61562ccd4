"""Settings of adapter training, kept free of torch so that they can be read cheaply.

:class:`TrainSettings` (with its :class:`LossSettings`) is what
:func:`geocorr.adapter.train.train_adapter` runs with and what ``geocorr
train``'s flags default to; :func:`context_defaults` picks the adapter's
context options for a set of backbones. Both are re-exported by
:mod:`geocorr.adapter.train` / :mod:`geocorr.adapter.losses`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

__all__ = ["LossSettings", "TrainSettings", "LOCAL_BACKBONES", "context_defaults",
           "train_settings"]


@dataclass
class LossSettings:
    """Weights and constants of :func:`geocorr.adapter.losses.adapter_loss`.

    Attributes:
        clip_weight: weight of the symmetric cross-entropy (DIY-SC: 1).
        epe_weight: weight of the dense soft-argmax end-point error (1; the
            EPE is in normalised grid units, ~0.1 when a match is a few cells
            off, comparable to the CE's scale after the first steps).
        beta: soft-argmax temperature over cosine similarities (DIY-SC: 0.02).
        max_logit_scale: clamp of the learnable logit scale (CLIP: 100).
    """

    clip_weight: float = 1.0
    epe_weight: float = 1.0
    beta: float = 0.02
    max_logit_scale: float = 100.0

    def __post_init__(self) -> None:
        if self.clip_weight < 0 or self.epe_weight < 0:
            raise ValueError("LossSettings weights must be >= 0")
        if self.beta <= 0:
            raise ValueError(f"LossSettings.beta must be > 0, got {self.beta}")
        if self.max_logit_scale <= 0:
            raise ValueError("LossSettings.max_logit_scale must be > 0")


LOCAL_BACKBONES = frozenset({"xfeat", "classical"})
"""Backbones whose cells see only a small neighbourhood (no image-wide tokens)."""


def context_defaults(backbones: Sequence[str]) -> dict[str, object]:
    """Adapter context options chosen by measurement for the given sources.

    Local CPU backbones only (XFeat, DAISY + Lab): four dilated blocks and the
    image-mean branch, which lifted the geodesic adapter from 22.8 to 26.4
    PCK@0.1 over XFeat + context on the procedural benchmark
    (``benchmarks/results/adapter.md``). Anything else (DINOv2, SD, mixes
    with them): none, DIY-SC exact, since ViT / U-Net tokens already carry
    image-wide context.

    Args:
        backbones: backbone names (``"xfeat"``, ``"sd"``, ...).

    Returns:
        ``{"context_blocks": int, "global_pool": bool}`` for :class:`TrainSettings`.
    """
    names = [str(b) for b in backbones]
    if not names:
        raise ValueError("context_defaults needs at least one backbone name")
    local = all(n in LOCAL_BACKBONES for n in names)
    return {"context_blocks": 4 if local else 0, "global_pool": local}


@dataclass
class TrainSettings:
    """Adapter training (defaults: DIY-SC's recipe, method.md step 11).

    Attributes:
        epochs: passes over the training pairs (used when ``steps`` is None).
        steps: total optimisation steps (one pair each); overrides ``epochs``.
        lr: peak AdamW learning rate (5e-3).
        weight_decay: AdamW weight decay (1e-3).
        warmup: fraction of the steps spent warming up (one-cycle, 0.3).
        max_points: pseudo-keypoints per pair and step, a seeded random subset (50).
        val_fraction: fraction of pairs held out for validation (by pair).
        val_every: steps between validations + checkpoints (None: once per
            epoch of training pairs).
        seed: seeds the pair split, order, subsets, dropout and init.
        out_dim: adapter output width (768 for DINO+SD; 128 suits the
            64-d CPU backbones).
        dropout: adapter input dropout (0.2).
        loss: loss weights and temperatures.
        context_blocks: dilated context blocks after the mix
            (:class:`~geocorr.adapter.network.AdapterSettings`); 0 keeps the
            DIY-SC adapter exact.
        global_pool: add the image-mean branch (off: DIY-SC exact).
        label_budget: train on a seeded random subset of this many labels
            in total (pairs left with < 2 labels are dropped), e.g. to compare
            filters at equal label count; None uses every label.
    """

    epochs: int = 10
    steps: int | None = None
    lr: float = 5e-3
    weight_decay: float = 1e-3
    warmup: float = 0.3
    max_points: int = 50
    val_fraction: float = 0.1
    val_every: int | None = None
    seed: int = 0
    out_dim: int = 128
    dropout: float = 0.2
    loss: LossSettings = field(default_factory=LossSettings)
    context_blocks: int = 0
    global_pool: bool = False
    label_budget: int | None = None

    def __post_init__(self) -> None:
        if self.steps is None and self.epochs < 1:
            raise ValueError(f"TrainSettings.epochs must be >= 1, got {self.epochs}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"TrainSettings.steps must be >= 1, got {self.steps}")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"TrainSettings.warmup must be in [0, 1), got {self.warmup}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError("TrainSettings.val_fraction must be in [0, 1)")
        if self.max_points < 2:
            raise ValueError("TrainSettings.max_points must be >= 2 (the CE needs negatives)")
        if self.val_every is not None and self.val_every < 1:
            raise ValueError("TrainSettings.val_every must be >= 1")
        if self.lr <= 0:
            raise ValueError("TrainSettings.lr must be > 0")
        if self.context_blocks < 0:
            raise ValueError("TrainSettings.context_blocks must be >= 0")
        if self.label_budget is not None and self.label_budget < 2:
            raise ValueError("TrainSettings.label_budget must be >= 2 (or None)")

    def to_dict(self) -> dict:
        return asdict(self)


def train_settings(backbones: Sequence[str], **overrides: object) -> TrainSettings:
    """:class:`TrainSettings` for an adapter over ``backbones``.

    The adapter's context options come from :func:`context_defaults` unless
    given; every other field keeps its :class:`TrainSettings` default unless given.

    Args:
        backbones: the backbone names the adapter's sources come from.
        **overrides: :class:`TrainSettings` fields; ``None`` values are ignored
            (a command's "not given").

    Raises:
        ValueError: an unknown field, or a value :class:`TrainSettings` rejects.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    known = {f.name for f in dataclasses.fields(TrainSettings)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"unknown training setting(s) {unknown}; known: {sorted(known)}")
    return TrainSettings(**{**context_defaults(backbones), **given})

"""The feature source an evaluation predicts with, assembled from one settings object.

Three sources, one chain (``geocorr eval`` and anything else that scores a
backbone set or an adapter goes through :func:`eval_source`):

- zero-shot: the named backbones' maps, fused with equal weights when there
  are several (:func:`geocorr.evaluation.zero_shot.fused_feature_source`);
- a trained adapter over the frozen backbones it was trained on (named by
  its checkpoint; names given as well must agree):
  :func:`geocorr.evaluation.adapter_predict.adapter_feature_source`;
- either of them fused with the rendered part descriptor of each image's
  stage-1 mesh (:func:`geocorr.evaluation.adapter_predict.part_fused_source`).

Backbones are built by :func:`geocorr.features.registry.make_backbones` and
see the masks of :func:`geocorr.features.registry.context_mask_source`, as
when the features were cached and the adapter trained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from geocorr.evaluation.adapter_predict import (
    FeatureSource,
    adapter_backbone_names,
    adapter_feature_source,
    part_fused_source,
)
from geocorr.evaluation.zero_shot import fused_feature_source
from geocorr.features.part_fusion import PartFusionSettings
from geocorr.features.registry import (
    DEFAULT_BACKBONE,
    context_mask_source,
    make_backbones,
    split_names,
)

__all__ = ["SourceSettings", "SourceError", "EvalSource", "eval_backbone_names", "eval_source"]


@dataclass(frozen=True)
class SourceSettings:
    """What an evaluation predicts with.

    Attributes:
        backbones: backbone names (comma-separated items allowed). Empty: the
            adapter's backbones, or ``(DEFAULT_BACKBONE,)`` (xfeat) zero-shot.
            With an adapter, names given must be the ones it was trained on.
        weights: backbone name -> weights path or hub id
            (:func:`geocorr.features.registry.make_backbones`).
        grid_size: xfeat/classical grid side (``None``: their default); as
            the features were cached / the adapter trained with.
        context: image-wide context for the backbones that have it (same).
        masks: with context, show the backbones the dataset's object masks
            (:func:`geocorr.features.registry.context_mask_source`); off:
            the whole image.
        cache: a :class:`geocorr.features.cache.FeatureCache` folder, or ``None``.
        adapter: a trained adapter (a ``train_adapter`` run folder, its
            ``best.pt``, or a checkpoint file); ``None``: zero-shot.
        stage1: stage-1 cache root: fuse the rendered part descriptor of each
            image's mesh; ``None``: 2D only.
        fusion: how the part descriptor is weighted (used with ``stage1``).
    """

    backbones: tuple[str, ...] = ()
    weights: Mapping[str, str] = field(default_factory=dict)
    grid_size: int | None = None
    context: bool = False
    masks: bool = True
    cache: Path | None = None
    adapter: Path | None = None
    stage1: Path | None = None
    fusion: PartFusionSettings = field(default_factory=PartFusionSettings)


class SourceError(ValueError):
    """A source setting is wrong.

    Attributes:
        fields: the :class:`SourceSettings` fields concerned, so that a caller
            can name its own arguments for them (the CLI names its flags).
    """

    def __init__(self, message: str, fields: Sequence[str]) -> None:
        super().__init__(message)
        self.fields = tuple(fields)


@dataclass(frozen=True)
class EvalSource:
    """An assembled feature source.

    Attributes:
        features: ``(image path, category) -> FeatureMap``, memoised.
        backbones: the backbone names it runs, in order.
        adapter: the loaded :class:`~geocorr.adapter.network.Adapter`, or ``None``.
        fusion: the part fusion applied (``None``: no stage-1 fusion).
    """

    features: FeatureSource
    backbones: tuple[str, ...]
    adapter: Any = None
    fusion: PartFusionSettings | None = None


def eval_backbone_names(requested: Sequence[str], adapter_sources: Sequence[str] | None = None,
                        adapter_name: str = "the adapter") -> list[str]:
    """The backbones to run: those an adapter was trained on, else those requested.

    Args:
        requested: names given (comma-separated items allowed); may be empty.
        adapter_sources: the adapter's source names (``Adapter.source_names``),
            or ``None`` zero-shot.
        adapter_name: how errors name the adapter (e.g. its path).

    Returns:
        The names: the adapter's (:func:`adapter_backbone_names`), the
        requested ones, or ``[DEFAULT_BACKBONE]``.

    Raises:
        SourceError: names given that differ from the adapter's (field ``backbones``).
    """
    names = split_names(requested)
    if adapter_sources is None:
        return names or [DEFAULT_BACKBONE]
    need = adapter_backbone_names(adapter_sources)
    if names and names != need:
        raise SourceError(f"{adapter_name} was trained on {need}, not {names}", ("backbones",))
    return need


def eval_source(settings: SourceSettings, root: str | Path | None, device: str = "cpu"
                ) -> EvalSource:
    """Load the adapter (if any), build the backbones and assemble the source.

    Args:
        settings: what to predict with.
        root: the dataset whose object masks context backbones see (``None``:
            no masks).
        device: torch device of the backbones and the adapter.

    Returns:
        The :class:`EvalSource`.

    Raises:
        SourceError: backbone names, weights, grid size or context that
            :func:`~geocorr.features.registry.make_backbones` rejects, or that
            disagree with the adapter.
        ValueError: a part weight of 0 with ``stage1``.
        OSError: an unreadable adapter checkpoint.
    """
    adapter = None
    sources = None
    if settings.adapter is not None:
        from geocorr.adapter.checkpoint import from_pretrained  # torch

        adapter = from_pretrained(settings.adapter, device=device)
        sources = adapter.source_names
    names = eval_backbone_names(settings.backbones, sources, f"the adapter {settings.adapter}")
    try:
        backbones = make_backbones(names, device=device, weights=settings.weights,
                                   grid_size=settings.grid_size,
                                   context=True if settings.context else None)
    except ValueError as exc:
        raise SourceError(str(exc), ("backbones", "weights", "grid_size", "context")) from None
    mask_for = context_mask_source(backbones.values(), root if settings.masks else None)
    if adapter is None:
        features = fused_feature_source(backbones, cache_dir=settings.cache, mask_for=mask_for)
    else:
        features = adapter_feature_source(adapter, backbones, cache_dir=settings.cache,
                                          device=device, mask_for=mask_for)
    fusion = None
    if settings.stage1 is not None:
        fusion = settings.fusion
        features = part_fused_source(features, settings.stage1, fusion)
    return EvalSource(features=features, backbones=tuple(names), adapter=adapter, fusion=fusion)

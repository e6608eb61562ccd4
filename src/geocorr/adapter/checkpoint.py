"""Adapter checkpoints: atomic save, ``weights_only`` load, ``from_pretrained``, inference.

A checkpoint is a ``torch.save`` d dict of plain types and tensors only:
``format``, ``adapter_settings`` (:meth:`AdapterSettings.to_dict`),
``state_dict``, and for training checkpoints also the train settings, step,
optimizer state and history. It is written to a temporary file in the same
folder and renamed (``os.replace``), so a crash never leaves a half-written
file, and read with ``torch.load(weights_only=True)``. A writer killed between
the two leaves its ``.tmp-<pid>-*.pt`` behind; :func:`remove_stale_checkpoint_temps`
(called when training starts) deletes those of writers that are gone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geocorr.adapter.dataset import stack_sources
from geocorr.adapter.network import Adapter, AdapterSettings
from geocorr.atomic import atomic_file, remove_stale_temp_files
from geocorr.features.base import FeatureMap

__all__ = ["CHECKPOINT_FORMAT", "save_checkpoint", "load_checkpoint", "adapter_from_checkpoint",
           "from_pretrained", "apply_adapter", "BEST_NAME", "LAST_NAME",
           "remove_stale_checkpoint_temps"]

CHECKPOINT_FORMAT = "geocorr-adapter-v1"
BEST_NAME = "best.pt"
LAST_NAME = "last.pt"
_TMP_PREFIX, _TMP_SUFFIX = ".tmp-", ".pt"


def save_checkpoint(path: str | os.PathLike[str], adapter: Adapter, **extra: Any) -> Path:
    """Write ``adapter`` (+ ``extra`` plain-typed entries) atomically.

    Args:
        path: destination file; its folder is created.
        adapter: the network (its settings are stored beside the weights).
        **extra: more entries (tensors, numbers, strings, lists, dicts).

    Returns:
        ``path``.
    """
    path = Path(path)
    payload = {"format": CHECKPOINT_FORMAT, "adapter_settings": adapter.settings.to_dict(),
               "state_dict": {k: v.detach().cpu().clone() for k, v in
                              adapter.state_dict().items()}, **extra}
    with atomic_file(path, prefix=_TMP_PREFIX, suffix=_TMP_SUFFIX) as f:
        torch.save(payload, f)
    return path


def remove_stale_checkpoint_temps(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files that killed :func:`save_checkpoint` calls left in ``folder``.

    Files of a writer that is still running are kept.

    Returns:
        The removed paths.
    """
    return remove_stale_temp_files(folder, _TMP_PREFIX, _TMP_SUFFIX)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint dict (``weights_only=True``, on the CPU).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a geocorr adapter checkpoint, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"adapter checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors of many types
        raise ValueError(f"cannot read adapter checkpoint {path}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint")
    for key in ("adapter_settings", "state_dict"):
        if key not in payload:
            raise ValueError(f"adapter checkpoint {path} lacks {key!r}")
    return payload


def adapter_from_checkpoint(payload: dict[str, Any], device: str | torch.device = "cpu"
                            ) -> Adapter:
    """Build the adapter of a loaded checkpoint (strict weights, eval mode)."""
    adapter = Adapter(AdapterSettings.from_dict(payload["adapter_settings"]))
    adapter.load_state_dict(payload["state_dict"], strict=True)
    return adapter.to(device).eval()


def from_pretrained(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Adapter:
    """Load a trained adapter in eval mode.

    Args:
        path: a checkpoint file, or a training run folder (its ``best.pt``).
        device: where the network goes.
    """
    p = Path(path)
    if p.is_dir():
        p = p / BEST_NAME
    return adapter_from_checkpoint(load_checkpoint(p), device)


@torch.no_grad()
def apply_adapter(adapter: Adapter, fmaps: dict[str, FeatureMap],
                  device: str | torch.device = "cpu") -> FeatureMap:
    """Adapted descriptors of one image, as a FeatureMap evaluation can predict with.

    Args:
        adapter: a trained adapter (use eval mode).
        fmaps: source name -> FeatureMap of the image (all of the adapter's
            sources; resampled onto the first source's grid).
        device: where to run.

    Returns:
        ``FeatureMap((out_dim, h, w) float32 unit vectors, first source's transform,
        name="adapter")``.
    """
    stacked, ref = stack_sources(fmaps, adapter.source_names)
    out = adapter({k: v[None].to(device) for k, v in stacked.items()})[0]
    return FeatureMap(out.cpu().numpy().astype(np.float32), ref.transform, "adapter")

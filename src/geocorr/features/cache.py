"""On-disk feature cache: a dataset is encoded once per backbone and settings.

An entry is keyed by the SHA-256 of the image's pixels (and of any extra
arguments of ``extract``, e.g. a mask) and of ``backbone.cache_key()``, which
names every output-changing setting and the weights' identity. Entries are
``.npz`` files (features, optionally float16, plus the canvas transform and the
full key, re-checked on read) written atomically (temporary file +
``os.replace``); an unreadable or mismatching entry is recomputed and
overwritten, never trusted and never crashed on.

Layout: ``ROOT/<backbone name>/<digest[:2]>/<digest>.npz``.
"""

from __future__ import annotations

import hashlib
import os
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geocorr.atomic import atomic_file
from geocorr.data.images import read_mask, read_rgb
from geocorr.data.paths import inside
from geocorr.data.spair import SPairDataset
from geocorr.engine import ItemFailure, ready_state
from geocorr.engine.local import LocalEngine
from geocorr.features.base import Backbone, FeatureMap
from geocorr.geometry.image_transform import ResizePad
from geocorr.reconstruct.segmenter import default_segmenter

__all__ = ["FeatureCache", "image_digest", "file_identity", "check_rgb_image", "backbone_inputs",
           "EncodeSummary", "encode_dataset", "read_mask"]

_FORMAT = "geocorr-features-v1"


def check_rgb_image(image: np.ndarray, what: str = "image") -> np.ndarray:
    """Validate an ``(H, W, 3)`` uint8 RGB image and return it as a contiguous array.

    Raises:
        ValueError: naming ``what`` when the shape or dtype is wrong.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{what} must be (H, W, 3) RGB, got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{what} must be uint8, got {image.dtype}")
    return np.ascontiguousarray(image)


def file_identity(path: str | os.PathLike[str], hash_bytes: bool = True) -> str:
    """A short identity of a weights file for cache keys.

    Args:
        path: the file.
        hash_bytes: hash the content (first 16 hex digits of SHA-256; right
            for files of a few hundred MB at most); else use name, size and
            modification time (cheap, for multi-GB checkpoints).
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"weights file not found: {p}")
    if not hash_bytes:
        st = p.stat()
        return f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return f"{p.name}:sha256={h.hexdigest()[:16]}"


def _hash_value(h: Any, value: Any) -> None:
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        h.update(f"nd{arr.shape}{arr.dtype.str}".encode())
        h.update(arr.tobytes())
    elif isinstance(value, (list, tuple)) and any(isinstance(v, np.ndarray) for v in value):
        for v in value:
            _hash_value(h, v)
    else:
        h.update(repr(value).encode())


def image_digest(image: np.ndarray) -> str:
    """SHA-256 hex digest of an image's shape, dtype and pixels."""
    h = hashlib.sha256()
    _hash_value(h, np.asarray(image))
    return h.hexdigest()


class FeatureCache:
    """A directory of cached :class:`FeatureMap` s.

    Args:
        root: cache directory (created on first write).
        float16: store features as float16 (half the disk; ~1e-3 relative
            error, below any matching decision); they are returned as float32.

    Attributes:
        hits: entries served from disk so far.
        misses: entries computed (absent, corrupt or stale) so far.
    """

    def __init__(self, root: str | os.PathLike[str], float16: bool = False) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise NotADirectoryError(f"feature cache root is not a directory: {self.root}")
        self.float16 = float16
        self.hits = 0
        self.misses = 0

    def key(self, image: np.ndarray, backbone: Backbone, key_extra: str = "",
            **extract_kwargs: Any) -> str:
        """The full key string of an entry (image digest + backbone key + extras)."""
        h = hashlib.sha256()
        for name in sorted(extract_kwargs):
            h.update(name.encode())
            _hash_value(h, extract_kwargs[name])
        return (f"{_FORMAT}|image={image_digest(image)}|backbone={backbone.cache_key()}"
                f"|extra={key_extra}|kwargs={h.hexdigest()}")

    def path(self, image: np.ndarray, backbone: Backbone, key_extra: str = "",
             **extract_kwargs: Any) -> Path:
        """Where the entry for these inputs lives."""
        return self._path_for(self.key(image, backbone, key_extra, **extract_kwargs),
                              backbone.name)

    def _path_for(self, key: str, backbone_name: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in backbone_name) or "_"
        return self.root / name / digest[:2] / f"{digest}.npz"

    def load(self, path: Path, key: str) -> FeatureMap | None:
        """Read an entry; None when absent, unreadable or written under another key."""
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) != key:
                    return None
                t = z["transform"]
                transform = ResizePad(scale=float(t[0]), left=int(t[1]), top=int(t[2]),
                                      size=int(t[3]), src_width=int(t[4]), src_height=int(t[5]))
                features = z["features"].astype(np.float32)
                return FeatureMap(features, transform, str(z["name"]))
        except (OSError, ValueError, KeyError, EOFError, IndexError, zipfile.BadZipFile):
            return None

    def save(self, path: Path, key: str, fmap: FeatureMap) -> None:
        """Write an entry atomically (temporary file in the same folder + ``os.replace``)."""
        t = fmap.transform
        features = fmap.features.astype(np.float16 if self.float16 else np.float32)
        with atomic_file(path, prefix=".tmp-", suffix=".npz") as f:
            np.savez(f, features=features, key=np.array(key), name=np.array(fmap.name),
                     transform=np.array([t.scale, t.left, t.top, t.size, t.src_width,
                                         t.src_height], dtype=np.float64))

    def get_or_compute(self, image: np.ndarray, backbone: Backbone, key_extra: str = "",
                       **extract_kwargs: Any) -> FeatureMap:
        """The cached features of ``image``, computing and storing them when needed.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            backbone: the backbone to run on a miss.
            key_extra: anything else that should separate entries (e.g. a
                dataset version).
            **extract_kwargs: passed to ``backbone.extract`` (e.g. ``mask=``);
                they are part of the key (arrays by content).

        Returns:
            The :class:`FeatureMap` (float32).
        """
        image = check_rgb_image(image)
        key = self.key(image, backbone, key_extra, **extract_kwargs)
        path = self._path_for(key, backbone.name)
        cached = self.load(path, key)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        fmap = backbone.extract(image, **extract_kwargs)
        self.save(path, key, fmap)
        if self.float16:
            return FeatureMap(fmap.features.astype(np.float16).astype(np.float32),
                              fmap.transform, fmap.name)
        return fmap

    def features_for(self, image: np.ndarray, backbone: Backbone, *, mask: np.ndarray | None = None,
                     bbox: np.ndarray | None = None, category: str | None = None,
                     key_extra: str = "") -> FeatureMap:
        """:meth:`get_or_compute` with exactly the inputs ``backbone``'s output depends on.

        Use this (not ``get_or_compute`` with hand-picked kwargs) wherever the same
        cache is shared, so that every caller hits the same entries; see
        :func:`backbone_inputs`.
        """
        kwargs = backbone_inputs(backbone, mask=mask, bbox=bbox, category=category)
        return self.get_or_compute(image, backbone, key_extra, **kwargs)


def backbone_inputs(backbone: Backbone, mask: np.ndarray | None = None,
                    bbox: np.ndarray | None = None, category: str | None = None
                    ) -> dict[str, Any]:
    """The extra ``extract`` arguments that change ``backbone``'s output.

    A mask (else the box) only for backbones whose image-wide context is on
    (``settings.context.enabled``); the category only for a prompt containing
    ``"{category}"``. Everything else is dropped, so it does not split cache
    entries.
    """
    settings = getattr(backbone, "settings", None)
    out: dict[str, Any] = {}
    context = getattr(settings, "context", None)
    if context is not None and getattr(context, "enabled", False):
        if mask is not None:
            out["mask"] = np.asarray(mask) > 0
        elif bbox is not None:
            out["bbox"] = np.asarray(bbox, dtype=np.float64)
    if "{category}" in str(getattr(settings, "prompt", "")):
        if not category:
            raise ValueError(f"backbone {backbone.name!r} prompts with a category; pass category")
        out["category"] = category
    return out


def dataset_mask_for(root: str | os.PathLike[str]):
    """``(image path, category) -> mask or None`` from an SPair-layout dataset's masks.

    The mask source of context backbones when encoding, training and evaluating
    on a dataset (all three must use the same masks): the folder of
    :func:`geocorr.reconstruct.segmenter.default_segmenter`, i.e.
    ``root/PredictedMasks/`` on the procedural benchmark (simulated SAM 3
    masks; the true ones are for scoring) and ``root/Segmentation/`` otherwise.
    ``None`` where the PNG is missing; a ``ValueError`` where ``category``
    leads the path out of ``root``.
    """
    root = Path(root)
    folder = default_segmenter(root).folder

    def mask_for(path: str | os.PathLike[str], category: str) -> np.ndarray | None:
        seg = inside(root, folder, category, f"{Path(path).stem}.png",
                     source=f"mask of {path}", what="segmentation")
        return read_mask(seg) if seg.is_file() else None

    return mask_for


@dataclass(frozen=True)
class EncodeSummary:
    """What :func:`encode_dataset` did.

    Attributes:
        num_images: distinct images of the requested splits.
        computed: images the backbone ran on.
        cached: images already in the cache.
        masked: images encoded with their object mask (context backbones only).
        seconds: wall time.
        seconds_per_computed: mean time of one computed image (0 if none).
        failures: images with bad input (unreadable image or mask, a mask of
            another size), not encoded, as :class:`~geocorr.engine.ItemFailure` s.
    """

    num_images: int
    computed: int
    cached: int
    masked: int
    seconds: float
    seconds_per_computed: float
    failures: tuple = ()


def encode_dataset(root: str | os.PathLike[str], splits: list[str],
                   backbone: Backbone | Callable[[], Backbone],
                   cache: FeatureCache, *, use_masks: bool = True, progress: bool = True,
                   key_extra: str = "", engine=None) -> EncodeSummary:
    """Encode every image of an SPair-layout dataset's splits into the cache, once each.

    Images are encoded by ``engine`` (on Ray: actors that build the backbone once
    each, on their own GPU with ``num_gpus_per_worker``) and every entry is
    written atomically by the worker that computes it; the entries are the same
    whatever the engine. An image with bad input is recorded in ``failures``
    and the others go on.

    Args:
        root: dataset root (SPair-71k or the procedural benchmark).
        splits: split names (``trn``, ``val``, ``test``).
        backbone: the backbone to run, or a zero-argument factory that builds it
            (what a Ray worker should do, rather than receive a model built here).
        cache: where the features go.
        use_masks: give context backbones the dataset's masks, from
            :func:`dataset_mask_for` as training and evaluation read them
            (``PredictedMasks/`` on the procedural benchmark, ``Segmentation/``
            otherwise); the pair JSON's box is used when a mask is missing.
        progress: show a rich progress bar.
        key_extra: passed to the cache.
        engine: a :class:`~geocorr.engine.Engine` (default: local).

    Returns:
        :class:`EncodeSummary`.
    """
    from functools import partial

    engine = engine or LocalEngine()
    ds = SPairDataset(root)
    items: dict[Path, tuple[str, np.ndarray | None]] = {}
    for split in splits:
        for pair in ds.pairs(split):
            items.setdefault(pair.src_image, (pair.category, pair.src_bbox))
            items.setdefault(pair.trg_image, (pair.category, pair.trg_bbox))
    todo = [(path, cat, bbox) for path, (cat, bbox) in sorted(items.items(),
                                                             key=lambda kv: kv[0])]
    setup = partial(_encoder_state, backbone, cache)
    if engine.settings.engine == "local":  # build once here; the cache counts hits/misses
        setup = ready_state(setup())
    fn = partial(_encode_item, dataset_mask_for(root) if use_masks else None, key_extra)
    computed = cached = masked = 0
    compute_time = 0.0
    failures: list = []
    start = time.perf_counter()
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("encoding", total=len(todo))
        for _item, res in engine.map_items(fn, todo, setup=setup, stateful=True,
                                           label=lambda it: str(it[0])):
            if isinstance(res, ItemFailure):
                failures.append(res)
            else:
                hit, used_mask, seconds = res
                computed += int(not hit)
                cached += int(hit)
                masked += int(used_mask)
                compute_time += seconds
            bar.advance(task)
    return EncodeSummary(num_images=len(items), computed=computed, cached=cached,
                         masked=masked, seconds=time.perf_counter() - start,
                         seconds_per_computed=compute_time / computed if computed else 0.0,
                         failures=tuple(failures))


def _encoder_state(backbone, cache: FeatureCache) -> tuple[Backbone, FeatureCache]:
    """``(backbone, cache)`` on a worker, building the backbone when given a factory."""
    return (backbone if hasattr(backbone, "extract") else backbone()), cache


def _encode_item(mask_for, key_extra: str, state: tuple,
                 item: tuple) -> tuple[bool, bool, float]:
    """Encode one image; ``(from the cache?, with its mask?, seconds computing)``."""
    backbone, cache = state
    path, category, bbox = item
    image = read_rgb(path)
    mask = None if mask_for is None else mask_for(path, category)
    if mask is not None and mask.shape != image.shape[:2]:
        raise ValueError(f"mask of {path} is {mask.shape[::-1]}, the image is "
                         f"{image.shape[1::-1]}")
    kwargs = backbone_inputs(backbone, mask=mask, bbox=bbox, category=category)
    t0 = time.perf_counter()
    before = cache.misses
    cache.get_or_compute(image, backbone, key_extra, **kwargs)
    hit = cache.misses == before
    return hit, "mask" in kwargs, 0.0 if hit else time.perf_counter() - t0

"""Typed records shared by the keypoint-benchmark readers (SPair-71k, PF-PASCAL, PF-WILLOW, AP-10K).

Every reader turns its official on-disk layout into a list of
:class:`KeypointPair`: the two image paths, the keypoints visible in both
images (aligned, ``x`` before ``y``, original pixels, used as given by the
annotation) and what the PCK protocol needs to pick its threshold. Scoring
code (:mod:`geocorr.evaluation`) only ever sees these records.

The small ``_read_json``/``_field`` helpers give the readers one way to say
*which file* and *which field* is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "KeypointPair",
    "PairDataset",
    "ThresholdRule",
    "DatasetFormatError",
    "read_json",
    "require_field",
    "as_points",
    "as_box",
    "as_size",
    "image_size",
    "require_dir",
]

ThresholdRule = Literal["bbox", "image", "keypoints"]
"""How the PCK threshold size ``T`` of a pair is measured (always on the target):

- ``"bbox"``: ``max(h, w)`` of the target object's bounding box (SPair-71k, AP-10K);
- ``"image"``: ``max(H, W)`` of the target image (PF-PASCAL);
- ``"keypoints"``: ``max(h, w)`` of the bounding box of the target keypoints (PF-WILLOW).
"""


class DatasetFormatError(ValueError):
    """A benchmark file is missing or malformed; the message names the file and the field."""


@dataclass(frozen=True, eq=False)
class KeypointPair:
    """One annotated source/target pair of a keypoint benchmark.

    Attributes:
        pair_id: identifier as the split file spells it (SPair: the pair stem
            ``"000001-2008_000585-2008_000806:aeroplane"``); unique within a split.
        category: category (SPair/PF class name, AP-10K species).
        src_image: path of the source image.
        trg_image: path of the target image.
        src_kps: ``(N, 2)`` float64 source keypoints ``(x, y)``, original pixels.
        trg_kps: ``(N, 2)`` float64 target keypoints aligned with ``src_kps``.
        kps_ids: ``(N,)`` int64 keypoint ids in the category's numbering
            (SPair 0..29, AP-10K 0..16; PF datasets: the annotation row).
        src_bbox: ``(4,)`` float64 ``[x1, y1, x2, y2]`` source object box, or ``None``.
        trg_bbox: ``(4,)`` float64 ``[x1, y1, x2, y2]`` target object box, or ``None``.
        src_size: source image ``(W, H)``.
        trg_size: target image ``(W, H)``.
        flags: integer annotations used for breakdowns (SPair:
            ``viewpoint_variation``, ``scale_variation``, ``truncation``,
            ``occlusion``, ``mirror``); empty where the dataset has none.
        trg_visible_ids: ``(M,)`` int64 ids of every keypoint visible in the
            target image (not only in both), for the geometry-aware subset; ``None``
            when the dataset does not say (then the visible-in-both ids stand in).
        trg_visible_kps: ``(M, 2)`` float64 target positions of ``trg_visible_ids``
            (for swap rates: where a keypoint's left/right or repeated twin is);
            ``None`` when unknown.
    """

    pair_id: str
    category: str
    src_image: Path
    trg_image: Path
    src_kps: np.ndarray
    trg_kps: np.ndarray
    kps_ids: np.ndarray
    src_bbox: np.ndarray | None
    trg_bbox: np.ndarray | None
    src_size: tuple[int, int]
    trg_size: tuple[int, int]
    flags: Mapping[str, int] = field(default_factory=dict)
    trg_visible_ids: np.ndarray | None = None
    trg_visible_kps: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.src_kps)
        for name in ("src_kps", "trg_kps"):
            arr = getattr(self, name)
            if arr.ndim != 2 or arr.shape != (n, 2):
                raise ValueError(f"KeypointPair {self.pair_id}: {name} must be ({n}, 2), "
                                 f"got {arr.shape}")
        if self.kps_ids.shape != (n,):
            raise ValueError(f"KeypointPair {self.pair_id}: kps_ids must be ({n},), "
                             f"got {self.kps_ids.shape}")
        for name in ("src_bbox", "trg_bbox"):
            box = getattr(self, name)
            if box is not None and box.shape != (4,):
                raise ValueError(f"KeypointPair {self.pair_id}: {name} must be (4,), "
                                 f"got {box.shape}")
        if self.trg_visible_kps is not None:
            m = -1 if self.trg_visible_ids is None else len(self.trg_visible_ids)
            if self.trg_visible_kps.shape != (m, 2):
                raise ValueError(f"KeypointPair {self.pair_id}: trg_visible_kps must be "
                                 f"(len(trg_visible_ids), 2) = ({m}, 2), "
                                 f"got {self.trg_visible_kps.shape}")
        for name in ("src_size", "trg_size"):
            w, h = getattr(self, name)
            if w <= 0 or h <= 0:
                raise ValueError(f"KeypointPair {self.pair_id}: {name} must be positive, "
                                 f"got {(w, h)}")

    @property
    def num_keypoints(self) -> int:
        return len(self.src_kps)


@runtime_checkable
class PairDataset(Protocol):
    """A keypoint benchmark on disk.

    Attributes:
        name: ``"spair"``, ``"pfpascal"``, ``"pfwillow"`` or ``"ap10k"``.
        root: the dataset root directory.
        threshold_rule: how PCK measures ``T`` on this dataset.
        default_alphas: the PCK levels the literature reports for it.
    """

    name: str
    root: Path
    threshold_rule: ThresholdRule
    default_alphas: tuple[float, ...]

    def splits(self) -> tuple[str, ...]:
        """Split names this copy of the dataset has on disk."""
        ...

    def pairs(self, split: str) -> list[KeypointPair]:
        """All pairs of ``split``, in split-file order."""
        ...

    def geometry_groups(self, category: str) -> tuple[tuple[int, ...], ...]:
        """Groups of keypoint ids of the same part (empty when none are known)."""
        ...

    def geometry_groups_source(self, category: str) -> str:
        """Where the category's groups come from (e.g. ``"Meta/categories.json"``,
        ``"SPair-71k built-in"``, ``"none"``), for reports."""
        ...


# ----------------------------------------------------------------------------------------------
# helpers for the readers


def require_dir(path: Path, what: str) -> Path:
    """Return ``path`` if it is a directory, else raise naming ``what`` it should have been."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{what}: {path} is a file, not a directory")
    if not path.is_dir():
        raise FileNotFoundError(f"{what}: directory {path} does not exist")
    return path


def read_json(path: Path) -> Any:
    """Parse a JSON file, raising :class:`DatasetFormatError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetFormatError(f"{path}: not valid JSON ({exc})") from None


def require_field(data: Any, key: str, path: Path) -> Any:
    """``data[key]`` or a :class:`DatasetFormatError` naming the file and the field."""
    if not isinstance(data, Mapping):
        raise DatasetFormatError(f"{path}: expected a JSON object, got {type(data).__name__}")
    if key not in data:
        raise DatasetFormatError(f"{path}: missing field '{key}'")
    return data[key]


def as_points(value: Any, path: Path | str, key: str, *, allow_empty: bool = True) -> np.ndarray:
    """Convert ``[[x, y], ...]`` to ``(N, 2)`` float64, naming file and field when it is not."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetFormatError(f"{path}: field '{key}' is not a list of [x, y] numbers") from None
    if arr.size == 0 and allow_empty:
        return np.zeros((0, 2), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise DatasetFormatError(f"{path}: field '{key}' must be a list of [x, y] pairs, "
                                 f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise DatasetFormatError(f"{path}: field '{key}' has non-finite coordinates")
    return arr


def as_box(value: Any, path: Path | str, key: str) -> np.ndarray:
    """``[x1, y1, x2, y2]`` -> ``(4,)`` float64 with a named error otherwise."""
    try:
        box = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DatasetFormatError(f"{path}: field '{key}' is not a list of numbers") from None
    if box.shape != (4,) or not np.all(np.isfinite(box)):
        raise DatasetFormatError(f"{path}: field '{key}' must be [x1, y1, x2, y2], got {value!r}")
    return box


def as_size(value: Any, path: Path | str, key: str) -> tuple[int, int]:
    """``[W, H, ...]`` -> ``(W, H)`` positive ints with a named error otherwise."""
    if not isinstance(value, Sequence) or len(value) < 2:
        raise DatasetFormatError(f"{path}: field '{key}' must be [W, H, C], got {value!r}")
    try:
        w, h = int(value[0]), int(value[1])
    except (TypeError, ValueError):
        raise DatasetFormatError(f"{path}: field '{key}' must be [W, H, C], "
                                 f"got {value!r}") from None
    if w <= 0 or h <= 0:
        raise DatasetFormatError(f"{path}: field '{key}' must be positive, got {value!r}")
    return w, h


def image_size(path: Path) -> tuple[int, int]:
    """``(W, H)`` of an image file, read from its header only (PIL)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise FileNotFoundError(f"image {path} does not exist") from None
    except (OSError, Image.DecompressionBombError) as exc:
        raise DatasetFormatError(f"{path}: cannot read image ({exc})") from None

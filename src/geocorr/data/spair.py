"""SPair-71k reader (and geocorr's procedural benchmark, which uses the same layout).

Layout::

    ROOT/JPEGImages/<category>/<image>.jpg
    ROOT/ImageAnnotation/<category>/<image>.json
    ROOT/PairAnnotation/{trn,val,test}/<6-digit id>-<src>-<trg>:<category>.json
    ROOT/Layout/{large,small}/{trn,val,test}.txt      one pair stem per line
    ROOT/Segmentation/<category>/<image>.png
    ROOT/Meta/categories.json                         procedural benchmark only

Pair JSON fields read: ``src_imname``, ``trg_imname``, ``src_imsize`` /
``trg_imsize`` (``[W, H, C]``), ``src_bndbox`` / ``trg_bndbox``
(``[x1, y1, x2, y2]``), ``src_kps`` / ``trg_kps`` (keypoints visible in both),
``kps_ids`` (cast with ``int()``), ``category`` and the difficulty flags
``viewpoint_variation``, ``scale_variation``, ``truncation``, ``occlusion``,
``mirror``. The target's image JSON (``kps``: ``"0".."29" -> [x, y] or null``)
gives the keypoints visible in the target for the geometry-aware subset.

Tolerance ([unverified] facts of the format): coordinates are used as given
(0-based is unverified, nobody shifts them); the value range of the
truncation/occlusion flags is not checked, missing flags are simply left out
of the breakdowns; ``kps_ids`` may be strings or numbers; a missing image
JSON only loses the target-visibility information (the visible-in-both ids
stand in); a split without a ``Layout`` file falls back to every JSON in
``PairAnnotation/<split>/`` in sorted order.

Confinement: every path built from the annotations (pair stems of the
``Layout`` file, ``category``, ``src_imname`` / ``trg_imname``) must resolve
inside the root (:func:`geocorr.data.paths.inside`: no absolute names, no
``..`` or symbolic link leading out); anything else is a
:class:`~geocorr.data.pairs.DatasetFormatError` naming the file and the value.

``Meta/categories.json`` (written by the procedural benchmark; users can
write one for their own categories, format in docs/evaluation.md) maps each
category to its ``keypoint_names`` (a list indexed by keypoint id, or an
``{id: name}`` object) and geometry-aware ``groups``; for those categories its
groups replace SPair's table, other categories use SPair's table when it has
them and have no groups otherwise (:meth:`SPairDataset.geometry_groups_source`
says which). Accepted shapes: ``{cat: {...}}``, ``{"categories": {cat:
{...}}}`` or ``{"categories": [{"name": cat, ...}]}``; names may also be spelt
``keypoints`` and groups ``keypoint_groups`` / ``geometry_groups``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geocorr.data.keypoint_groups import (
    GROUPS_FROM_META,
    GROUPS_NONE,
    GROUPS_SPAIR,
    SPAIR_GROUPS,
    normalize_groups,
)
from geocorr.data.pairs import (
    DatasetFormatError,
    KeypointPair,
    ThresholdRule,
    as_box,
    as_points,
    as_size,
    read_json,
    require_dir,
    require_field,
)
from geocorr.data.paths import Confined

__all__ = ["SPairDataset", "CategoryMeta", "load_category_meta", "SPAIR_FLAGS"]

SPAIR_FLAGS = ("viewpoint_variation", "scale_variation", "truncation", "occlusion", "mirror")
_SPLIT_ALIASES = {"train": "trn", "validation": "val"}


@dataclass(frozen=True)
class CategoryMeta:
    """Per-category keypoint metadata from ``Meta/categories.json``.

    Attributes:
        keypoint_names: names of keypoints ``0..K-1``.
        groups: same-part groups of keypoint ids (geometry-aware subset).
    """

    keypoint_names: tuple[str, ...]
    groups: tuple[tuple[int, ...], ...]


def load_category_meta(path: str | Path) -> dict[str, CategoryMeta]:
    """Parse ``Meta/categories.json`` (shapes accepted: see the module docstring).

    Raises:
        DatasetFormatError: malformed file (names the file and the category/field).
    """
    path = Path(path)
    data = read_json(path)
    if isinstance(data, Mapping) and "categories" in data:
        data = data["categories"]
    if isinstance(data, list):
        entries: dict[str, Any] = {}
        for i, item in enumerate(data):
            if not isinstance(item, Mapping) or "name" not in item:
                raise DatasetFormatError(f"{path}: categories[{i}] needs a 'name' field")
            entries[str(item["name"])] = item
        data = entries
    if not isinstance(data, Mapping):
        raise DatasetFormatError(f"{path}: expected an object of categories")
    out = {}
    for cat, entry in data.items():
        if not isinstance(entry, Mapping):
            raise DatasetFormatError(f"{path}: category '{cat}' must be an object")
        names = _first(entry, ("keypoint_names", "keypoints", "names"), default=[])
        groups = _first(entry, ("groups", "keypoint_groups", "geometry_groups"), default=[])
        names = _names_list(names, f"{path}: category '{cat}' field 'keypoint_names'")
        if not isinstance(groups, list):
            raise DatasetFormatError(f"{path}: category '{cat}' field 'groups' must be a list")
        try:
            norm = normalize_groups(groups, where=f"{path}: category '{cat}' field 'groups'")
        except ValueError as exc:
            raise DatasetFormatError(str(exc)) from None
        out[str(cat)] = CategoryMeta(keypoint_names=tuple(str(n) for n in names), groups=norm)
    return out


def _names_list(names: Any, where: str) -> list[Any]:
    """Keypoint names as a list indexed by id, from a list or an ``{id: name}`` mapping."""
    if isinstance(names, list):
        return names
    if not isinstance(names, Mapping):
        raise DatasetFormatError(f"{where} must be a list of names or an object "
                                 f"{{id: name}}, got {type(names).__name__}")
    by_id: dict[int, Any] = {}
    for key, name in names.items():
        try:
            i = int(key)
        except (TypeError, ValueError):
            raise DatasetFormatError(f"{where}: key {key!r} is not an integer id") from None
        if i < 0 or i in by_id:
            raise DatasetFormatError(f"{where}: id {key!r} is negative or repeated")
        by_id[i] = name
    missing = sorted(set(range(len(by_id))) - set(by_id))
    if missing:
        raise DatasetFormatError(f"{where}: ids must be 0..{len(by_id) - 1}; missing "
                                 f"{missing[:10]}")
    return [by_id[i] for i in range(len(by_id))]


def _first(entry: Mapping[str, Any], keys: tuple[str, ...], default: Any) -> Any:
    for k in keys:
        if k in entry:
            return entry[k]
    return default


class SPairDataset:
    """SPair-71k (or the procedural benchmark) on disk.

    Args:
        root: dataset root (the folder holding ``PairAnnotation/``).
        layout: ``"large"`` (the standard split files) or ``"small"``.

    Raises:
        FileNotFoundError: ``root`` or ``root/PairAnnotation`` does not exist.
    """

    name = "spair"
    threshold_rule: ThresholdRule = "bbox"
    default_alphas = (0.01, 0.05, 0.1)

    def __init__(self, root: str | Path, layout: str = "large") -> None:
        self.root = require_dir(Path(root), "SPair-71k root")
        require_dir(self.root / "PairAnnotation",
                    f"SPair-71k root {self.root} has no PairAnnotation/; wrong --root?")
        self.layout = layout
        self._confined = Confined(self.root)  # names from the annotations stay inside the root
        self._stem_sources: dict[str, Path | str] = {}  # split -> where its pair stems come from
        meta_path = self.root / "Meta" / "categories.json"
        self.meta: dict[str, CategoryMeta] = (load_category_meta(meta_path)
                                              if meta_path.is_file() else {})
        self._trg_visible_cache: dict[tuple[str, str],
                                      tuple[np.ndarray, np.ndarray] | None] = {}

    # ------------------------------------------------------------------ queries
    def splits(self) -> tuple[str, ...]:
        found = []
        for s in ("trn", "val", "test"):
            if (self._layout_file(s).is_file()
                    or (self.root / "PairAnnotation" / s).is_dir()):
                found.append(s)
        return tuple(found)

    def categories(self) -> tuple[str, ...]:
        """Categories with an image folder (or, failing that, listed in the metadata)."""
        img = self.root / "JPEGImages"
        if img.is_dir():
            return tuple(sorted(p.name for p in img.iterdir() if p.is_dir()))
        return tuple(sorted(self.meta))

    def geometry_groups(self, category: str) -> tuple[tuple[int, ...], ...]:
        """Same-part groups: ``Meta/categories.json``'s for its categories, else SPair's."""
        if category in self.meta:
            return self.meta[category].groups
        return SPAIR_GROUPS.get(category, ())

    def geometry_groups_source(self, category: str) -> str:
        """Where :meth:`geometry_groups` comes from: ``"Meta/categories.json"``,
        ``"SPair-71k built-in"`` or ``"none"``."""
        if category in self.meta:
            return GROUPS_FROM_META
        return GROUPS_SPAIR if category in SPAIR_GROUPS else GROUPS_NONE

    def keypoint_names(self, category: str) -> tuple[str, ...] | None:
        """Keypoint names from the metadata, ``None`` when unknown (real SPair has none on disk)."""
        return self.meta[category].keypoint_names if category in self.meta else None

    def image_path(self, category: str, imname: str, *,
                   source: str | Path | None = None) -> Path:
        """``ROOT/JPEGImages/<category>/<imname>``, checked to stay inside the root.

        Raises:
            DatasetFormatError: the path leads outside the root (names ``source``).
        """
        return self._confined.join("JPEGImages", category, imname,
                                   source=source or "SPair-71k image", what="image")

    def segmentation_path(self, category: str, imname: str, *,
                          source: str | Path | None = None) -> Path:
        """``ROOT/Segmentation/<category>/<image stem>.png``, checked like :meth:`image_path`."""
        return self._confined.join("Segmentation", category, Path(imname).stem + ".png",
                                   source=source or "SPair-71k segmentation",
                                   what="segmentation")

    # ------------------------------------------------------------------ pairs
    def pair_stems(self, split: str) -> list[str]:
        """Pair stems of ``split`` in split-file order."""
        split = self._split(split)
        layout = self._layout_file(split)
        if layout.is_file():
            return [ln.strip() for ln in layout.read_text(encoding="utf-8").splitlines()
                    if ln.strip()]
        folder = self.root / "PairAnnotation" / split
        if folder.is_dir():
            return sorted(p.stem for p in folder.glob("*.json"))
        raise FileNotFoundError(f"SPair-71k split '{split}': neither {layout} nor {folder} "
                                f"exists (splits on disk: {', '.join(self.splits()) or 'none'})")

    def pairs(self, split: str, *, progress: bool = False) -> list[KeypointPair]:
        """Load every pair of ``split`` (``trn``/``val``/``test``; ``train`` is accepted).

        Args:
            split: split name.
            progress: show a rich progress bar (12k files take a few seconds).
        """
        split = self._split(split)
        stems = self.pair_stems(split)
        it = stems
        if progress:
            from rich.progress import track

            it = track(stems, description=f"SPair {split} pairs")
        return [self.load_pair(split, s) for s in it]

    def load_pair(self, split: str, stem: str) -> KeypointPair:
        """Parse ``PairAnnotation/<split>/<stem>.json``."""
        split = self._split(split)
        if split not in self._stem_sources:
            layout = self._layout_file(split)
            self._stem_sources[split] = layout if layout.is_file() else "SPair-71k pair stem"
        path = self._confined.join("PairAnnotation", split, f"{stem}.json",
                                   source=self._stem_sources[split], what="pair stem")
        if not path.is_file():
            raise FileNotFoundError(f"SPair-71k pair '{stem}' listed for split '{split}' has no "
                                    f"annotation file {path}")
        d = read_json(path)
        category = str(require_field(d, "category", path))
        src_kps = as_points(require_field(d, "src_kps", path), path, "src_kps")
        trg_kps = as_points(require_field(d, "trg_kps", path), path, "trg_kps")
        raw_ids = require_field(d, "kps_ids", path)
        try:
            ids = np.array([int(i) for i in raw_ids], dtype=np.int64)
        except (TypeError, ValueError):
            raise DatasetFormatError(f"{path}: field 'kps_ids' must be integers, "
                                     f"got {raw_ids!r}") from None
        if not (len(src_kps) == len(trg_kps) == len(ids)):
            raise DatasetFormatError(f"{path}: src_kps ({len(src_kps)}), trg_kps "
                                     f"({len(trg_kps)}) and kps_ids ({len(ids)}) differ in length")
        src_name = str(require_field(d, "src_imname", path))
        trg_name = str(require_field(d, "trg_imname", path))
        src_image = self.image_path(category, src_name, source=path)
        trg_image = self.image_path(category, trg_name, source=path)
        vis = self.visible_keypoints(category, trg_name, source=path)
        flags = {}
        for f in SPAIR_FLAGS:
            if f in d and d[f] is not None:
                try:
                    flags[f] = int(d[f])
                except (TypeError, ValueError):
                    raise DatasetFormatError(f"{path}: field '{f}' must be an integer, "
                                             f"got {d[f]!r}") from None
        return KeypointPair(
            pair_id=stem, category=category,
            src_image=src_image, trg_image=trg_image,
            src_kps=src_kps, trg_kps=trg_kps, kps_ids=ids,
            src_bbox=as_box(require_field(d, "src_bndbox", path), path, "src_bndbox"),
            trg_bbox=as_box(require_field(d, "trg_bndbox", path), path, "trg_bndbox"),
            src_size=as_size(require_field(d, "src_imsize", path), path, "src_imsize"),
            trg_size=as_size(require_field(d, "trg_imsize", path), path, "trg_imsize"),
            flags=flags, trg_visible_ids=vis[0] if vis else None,
            trg_visible_kps=vis[1] if vis else None)

    def visible_ids(self, category: str, imname: str) -> np.ndarray | None:
        """Ids of keypoints annotated (non-null) in an image's JSON; ``None`` if it has none."""
        vis = self.visible_keypoints(category, imname)
        return None if vis is None else vis[0]

    def visible_keypoints(self, category: str, imname: str, *,
                          source: str | Path | None = None
                          ) -> tuple[np.ndarray, np.ndarray] | None:
        """``(ids (M,), positions (M, 2))`` of an image's annotated keypoints, sorted by id.

        ``None`` when the image has no JSON in ``ImageAnnotation/`` (tolerated).

        Raises:
            DatasetFormatError: the JSON's path leads outside the root (names ``source``).
        """
        key = (category, imname)
        if key not in self._trg_visible_cache:
            path = self._confined.join("ImageAnnotation", category,
                                       Path(imname).stem + ".json",
                                       source=source or "SPair-71k image",
                                       what="image annotation")
            self._trg_visible_cache[key] = (_read_visible(path) if path.is_file() else None)
        return self._trg_visible_cache[key]

    # ------------------------------------------------------------------ internals
    def _split(self, split: str) -> str:
        split = _SPLIT_ALIASES.get(split, split)
        if split not in ("trn", "val", "test"):
            raise ValueError(f"unknown SPair-71k split {split!r}; use trn, val or test")
        return split

    def _layout_file(self, split: str) -> Path:
        return self.root / "Layout" / self.layout / f"{split}.txt"


def _read_visible(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Non-null entries of an image JSON's ``kps`` dict: ``(ids (M,), xy (M, 2))``."""
    kps = require_field(read_json(path), "kps", path)
    if not isinstance(kps, Mapping):
        raise DatasetFormatError(f"{path}: field 'kps' must be an object "
                                 f"\"id\" -> [x, y] or null")
    items = []
    for k, v in kps.items():
        if v is None:
            continue
        try:
            items.append((int(k), v))
        except ValueError:
            raise DatasetFormatError(f"{path}: field 'kps' keys must be integer ids, "
                                     f"got {k!r}") from None
    items.sort(key=lambda kv: kv[0])
    ids = np.array([i for i, _ in items], dtype=np.int64)
    xy = as_points([v for _, v in items], path, "kps")
    return ids, xy.reshape(len(ids), 2)

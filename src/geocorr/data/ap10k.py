"""AP-10K cross-species keypoint benchmark reader (SPair-like per-image/per-pair JSON).

Layout [unverified: the public description only fixes the per-image JSON;
this is the SPair-style arrangement the correspondence papers build from it]::

    ROOT/JPEGImages/<...>/<image>.jpg
    ROOT/ImageAnnotation/<...>/<image>.json        searched recursively, by file stem
    ROOT/PairAnnotation/<split>/<pair stem>.json   split = any sub-folder, e.g. test,
                                                   test_cross_species, test_cross_family

Image JSON: COCO-style ``bbox`` ``[x, y, w, h]`` and ``keypoints`` (17 x 3
``x, y, visibility``, nested or flat). The image size comes from ``width`` /
``height`` (or ``image_width`` / ``image_height``), else from the image file.
The species is ``name`` / ``species`` / ``category`` or the JSON's folder name.

Pair JSON names its two images by ``src_json_path`` / ``trg_json_path``
(image-JSON paths; resolved against the root, then by file stem) or by
``src_imname`` / ``trg_imname`` (file names, resolved by stem). Keypoints of
a pair are those visible (``visibility > 0`` [unverified]) in both images;
pairs are expected to have at least 3 (the benchmark's construction rule;
not re-checked). ``category`` in the pair JSON, when present, overrides the
target's species.

Confinement: every path built from the annotations (``src_json_path`` /
``trg_json_path``, the image JSON's image path, files found by stem) must
resolve inside the root (:func:`geocorr.data.paths.inside`: no absolute
paths, no ``..`` or symbolic link leading out); anything else is a
:class:`~geocorr.data.pairs.DatasetFormatError` naming the file and the value.

PCK threshold: ``alpha * max(w, h)`` of the target bbox. Geometry-aware
groups: :data:`geocorr.data.keypoint_groups.AP10K_GROUPS` for every species.
Pair ids: the pair file stem.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geocorr.data.keypoint_groups import AP10K_GROUPS, GROUPS_AP10K
from geocorr.data.pairs import (
    DatasetFormatError,
    KeypointPair,
    ThresholdRule,
    image_size,
    read_json,
    require_dir,
    require_field,
)
from geocorr.data.paths import inside

__all__ = ["AP10KDataset", "AP10KImage", "load_ap10k_image", "AP10K_NUM_KPS"]

AP10K_NUM_KPS = 17
_IMAGE_KEYS = ("img_path", "image_path", "file_name", "filename", "imname")


@dataclass(frozen=True)
class AP10KImage:
    """One parsed AP-10K image annotation.

    Attributes:
        json_path: the annotation file.
        image: path of the image (may not exist when the size is in the JSON).
        species: species name.
        size: ``(W, H)``.
        bbox: ``(4,)`` ``[x1, y1, x2, y2]`` (converted from COCO ``[x, y, w, h]``).
        kps: ``(17, 2)`` float64 keypoints.
        visible: ``(17,)`` bool, ``visibility > 0``.
    """

    json_path: Path
    image: Path
    species: str
    size: tuple[int, int]
    bbox: np.ndarray
    kps: np.ndarray
    visible: np.ndarray


def load_ap10k_image(path: Path, root: Path) -> AP10KImage:
    """Parse one image JSON (see the module docstring for the fields).

    Raises:
        DatasetFormatError: a missing or ill-shaped field (names file and field),
            or ``path`` or the image path it names leads outside ``root``.
    """
    inside(root, os.path.relpath(path, root), source=path, what="image annotation")
    d = read_json(path)
    raw = require_field(d, "keypoints", path)
    try:
        k = np.asarray(raw, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DatasetFormatError(f"{path}: field 'keypoints' must be numbers") from None
    if k.size != AP10K_NUM_KPS * 3:
        raise DatasetFormatError(f"{path}: field 'keypoints' must hold 17 x 3 values "
                                 f"(x, y, visibility), got {k.size}")
    k = k.reshape(AP10K_NUM_KPS, 3)
    box = require_field(d, "bbox", path)
    try:
        b = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DatasetFormatError(f"{path}: field 'bbox' must be [x, y, w, h]") from None
    if b.shape != (4,) or not np.all(np.isfinite(b)) or b[2] <= 0 or b[3] <= 0:
        raise DatasetFormatError(f"{path}: field 'bbox' must be [x, y, w, h] with w, h > 0, "
                                 f"got {box!r}")
    key = next((key for key in _IMAGE_KEYS if d.get(key)), None)
    if key is not None:
        rel, what = str(d[key]), f"field '{key}'"
        cands = [inside(root, rel, source=path, what=what),
                 inside(root, "JPEGImages", rel, source=path, what=what),
                 inside(root, os.path.relpath(path.parent / Path(rel).name, root),
                        source=path, what=what)]
        image = next((c for c in cands if c.is_file()), cands[0])
    else:
        sub = path.parent.relative_to(root / "ImageAnnotation") \
            if (root / "ImageAnnotation") in path.parents else Path()
        image = inside(root, "JPEGImages", sub, path.stem + ".jpg", source=path, what="image")
    w = d.get("width", d.get("image_width"))
    h = d.get("height", d.get("image_height"))
    if w is not None and h is not None:
        try:
            size = (int(w), int(h))
        except (TypeError, ValueError):
            raise DatasetFormatError(f"{path}: fields 'width'/'height' must be integers") \
                from None
        if size[0] <= 0 or size[1] <= 0:
            raise DatasetFormatError(f"{path}: fields 'width'/'height' must be positive")
    else:
        size = image_size(image)
    species = next((str(d[key]) for key in ("name", "species", "category") if d.get(key)),
                   path.parent.name)
    visible = (k[:, 2] > 0) & np.all(np.isfinite(k[:, :2]), axis=1)
    return AP10KImage(json_path=path, image=image, species=species, size=size,
                      bbox=np.array([b[0], b[1], b[0] + b[2], b[1] + b[3]]),
                      kps=k[:, :2].copy(), visible=visible)


class AP10KDataset:
    """AP-10K in the SPair-like layout.

    Args:
        root: the folder holding ``ImageAnnotation/`` and ``PairAnnotation/``.

    Raises:
        FileNotFoundError: ``root`` or its ``PairAnnotation/`` does not exist.
    """

    name = "ap10k"
    threshold_rule: ThresholdRule = "bbox"
    default_alphas = (0.01, 0.05, 0.1)

    def __init__(self, root: str | Path) -> None:
        self.root = require_dir(Path(root), "AP-10K root")
        require_dir(self.root / "PairAnnotation",
                    f"AP-10K root {self.root} has no PairAnnotation/; wrong --root?")
        self._by_stem: dict[str, Path] | None = None
        self._images: dict[Path, AP10KImage] = {}

    def splits(self) -> tuple[str, ...]:
        return tuple(sorted(p.name for p in (self.root / "PairAnnotation").iterdir()
                            if p.is_dir()))

    def geometry_groups(self, category: str) -> tuple[tuple[int, ...], ...]:
        """AP-10K's same-part groups; identical for every species."""
        return AP10K_GROUPS

    def geometry_groups_source(self, category: str) -> str:
        """``"AP-10K built-in"``: the one table for every species."""
        return GROUPS_AP10K

    def pairs(self, split: str) -> list[KeypointPair]:
        """Every pair JSON of ``PairAnnotation/<split>/``, sorted by stem."""
        folder = self.root / "PairAnnotation" / split
        if not folder.is_dir():
            raise FileNotFoundError(f"AP-10K split '{split}': no folder {folder} (splits on "
                                    f"disk: {', '.join(self.splits()) or 'none'})")
        return [self.load_pair(p) for p in sorted(folder.glob("*.json"))]

    def load_pair(self, path: Path) -> KeypointPair:
        """Parse one pair JSON."""
        d = read_json(path)
        src = self._image_for(d, "src", path)
        trg = self._image_for(d, "trg", path)
        both = src.visible & trg.visible
        ids = np.flatnonzero(both).astype(np.int64)
        category = str(d["category"]) if isinstance(d, Mapping) and d.get("category") \
            else trg.species
        return KeypointPair(
            pair_id=path.stem, category=category, src_image=src.image, trg_image=trg.image,
            src_kps=src.kps[both], trg_kps=trg.kps[both], kps_ids=ids,
            src_bbox=src.bbox, trg_bbox=trg.bbox, src_size=src.size, trg_size=trg.size,
            trg_visible_ids=np.flatnonzero(trg.visible).astype(np.int64),
            trg_visible_kps=trg.kps[trg.visible])

    def image(self, json_path: Path) -> AP10KImage:
        """Parsed (cached) image annotation."""
        if json_path not in self._images:
            self._images[json_path] = load_ap10k_image(json_path, self.root)
        return self._images[json_path]

    # ------------------------------------------------------------------ internals
    def _image_for(self, d: Any, side: str, path: Path) -> AP10KImage:
        if not isinstance(d, Mapping):
            raise DatasetFormatError(f"{path}: expected a JSON object")
        ref = d.get(f"{side}_json_path") or d.get(f"{side}_imname")
        if not ref:
            raise DatasetFormatError(f"{path}: missing field '{side}_json_path' "
                                     f"(or '{side}_imname')")
        ref_path = Path(str(ref))
        what = f"field '{side}_json_path'" if d.get(f"{side}_json_path") \
            else f"field '{side}_imname'"
        for cand in (inside(self.root, ref_path, source=path, what=what),
                     inside(self.root, "ImageAnnotation", ref_path, source=path, what=what)):
            if cand.suffix == ".json" and cand.is_file():
                return self.image(cand)
        found = self._stems().get(ref_path.stem)
        if found is None:
            raise FileNotFoundError(f"{path}: field '{side}_json_path' = {ref!r}: no image "
                                    f"annotation {ref_path.stem}.json under "
                                    f"{self.root / 'ImageAnnotation'}")
        return self.image(found)

    def _stems(self) -> dict[str, Path]:
        if self._by_stem is None:
            ann = self.root / "ImageAnnotation"
            self._by_stem = {p.stem: p for p in ann.rglob("*.json")} if ann.is_dir() else {}
        return self._by_stem

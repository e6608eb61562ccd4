"""PF-PASCAL reader.

Layout::

    ROOT/JPEGImages/<image>.jpg
    ROOT/Annotations/<class>/<image>.mat          ``kps`` (N, 2) with NaN rows, ``bbox``
    ROOT/{test,val,trn}_pairs.csv                 the split files

Test/val CSV columns: ``source_image,target_image,class,XA,YA,XB,YB`` where
``class`` is 1-based over the 20 VOC classes in alphabetical order and
``XA..YB`` are ``;``-separated floats. Train CSV:
``source_image,target_image,class,flip``; its keypoints come from the
``.mat`` files (rows finite in both images).

PCK threshold: ``alpha * max(H, W)`` of the target image (image sizes are read
from the image headers, so the images must be present).

Tolerance ([unverified] facts of the format): coordinates look 1-based and
are used as given (nobody subtracts 1); image columns may be
``JPEGImages/x.jpg``, ``PF-dataset-PASCAL/JPEGImages/x.jpg`` or a bare file
name and are resolved against the root, its parent (only where that lands
inside the root: ``<root name>/JPEGImages/x.jpg``) and ``JPEGImages/``; an
absolute image path, or one leading out of the root (``..``, a symbolic link
to elsewhere) is an error naming the CSV line and the value
(:func:`geocorr.data.paths.inside`);
split files may also be named ``<split>_pairs_pf_pascal.csv`` and ``train``
is accepted for ``trn``; a keypoint that is NaN on either side is dropped (its
index stays its id); a missing ``.mat`` only leaves the boxes empty. The
train split's ``flip`` column is recorded in ``flags["flip"]``: keypoints are
*not* mirrored here, a consumer honouring it mirrors images and points itself.

Pair ids: ``"<6-digit 0-based CSV row>-<source stem>-<target stem>"``.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from geocorr.data.pairs import (
    DatasetFormatError,
    KeypointPair,
    ThresholdRule,
    image_size,
    require_dir,
)
from geocorr.data.paths import inside

__all__ = ["PFPascalDataset", "VOC_CLASSES", "load_mat_annotation"]

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")
"""PF-PASCAL's class ids 1..20 index this tuple (minus one)."""

_Mat = tuple[np.ndarray, np.ndarray | None]
_SPLIT_FILES = {"test": ("test",), "val": ("val",), "trn": ("trn", "train")}


def load_mat_annotation(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read ``kps`` ``(N, 2)`` (NaN rows = missing) and ``bbox`` ``(4,)`` from a PF ``.mat``.

    Raises:
        FileNotFoundError: no such file.
        DatasetFormatError: unreadable file or missing/ill-shaped ``kps``.
    """
    from scipy.io import loadmat

    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} does not exist")
    try:
        m = loadmat(path)
    except Exception as exc:  # scipy raises several types for corrupt files
        raise DatasetFormatError(f"{path}: cannot read .mat file ({exc})") from None
    if "kps" not in m:
        raise DatasetFormatError(f"{path}: missing field 'kps'")
    kps = np.asarray(m["kps"], dtype=np.float64)
    if kps.size == 0:
        kps = kps.reshape(0, 2)
    if kps.ndim != 2 or kps.shape[1] != 2:
        raise DatasetFormatError(f"{path}: field 'kps' must be (N, 2), got {kps.shape}")
    bbox = None
    if "bbox" in m:
        b = np.asarray(m["bbox"], dtype=np.float64).reshape(-1)
        if b.shape != (4,):
            raise DatasetFormatError(f"{path}: field 'bbox' must be [x1, y1, x2, y2], "
                                     f"got shape {b.shape}")
        bbox = b
    return kps, bbox


class PFPascalDataset:
    """PF-PASCAL on disk.

    Args:
        root: the folder holding ``JPEGImages/`` and the split CSVs.

    Raises:
        FileNotFoundError: ``root`` does not exist.
    """

    name = "pfpascal"
    threshold_rule: ThresholdRule = "image"
    default_alphas = (0.05, 0.1, 0.15)

    def __init__(self, root: str | Path) -> None:
        self.root = require_dir(Path(root), "PF-PASCAL root")
        self._sizes: dict[Path, tuple[int, int]] = {}
        self._mats: dict[Path, _Mat | None] = {}

    def splits(self) -> tuple[str, ...]:
        return tuple(s for s in _SPLIT_FILES if self._split_file(s) is not None)

    def geometry_groups(self, category: str) -> tuple[tuple[int, ...], ...]:
        """PF-PASCAL's keypoints have no fixed per-class numbering: no groups."""
        return ()

    def geometry_groups_source(self, category: str) -> str:
        """``"none"``: no group table exists for PF-PASCAL."""
        return "none"

    def pairs(self, split: str) -> list[KeypointPair]:
        """All pairs of ``split`` (``test``, ``val``, ``trn``/``train``), in CSV order."""
        split = "trn" if split == "train" else split
        if split not in _SPLIT_FILES:
            raise ValueError(f"unknown PF-PASCAL split {split!r}; use test, val or trn")
        path = self._split_file(split)
        if path is None:
            raise FileNotFoundError(f"PF-PASCAL split '{split}': no {split}_pairs.csv in "
                                    f"{self.root}; wrong --root?")
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        if not rows:
            raise DatasetFormatError(f"{path}: empty split file")
        header = [h.strip() for h in rows[0]]
        body = rows[1:] if "source_image" in header else rows
        if "source_image" not in header:
            header = (["source_image", "target_image", "class", "XA", "YA", "XB", "YB"]
                      if len(rows[0]) >= 7 else ["source_image", "target_image", "class", "flip"])
        col = {h: i for i, h in enumerate(header)}
        has_kps = all(k in col for k in ("XA", "YA", "XB", "YB"))
        out = []
        for i, row in enumerate(body):
            line = i + 2 if body is not rows else i + 1
            where = f"{path}:{line}"
            if not any(c.strip() for c in row):
                continue
            if len(row) < len(header):
                raise DatasetFormatError(f"{where}: expected {len(header)} columns "
                                         f"({','.join(header)}), got {len(row)}")
            src = self._image(row[col["source_image"]].strip(), where)
            trg = self._image(row[col["target_image"]].strip(), where)
            try:
                cls = int(float(row[col["class"]]))
            except ValueError:
                raise DatasetFormatError(f"{where}: column 'class' must be 1..20, "
                                         f"got {row[col['class']]!r}") from None
            if not 1 <= cls <= 20:
                raise DatasetFormatError(f"{where}: column 'class' must be 1..20, got {cls}")
            category = VOC_CLASSES[cls - 1]
            flags: dict[str, int] = {}
            if has_kps:
                sk = _xy(row[col["XA"]], row[col["YA"]], where, "XA/YA")
                tk = _xy(row[col["XB"]], row[col["YB"]], where, "XB/YB")
                if len(sk) != len(tk):
                    raise DatasetFormatError(f"{where}: source has {len(sk)} keypoints, "
                                             f"target {len(tk)}")
            else:
                sk = self._mat(category, src, where)[0]
                tk = self._mat(category, trg, where)[0]
                if len(sk) != len(tk):
                    raise DatasetFormatError(f"{where}: .mat files of {src.name} and {trg.name} "
                                             f"have {len(sk)} and {len(tk)} keypoint rows")
                if "flip" in col:
                    flags["flip"] = int(float(row[col["flip"]] or 0))
            ok = np.all(np.isfinite(sk), axis=1) & np.all(np.isfinite(tk), axis=1)
            src_mat = self._mat_or_none(category, src)
            trg_mat = self._mat_or_none(category, trg)
            out.append(KeypointPair(
                pair_id=f"{i:06d}-{src.stem}-{trg.stem}", category=category,
                src_image=src, trg_image=trg, src_kps=sk[ok], trg_kps=tk[ok],
                kps_ids=np.flatnonzero(ok).astype(np.int64),
                src_bbox=None if src_mat is None else src_mat[1],
                trg_bbox=None if trg_mat is None else trg_mat[1],
                src_size=self._size(src), trg_size=self._size(trg), flags=flags))
        return out

    # ------------------------------------------------------------------ internals
    def _split_file(self, split: str) -> Path | None:
        for name in _SPLIT_FILES[split]:
            for pattern in (f"{name}_pairs.csv", f"{name}_pairs_pf_pascal.csv"):
                p = self.root / pattern
                if p.is_file():
                    return p
        return None

    def _image(self, rel: str, where: str) -> Path:
        if not rel:
            raise DatasetFormatError(f"{where}: empty image path")
        name = Path(rel)
        cands = [inside(self.root, rel, source=where, what="image")]
        if len(name.parts) > 1 and name.parts[0] in (self.root.name, self.root.resolve().name):
            cands.append(inside(self.root, *name.parts[1:], source=where, what="image"))
        cands.append(inside(self.root, "JPEGImages", name.name, source=where, what="image"))
        for cand in cands:
            if cand.is_file():
                return cand
        raise FileNotFoundError(f"{where}: image '{rel}' not found under {self.root} "
                                f"(tried {', '.join(str(c) for c in cands)})")

    def _size(self, path: Path) -> tuple[int, int]:
        if path not in self._sizes:
            self._sizes[path] = image_size(path)
        return self._sizes[path]

    def _mat_path(self, category: str, image: Path) -> Path:
        return inside(self.root, "Annotations", category, image.stem + ".mat",
                      source=f"annotation of {image}", what="annotation")

    def _mat(self, category: str, image: Path, where: str) -> _Mat:
        got = self._mat_or_none(category, image)
        if got is None:
            raise FileNotFoundError(f"{where}: keypoint annotation "
                                    f"{self._mat_path(category, image)} does not exist")
        return got

    def _mat_or_none(self, category: str, image: Path) -> _Mat | None:
        p = self._mat_path(category, image)
        if p not in self._mats:
            self._mats[p] = load_mat_annotation(p) if p.is_file() else None
        return self._mats[p]


def _xy(xs: str, ys: str, where: str, what: str) -> np.ndarray:
    try:
        x = [float(v) for v in xs.split(";") if v.strip()]
        y = [float(v) for v in ys.split(";") if v.strip()]
    except ValueError:
        raise DatasetFormatError(f"{where}: columns {what} must be ';'-separated numbers") \
            from None
    if len(x) != len(y):
        raise DatasetFormatError(f"{where}: columns {what} have {len(x)} x and {len(y)} y values")
    return np.stack([np.asarray(x, np.float64), np.asarray(y, np.float64)], axis=1) \
        if x else np.zeros((0, 2))

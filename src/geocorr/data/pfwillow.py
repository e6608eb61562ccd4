"""PF-WILLOW reader.

Layout::

    ROOT/PF-dataset/<subclass>/<name>.png (+ <name>.mat)
    ROOT/test_pairs_pf.csv

CSV columns: 0, 1 = image paths; 2..21 = source ``x1..x10`` then ``y1..y10``;
22..41 = target likewise. 900 pairs, 10 keypoints each. The category is the
image's sub-class folder (``car(G)``, ``duck(S)``...).

PCK threshold: ``alpha * max(h, w)`` of the bounding box of the *target*
keypoints [unverified: the field's code is read as measuring the evaluated
image's keypoints; some works use the source's].

Tolerance ([unverified] facts of the format): a header row is skipped when
its coordinate columns are not numbers; image paths are resolved against the
root, ``ROOT/PF-dataset`` and the root's parent (only where that lands inside
the root: ``<root name>/PF-dataset/...``); an absolute image path, or one
leading out of the root (``..``, a symbolic link to elsewhere) is an error
naming the CSV line and the value (:func:`geocorr.data.paths.inside`);
coordinates are used as
given; a keypoint that is NaN on either side is dropped. Image sizes come
from the image headers (the images must be present).

Pair ids: ``"<6-digit 0-based data row>-<source stem>-<target stem>"``.
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

__all__ = ["PFWillowDataset"]

_NUM_KPS = 10


class PFWillowDataset:
    """PF-WILLOW on disk (only a ``test`` split exists).

    Args:
        root: the folder holding ``test_pairs_pf.csv`` and ``PF-dataset/``.

    Raises:
        FileNotFoundError: ``root`` does not exist.
    """

    name = "pfwillow"
    threshold_rule: ThresholdRule = "keypoints"
    default_alphas = (0.05, 0.1, 0.15)

    def __init__(self, root: str | Path) -> None:
        self.root = require_dir(Path(root), "PF-WILLOW root")
        self._sizes: dict[Path, tuple[int, int]] = {}

    def splits(self) -> tuple[str, ...]:
        return ("test",) if (self.root / "test_pairs_pf.csv").is_file() else ()

    def geometry_groups(self, category: str) -> tuple[tuple[int, ...], ...]:
        """PF-WILLOW has no same-part group table: no geometry-aware subset."""
        return ()

    def geometry_groups_source(self, category: str) -> str:
        """``"none"``: no group table exists for PF-WILLOW."""
        return "none"

    def pairs(self, split: str = "test") -> list[KeypointPair]:
        """The 900 test pairs, in CSV order."""
        if split != "test":
            raise ValueError(f"PF-WILLOW only has a 'test' split, got {split!r}")
        path = self.root / "test_pairs_pf.csv"
        if not path.is_file():
            raise FileNotFoundError(f"PF-WILLOW split file {path} does not exist; wrong --root?")
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        out = []
        n_cols = 2 + 4 * _NUM_KPS
        data_index = 0
        for line, row in enumerate(rows, start=1):
            where = f"{path}:{line}"
            if not any(c.strip() for c in row):
                continue
            if len(row) < n_cols:
                raise DatasetFormatError(f"{where}: expected {n_cols} columns (2 image paths + "
                                         f"4 x {_NUM_KPS} coordinates), got {len(row)}")
            try:
                coords = np.array([float(v) for v in row[2:n_cols]], dtype=np.float64)
            except ValueError:
                if line == 1:
                    continue  # header row
                raise DatasetFormatError(f"{where}: coordinate columns 2..{n_cols - 1} must be "
                                         f"numbers") from None
            k = _NUM_KPS
            sk = np.stack([coords[0:k], coords[k:2 * k]], axis=1)
            tk = np.stack([coords[2 * k:3 * k], coords[3 * k:4 * k]], axis=1)
            src = self._image(row[0].strip(), where)
            trg = self._image(row[1].strip(), where)
            ok = np.all(np.isfinite(sk), axis=1) & np.all(np.isfinite(tk), axis=1)
            out.append(KeypointPair(
                pair_id=f"{data_index:06d}-{src.stem}-{trg.stem}", category=trg.parent.name,
                src_image=src, trg_image=trg, src_kps=sk[ok], trg_kps=tk[ok],
                kps_ids=np.flatnonzero(ok).astype(np.int64), src_bbox=None, trg_bbox=None,
                src_size=self._size(src), trg_size=self._size(trg)))
            data_index += 1
        return out

    def _image(self, rel: str, where: str) -> Path:
        if not rel:
            raise DatasetFormatError(f"{where}: empty image path")
        name = Path(rel)
        tail = name.parts[-2:] if len(name.parts) >= 2 else name.parts
        cands = [inside(self.root, rel, source=where, what="image"),
                 inside(self.root, "PF-dataset", *tail, source=where, what="image")]
        if len(name.parts) > 1 and name.parts[0] in (self.root.name, self.root.resolve().name):
            cands.append(inside(self.root, *name.parts[1:], source=where, what="image"))
        for cand in cands:
            if cand.is_file():
                return cand
        raise FileNotFoundError(f"{where}: image '{rel}' not found (tried "
                                f"{', '.join(str(c) for c in cands)})")

    def _size(self, path: Path) -> tuple[int, int]:
        if path not in self._sizes:
            self._sizes[path] = image_size(path)
        return self._sizes[path]

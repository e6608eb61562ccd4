"""TSS (Taniai et al., CVPR 2016) reader: dense flow ground truth, scored by flow PCK.

Layout::

    ROOT/{FG3DCar,JODS,PASCAL}/<pair>/image1.png image2.png
                                      flow1.flo flow2.flo mask1.png mask2.png flip_gt.txt

``flowK`` and ``maskK`` live on image K's pixel grid and point into the other
image: pixel ``p`` of image 2 corresponds to ``p + flow2[p]`` in image 1.
Each pair is scored in both directions (:class:`TSSDirection`), 400 pairs ->
800 entries; see :func:`geocorr.evaluation.flow_pck.score_tss_flow`.

Tolerance ([unverified]): a mask pixel is foreground when non-zero (any
channel); ``flip_gt.txt`` holds a single 0/1 and is recorded as given
(``None`` when absent or unreadable); pair folders missing any of the six
image/flow/mask files are an error naming the file. A pair folder or file
that is a symbolic link leading out of the root is an error naming it
(:func:`geocorr.data.paths.inside`; link the root itself instead).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from geocorr.data.flo import read_flo
from geocorr.data.images import read_mask
from geocorr.data.pairs import DatasetFormatError, image_size, require_dir
from geocorr.data.paths import inside

__all__ = ["TSSDataset", "TSSPair", "TSSDirection", "TSS_SUBSETS", "load_mask"]

TSS_SUBSETS = ("FG3DCar", "JODS", "PASCAL")
_FILES = ("image1.png", "image2.png", "flow1.flo", "flow2.flo", "mask1.png", "mask2.png")


@dataclass(frozen=True)
class TSSPair:
    """One TSS pair folder.

    Attributes:
        pair_id: ``"<subset>/<folder>"``.
        subset: ``FG3DCar``, ``JODS`` or ``PASCAL``.
        folder: the pair folder.
        flipped: ``flip_gt.txt`` (the two images are mirror views), ``None`` if absent.
    """

    pair_id: str
    subset: str
    folder: Path
    flipped: bool | None

    def image(self, k: int) -> Path:
        return self.folder / f"image{k}.png"

    def flow_path(self, k: int) -> Path:
        return self.folder / f"flow{k}.flo"

    def mask_path(self, k: int) -> Path:
        return self.folder / f"mask{k}.png"

    def directions(self) -> tuple[TSSDirection, TSSDirection]:
        """``1 -> 2`` (target grid = image 2, gt ``flow2``) and ``2 -> 1``."""
        return TSSDirection(self, 1, 2), TSSDirection(self, 2, 1)


@dataclass(frozen=True)
class TSSDirection:
    """One scored direction of a pair: ``source`` image -> ``target`` image.

    The ground truth is ``flow<target>`` with ``mask<target>``: for each target
    pixel, where it lies in the source. The PCK size is ``L = max(H, W)`` of the source.

    Attributes:
        pair: the pair.
        source: 1 or 2.
        target: the other index.
    """

    pair: TSSPair
    source: Literal[1, 2]
    target: Literal[1, 2]

    @property
    def key(self) -> str:
        """``"<subset>/<folder>:<source>-><target>"``."""
        return f"{self.pair.pair_id}:{self.source}->{self.target}"

    def gt_flow(self) -> np.ndarray:
        """``(H_t, W_t, 2)`` ground-truth flow on the target grid into the source."""
        return read_flo(self.pair.flow_path(self.target))

    def mask(self) -> np.ndarray:
        """``(H_t, W_t)`` bool foreground of the target."""
        return load_mask(self.pair.mask_path(self.target))

    def source_size(self) -> tuple[int, int]:
        """``(W, H)`` of the source image."""
        return image_size(self.pair.image(self.source))

    def target_size(self) -> tuple[int, int]:
        """``(W, H)`` of the target image."""
        return image_size(self.pair.image(self.target))


def load_mask(path: Path) -> np.ndarray:
    """``(H, W)`` bool foreground of a mask image (:func:`geocorr.data.images.read_mask`'s rule)."""
    if not path.is_file():
        raise FileNotFoundError(f"mask {path} does not exist")
    try:
        return read_mask(path)
    except ValueError as exc:
        raise DatasetFormatError(str(exc)) from None


class TSSDataset:
    """TSS on disk.

    Args:
        root: the folder holding ``FG3DCar/``, ``JODS/``, ``PASCAL/``.

    Raises:
        FileNotFoundError: ``root`` does not exist or holds none of the subsets.
    """

    name = "tss"

    def __init__(self, root: str | Path) -> None:
        self.root = require_dir(Path(root), "TSS root")
        if not any((self.root / s).is_dir() for s in TSS_SUBSETS):
            raise FileNotFoundError(f"TSS root {self.root} has none of the subset folders "
                                    f"{', '.join(TSS_SUBSETS)}; wrong --root?")

    def subsets(self) -> tuple[str, ...]:
        return tuple(s for s in TSS_SUBSETS if (self.root / s).is_dir())

    def pairs(self, subset: str | None = None) -> list[TSSPair]:
        """Pairs of one subset (or all), sorted by folder name.

        Raises:
            FileNotFoundError: a pair folder lacks one of its six files.
        """
        if subset is not None and subset not in TSS_SUBSETS:
            raise ValueError(f"unknown TSS subset {subset!r}; use {', '.join(TSS_SUBSETS)}")
        out = []
        for s in (subset,) if subset else self.subsets():
            base = self.root / s
            if not base.is_dir():
                raise FileNotFoundError(f"TSS subset folder {base} does not exist")
            for folder in sorted(p for p in base.iterdir() if p.is_dir()):
                for f in (*_FILES, "flip_gt.txt"):
                    inside(self.root, s, folder.name, f, source=f"TSS pair {folder}",
                           what="pair file")
                for f in _FILES:
                    if not (folder / f).is_file():
                        raise FileNotFoundError(f"TSS pair {folder}: missing {f}")
                out.append(TSSPair(pair_id=f"{s}/{folder.name}", subset=s, folder=folder,
                                   flipped=_read_flip(folder / "flip_gt.txt")))
        return out

    def directions(self, subset: str | None = None) -> Iterator[TSSDirection]:
        """Both directions of every pair (800 for the full benchmark)."""
        for p in self.pairs(subset):
            yield from p.directions()


def _read_flip(path: Path) -> bool | None:
    try:
        return bool(int(path.read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return None

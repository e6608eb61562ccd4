"""Feature grids as the viewer page embeds them, and the page's nearest neighbour in Python.

The page (``viewer.html``) never sees a :class:`~geocorr.features.base.FeatureMap`;
it sees an :class:`EncodedGrid`: the cells whose centre lies on the image
(:func:`geocorr.evaluation.predict.image_cells`, the only cells keypoint
transfer predicts), each L2-normalised and stored as float16, cell-major
(``row, col, channel``), base64. The page computes, for a query cell of the
source grid, the dot product with every target cell (= cosine similarity, as
both are unit vectors) and takes the largest, first in row-major order on
ties. :func:`nearest_cell` is the same computation in Python on the same
decoded numbers; the browser test compares the two.

Pixel <-> cell follows :class:`~geocorr.features.base.FeatureMap`: cell
``(i, j)`` is centred at canvas pixel ``((j + 0.5) S / w - 0.5, (i + 0.5) S / h - 0.5)``,
a canvas pixel ``u`` is ``scale * x + left`` for image pixel ``x``, and a query
pixel belongs to the cell whose centre is nearest (``floor((u + 0.5) w / S)``),
clamped into the stored block.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

from geocorr.evaluation.predict import image_cells
from geocorr.features.base import FeatureMap

__all__ = ["EncodedGrid", "encode_grid", "decode_grid", "query_cell", "cell_center",
           "nearest_cell"]


@dataclass(frozen=True)
class EncodedGrid:
    """The block of a feature map's on-image cells, as embedded in the page.

    Attributes:
        grid: ``(h, w)`` of the whole map (canvas grid).
        block: ``(row0, col0, rows, cols)``: the stored cells, rows
            ``row0 .. row0 + rows - 1`` and cols ``col0 .. col0 + cols - 1``.
        channels: ``C``.
        canvas: canvas side ``S``.
        scale: image pixel -> canvas pixel factor.
        offset: ``(left, top)`` canvas offset of the image.
        data: base64 of ``rows * cols * C`` little-endian float16, cell-major,
            each cell L2-normalised (all-zero cells stay zero).
    """

    grid: tuple[int, int]
    block: tuple[int, int, int, int]
    channels: int
    canvas: int
    scale: float
    offset: tuple[int, int]
    data: str

    def to_json(self) -> dict:
        return {"grid": list(self.grid), "block": list(self.block), "channels": self.channels,
                "canvas": self.canvas, "scale": self.scale, "offset": list(self.offset),
                "data": self.data}


def encode_grid(fmap: FeatureMap) -> EncodedGrid:
    """Encode the on-image cells of ``fmap`` (``(C, h, w)``) as the page embeds them.

    Raises:
        ValueError: no cell centre lies on the image.
    """

    valid = image_cells(fmap)
    if not valid.any():
        raise ValueError(f"feature map {fmap.name!r}: no cell centre lies on the image")
    rows, cols = np.nonzero(valid)
    r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    x = np.asarray(fmap.features[:, r0:r1, c0:c1], dtype=np.float64).transpose(1, 2, 0)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    x = np.where(norm > 1e-12, x / np.maximum(norm, 1e-12), 0.0)
    raw = np.ascontiguousarray(x, dtype="<f2").tobytes()
    t = fmap.transform
    h, w = fmap.grid_size
    return EncodedGrid(grid=(int(h), int(w)), block=(int(r0), int(c0), int(r1 - r0),
                                                     int(c1 - c0)),
                       channels=int(fmap.shape[0]), canvas=int(t.size), scale=float(t.scale),
                       offset=(int(t.left), int(t.top)),
                       data=base64.b64encode(raw).decode("ascii"))


def decode_grid(g: EncodedGrid) -> np.ndarray:
    """``(rows, cols, C)`` float64: the numbers the page computes with."""
    _, _, rows, cols = g.block
    x = np.frombuffer(base64.b64decode(g.data), dtype="<f2")
    return x.astype(np.float64).reshape(rows, cols, g.channels)


def query_cell(g: EncodedGrid, x: float, y: float) -> tuple[int, int]:
    """``(row, col)`` (whole-grid indices) of the stored cell nearest image pixel ``(x, y)``."""
    h, w = g.grid
    r0, c0, rows, cols = g.block
    u = x * g.scale + g.offset[0]
    v = y * g.scale + g.offset[1]
    col = int(np.floor((u + 0.5) * w / g.canvas))
    row = int(np.floor((v + 0.5) * h / g.canvas))
    return (min(max(row, r0), r0 + rows - 1), min(max(col, c0), c0 + cols - 1))


def cell_center(g: EncodedGrid, row: int, col: int) -> tuple[float, float]:
    """Image pixel ``(x, y)`` of the centre of whole-grid cell ``(row, col)``."""
    h, w = g.grid
    u = (col + 0.5) * g.canvas / w - 0.5
    v = (row + 0.5) * g.canvas / h - 0.5
    return ((u - g.offset[0]) / g.scale, (v - g.offset[1]) / g.scale)


def nearest_cell(src: EncodedGrid, trg: EncodedGrid, cell: tuple[int, int]
                 ) -> tuple[tuple[int, int], float]:
    """The page's nearest neighbour: target cell most similar to source ``cell``.

    Args:
        src: source grid.
        trg: target grid (same channels).
        cell: ``(row, col)`` whole-grid index of a stored source cell.

    Returns:
        ``((row, col), similarity)``: whole-grid index of the best target cell
        (first in row-major order on ties) and its cosine similarity.

    Raises:
        ValueError: channel counts differ or ``cell`` is outside the stored block.
    """
    if src.channels != trg.channels:
        raise ValueError(f"grids differ in channels: {src.channels} vs {trg.channels}")
    r0, c0, rows, cols = src.block
    i, j = cell[0] - r0, cell[1] - c0
    if not (0 <= i < rows and 0 <= j < cols):
        raise ValueError(f"cell {cell} is outside the stored source block {src.block}")
    q = decode_grid(src)[i, j]
    t = decode_grid(trg)
    sim = t.reshape(-1, trg.channels) @ q
    best = int(np.argmax(sim))
    tr0, tc0, _, tcols = trg.block
    return ((tr0 + best // tcols, tc0 + best % tcols), float(sim[best]))

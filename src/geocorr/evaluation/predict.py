"""Keypoint transfer from two feature maps: nearest neighbour or window soft-argmax.

Both evaluation protocols in the literature start the same way: sample the
source descriptor at each source keypoint (bilinear on the source grid), and
compare it with every target cell. Then

- ``"nn"``: the prediction is the centre of the most similar target cell;
- ``"soft_argmax"``: the prediction is the softmax-weighted mean of the cell
  centres in a ``window x window`` block of cells around the most similar one
  (15 x 15 in DIY-SC's evaluation), weights ``softmax(similarity / temperature)``.

Only cells whose centre lies on the target image (not on the zero padding of
the square canvas) are candidates. Predictions come back in original target
pixels, ready for :func:`geocorr.evaluation.pck.score_pair`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from geocorr.data.pairs import KeypointPair
from geocorr.features.base import FeatureMap

__all__ = ["PredictSettings", "KeypointPrediction", "predict_keypoints", "image_cells",
           "similarity_to_cells", "feature_predictor", "predict_flow"]


@dataclass
class PredictSettings:
    """How target keypoints are read off the similarity map.

    Attributes:
        method: ``"nn"`` (cell centre of the best match, the zero-shot tables'
            default) or ``"soft_argmax"`` (window soft-argmax, DIY-SC's evaluation).
        window: side of the soft-argmax window in target cells, odd; 15 as DIY-SC.
        temperature: softmax temperature on the similarity; with cosine
            similarity in ``[-1, 1]`` 0.02 keeps the weights on a few cells
            (the value DIY-SC's soft-argmax loss uses).
        cosine: L2-normalise descriptors first (cosine similarity), as every
            zero-shot baseline does; ``False`` uses raw dot products.
        restrict_to_image: never predict a cell whose centre lies in the padding.
    """

    method: Literal["nn", "soft_argmax"] = "nn"
    window: int = 15
    temperature: float = 0.02
    cosine: bool = True
    restrict_to_image: bool = True

    def __post_init__(self) -> None:
        if self.method not in ("nn", "soft_argmax"):
            raise ValueError(f"PredictSettings.method must be 'nn' or 'soft_argmax', "
                             f"got {self.method!r}")
        if self.window < 1 or self.window % 2 == 0:
            raise ValueError(f"PredictSettings.window must be a positive odd number of cells, "
                             f"got {self.window}")
        if not self.temperature > 0:
            raise ValueError(f"PredictSettings.temperature must be > 0, got {self.temperature}")


@dataclass(frozen=True)
class KeypointPrediction:
    """Predicted target positions of a set of source keypoints.

    Attributes:
        trg_kps: ``(N, 2)`` float64 predictions ``(x, y)`` in original target pixels.
        cells: ``(N, 2)`` int64 ``(row, col)`` of the best-matching target cell.
        similarity: ``(N,)`` float32 similarity of that best match.
    """

    trg_kps: np.ndarray
    cells: np.ndarray
    similarity: np.ndarray


def image_cells(fmap: FeatureMap) -> np.ndarray:
    """``(h, w)`` bool: cells whose centre lies on the original image, not the padding.

    A centre at original pixel ``(u, v)`` is on the image when
    ``-0.5 <= u <= W - 0.5`` and ``-0.5 <= v <= H - 0.5`` (pixel edges).
    """
    c = fmap.cell_centers()
    W, H = fmap.transform.src_width, fmap.transform.src_height
    return ((c[..., 0] >= -0.5) & (c[..., 0] <= W - 0.5)
            & (c[..., 1] >= -0.5) & (c[..., 1] <= H - 0.5))


def similarity_to_cells(src: FeatureMap, trg: FeatureMap, src_kps: np.ndarray,
                        cosine: bool = True) -> np.ndarray:
    """Similarity of each source keypoint's descriptor to every target cell.

    Args:
        src: source feature map.
        trg: target feature map (same channel count).
        src_kps: ``(N, 2)`` source keypoints in original source pixels.
        cosine: L2-normalise both sides first.

    Returns:
        ``(N, h, w)`` float32 over the target grid.
    """
    src_kps = np.asarray(src_kps, dtype=np.float64)
    if src_kps.ndim != 2 or src_kps.shape[1] != 2:
        raise ValueError(f"src_kps must be (N, 2), got {src_kps.shape}")
    if src.features.shape[0] != trg.features.shape[0]:
        raise ValueError(f"source and target feature maps differ in channels: "
                         f"{src.features.shape[0]} vs {trg.features.shape[0]}")
    q = src.sample(src_kps).astype(np.float32)  # (N, C)
    C, h, w = trg.features.shape
    t = trg.features.reshape(C, h * w).astype(np.float32)
    if cosine:
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        t = t / np.maximum(np.linalg.norm(t, axis=0, keepdims=True), 1e-12)
    return (q @ t).reshape(len(q), h, w)


def predict_keypoints(src: FeatureMap, trg: FeatureMap, src_kps: np.ndarray,
                      settings: PredictSettings | None = None) -> KeypointPrediction:
    """Transfer source keypoints to the target image.

    Args:
        src: source feature map.
        trg: target feature map.
        src_kps: ``(N, 2)`` source keypoints ``(x, y)``, original source pixels.
        settings: method and its parameters (defaults: nearest neighbour).

    Returns:
        A :class:`KeypointPrediction` in original target pixels.
    """
    settings = settings or PredictSettings()
    sim = similarity_to_cells(src, trg, src_kps, settings.cosine)
    n, h, w = sim.shape
    valid = image_cells(trg) if settings.restrict_to_image else np.ones((h, w), bool)
    if not valid.any():  # degenerate (tiny) grids: every cell straddles the border
        valid = np.ones((h, w), bool)
    masked = np.where(valid[None], sim, -np.inf).reshape(n, -1)
    best = masked.argmax(axis=1) if n else np.zeros(0, np.int64)
    rows, cols = np.divmod(best, w)
    centers = trg.cell_centers()  # (h, w, 2) original pixels
    if settings.method == "nn" or n == 0:
        pred = centers[rows, cols].reshape(n, 2)
    else:
        pred = _window_soft_argmax(sim, valid, centers, rows, cols, settings)
    return KeypointPrediction(trg_kps=pred.astype(np.float64),
                              cells=np.stack([rows, cols], axis=1).astype(np.int64),
                              similarity=masked[np.arange(n), best].astype(np.float32))


def _window_soft_argmax(sim: np.ndarray, valid: np.ndarray, centers: np.ndarray,
                        rows: np.ndarray, cols: np.ndarray,
                        settings: PredictSettings) -> np.ndarray:
    """Softmax-weighted mean of cell centres in a window around each best cell, ``(N, 2)``."""
    n, h, w = sim.shape
    r = settings.window // 2
    off = np.arange(-r, r + 1)
    wr = rows[:, None] + off[None]  # (N, k)
    wc = cols[:, None] + off[None]
    inside = ((wr >= 0) & (wr < h))[:, :, None] & ((wc >= 0) & (wc < w))[:, None, :]
    wr_c, wc_c = np.clip(wr, 0, h - 1), np.clip(wc, 0, w - 1)
    idx_n = np.arange(n)[:, None, None]
    s = sim[idx_n, wr_c[:, :, None], wc_c[:, None, :]].astype(np.float64)  # (N, k, k)
    ok = inside & valid[wr_c[:, :, None], wc_c[:, None, :]]
    logits = np.where(ok, s / settings.temperature, -np.inf)
    logits -= logits.reshape(n, -1).max(axis=1)[:, None, None]
    weights = np.exp(logits)
    weights /= weights.reshape(n, -1).sum(axis=1)[:, None, None]
    pts = centers[wr_c[:, :, None], wc_c[:, None, :]]  # (N, k, k, 2)
    return (weights[..., None] * pts).sum(axis=(1, 2))


def feature_predictor(features: Callable[[Path], FeatureMap],
                      settings: PredictSettings | None = None
                      ) -> Callable[[KeypointPair], np.ndarray]:
    """Wrap a feature source into the ``pair -> (N, 2) predictions`` callable the scorer takes.

    Args:
        features: ``path -> FeatureMap`` (e.g. a cached backbone applied to an image file).
        settings: prediction settings.

    Returns:
        ``predict(pair)`` giving ``(N, 2)`` target keypoints for a
        :class:`geocorr.data.pairs.KeypointPair`.
    """
    settings = settings or PredictSettings()

    def predict(pair: KeypointPair) -> np.ndarray:
        src, trg = features(pair.src_image), features(pair.trg_image)
        return predict_keypoints(src, trg, pair.src_kps, settings).trg_kps

    return predict


def predict_flow(src: FeatureMap, trg: FeatureMap,
                 settings: PredictSettings | None = None) -> np.ndarray:
    """Dense flow for TSS-style evaluation: where each target pixel lies in the source.

    Every target cell (centre on the target image) is matched into the source
    with :func:`predict_keypoints` (roles swapped: the target is the query);
    the matched source positions are bilinearly interpolated at every target
    pixel (clamped to the cells whose centres lie on the target image, so the
    padding's matches never leak in), and the flow is ``source position - pixel``.

    Args:
        src: source feature map (the image the flow points into).
        trg: target feature map (the grid the flow lives on).
        settings: matching settings (``nn`` or ``soft_argmax``).

    Returns:
        ``(H_t, W_t, 2)`` float32 flow ``(u, v)`` in original pixels, the
        convention of TSS's ``flow<target>.flo``.
    """
    settings = settings or PredictSettings()
    h, w = trg.grid_size
    centers = trg.cell_centers().reshape(-1, 2)
    # every cell is a query (bilinear sampling at its own centre returns its descriptor)
    pos = predict_keypoints(trg, src, centers, settings).trg_kps.reshape(h, w, 2)
    W, H = trg.transform.src_width, trg.transform.src_height
    uu, vv = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    pix = np.stack([uu.ravel(), vv.ravel()], axis=1)
    valid = image_cells(trg)
    if not valid.any():
        valid = np.ones((h, w), bool)
    rows, cols = np.flatnonzero(valid.any(axis=1)), np.flatnonzero(valid.any(axis=0))
    xy = trg.uv_to_cell(pix)
    x = np.clip(xy[:, 0], cols[0], cols[-1])
    y = np.clip(xy[:, 1], rows[0], rows[-1])
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    x1 = np.minimum(x0 + 1, cols[-1])
    y1 = np.minimum(y0 + 1, rows[-1])
    ax = (x - x0)[:, None]
    ay = (y - y0)[:, None]
    top = pos[y0, x0] * (1 - ax) + pos[y0, x1] * ax
    bot = pos[y1, x0] * (1 - ax) + pos[y1, x1] * ax
    src_xy = top * (1 - ay) + bot * ay
    return (src_xy - pix).reshape(H, W, 2).astype(np.float32)

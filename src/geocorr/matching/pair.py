"""Candidate matches for one image pair: NN source -> target -> source, relaxed cyclic test."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from geocorr.features.base import FeatureMap
from geocorr.matching.candidates import candidate_cells, grid_foreground
from geocorr.matching.cyclic import cycle_error, cyclic_tolerance, mask_bbox
from geocorr.matching.matches import Matches
from geocorr.matching.nn import DEFAULT_BLOCK_BYTES, mutual_nearest, nearest_neighbors

__all__ = ["MatchSettings", "match_pair"]


@dataclass
class MatchSettings:
    """Settings of :func:`match_pair`.

    Attributes:
        tau: cyclic tolerance as a fraction of the source object's box
            ``(w, h)``; 0.05 ~ DIY-SC's 2 patches at 840 px for an object
            ~600 px wide (open: sweep it).
        stride: candidate source points on every ``stride``-th grid cell per
            axis (1 = every foreground cell; DIY-SC uses every third patch).
        fg_fraction: a cell is foreground when this fraction of its pixels is
            in the mask.
        restrict_target: search the forward NN among target foreground cells
            only (else among all cells of the target grid).
        restrict_source: search the backward NN among source foreground cells
            only (else among all cells of the source grid).
        engine: ``"torch"`` blocked matmul, ``"faiss"`` (if installed) or ``None`` (torch).
        block_bytes: memory budget of one similarity block.
    """

    tau: float = 0.05
    stride: int = 1
    fg_fraction: float = 0.5
    restrict_target: bool = True
    restrict_source: bool = True
    engine: Literal["torch", "faiss"] | None = None
    block_bytes: int = DEFAULT_BLOCK_BYTES

    def __post_init__(self) -> None:
        if not self.tau >= 0:
            raise ValueError(f"tau must be >= 0, got {self.tau}")
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        if self.engine not in (None, "torch", "faiss"):
            raise ValueError(f"engine must be 'torch', 'faiss' or None, got {self.engine!r}")


def _rows(fmap: FeatureMap, cells: np.ndarray):
    """``(len(cells), C)`` float32 tensor of the cells' descriptors (a view when all cells)."""
    import torch

    C, h, w = fmap.features.shape
    flat = torch.from_numpy(np.ascontiguousarray(fmap.features, dtype=np.float32)
                            ).reshape(C, h * w).T
    if len(cells) == h * w:
        return flat
    return flat[torch.from_numpy(cells)]


def match_pair(source: FeatureMap, target: FeatureMap, source_mask: np.ndarray | None = None,
               target_mask: np.ndarray | None = None, settings: MatchSettings | None = None,
               source_bbox: np.ndarray | None = None) -> Matches:
    """Nearest-neighbour candidates from source to target with relaxed cyclic consistency.

    For every candidate source cell ``p_s`` (foreground, on the stride
    lattice): ``p_t = NN_t(p_s)`` (cosine), ``p̂_s = NN_s(p_t)``; the
    ``"cyclic"`` filter keeps it when ``|p̂_s - p_s| <= tau * (w, h)`` of the
    source box, ``"mutual"`` when ``p̂_s`` is ``p_s`` itself.

    Args:
        source: fused (or single-source) features of the source image.
        target: features of the target image, same channels.
        source_mask: ``(H_s, W_s)`` bool object mask, or ``None`` (whole image).
        target_mask: ``(H_t, W_t)`` bool, or ``None``.
        settings: see :class:`MatchSettings`.
        source_bbox: ``[x1, y1, x2, y2]`` of the source object; default the
            mask's tight box (the whole image without a mask).

    Returns:
        :class:`Matches` for all candidates (every filter's decision in ``kept``).

    Raises:
        ValueError: channel counts differ or masks do not fit the images.
    """
    s = settings or MatchSettings()
    if source.features.shape[0] != target.features.shape[0]:
        raise ValueError(f"source has {source.features.shape[0]} channels, target "
                         f"{target.features.shape[0]}")
    fg_s = grid_foreground(source, source_mask, s.fg_fraction)
    fg_t = grid_foreground(target, target_mask, s.fg_fraction)
    if source_bbox is None:
        tr = source.transform
        source_bbox = (mask_bbox(source_mask) if source_mask is not None and
                       np.asarray(source_mask).any() else
                       np.array([0, 0, tr.src_width - 1, tr.src_height - 1], float))
    tol = cyclic_tolerance(source_bbox, s.tau)

    cand = candidate_cells(fg_s, s.stride)
    db_s = np.flatnonzero(fg_s) if s.restrict_source else np.arange(fg_s.size)
    db_t = np.flatnonzero(fg_t) if s.restrict_target else np.arange(fg_t.size)
    if len(cand) and len(db_t) and len(db_s):
        if s.engine in (None, "torch") and s.stride == 1 and s.restrict_source:
            # cand == db_s: one blocked pass gives both directions.
            mnn = mutual_nearest(_rows(source, cand), _rows(target, db_t),
                                 block_bytes=s.block_bytes)
            fwd, bwd_all = mnn.ab, mnn.ba
            t_local = fwd.index
            back = db_s[bwd_all.index[t_local]]
        else:
            as_np = s.engine == "faiss"

            def rows(fm, cells):
                r = _rows(fm, cells)
                return r.numpy() if as_np else r

            fwd = nearest_neighbors(rows(source, cand), rows(target, db_t), engine=s.engine,
                                    block_bytes=s.block_bytes)
            t_local = fwd.index
            uniq, inv = np.unique(t_local, return_inverse=True)
            bwd = nearest_neighbors(rows(target, db_t[uniq]), rows(source, db_s),
                                    engine=s.engine, block_bytes=s.block_bytes)
            back = db_s[bwd.index[inv]]
        trg_cell = db_t[t_local]
        sim = fwd.similarity
    else:
        cand = np.zeros(0, np.int64)
        trg_cell = back = np.zeros(0, np.int64)
        sim = np.zeros(0, np.float32)

    cs = source.cell_centers().reshape(-1, 2)
    ct = target.cell_centers().reshape(-1, 2)
    src_uv, trg_uv, back_uv = cs[cand], ct[trg_cell], cs[back]
    err = cycle_error(src_uv, back_uv)
    return Matches(
        src_uv=src_uv, trg_uv=trg_uv, back_uv=back_uv,
        similarity=np.asarray(sim, np.float32), cycle_error=err, tolerance=tol,
        src_cell=cand.astype(np.int64), trg_cell=trg_cell.astype(np.int64),
        kept={"cyclic": np.all(err <= tol + 1e-9, axis=1), "mutual": back == cand},
        provenance={"settings": asdict(s), "source": source.name, "target": target.name,
                    "source_bbox": np.asarray(source_bbox, float).tolist()},
    )

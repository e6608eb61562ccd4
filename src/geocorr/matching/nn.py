"""Exact cosine nearest neighbours on CPU in memory-bounded blocks (torch matmul), optional faiss.

Descriptors are L2-normalised first (zero vectors stay zero and have
similarity 0 with everything), so the inner product is the cosine
similarity. :func:`mutual_nearest` gets both directions, ``a -> b`` and
``b -> a``, from one blocked pass over the similarity matrix: each block of
``a`` rows gives those rows' best ``b`` and updates a running column-wise best
``a`` for every ``b``. Ties go to the lowest index, as ``numpy.argmax``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["NNResult", "MutualNN", "normalize_rows", "nearest_neighbors", "mutual_nearest",
           "block_rows_for"]

DEFAULT_BLOCK_BYTES = 64 * 2**20
"""Default memory budget of one similarity block (64 MiB; larger blocks were not faster)."""


@dataclass(frozen=True, eq=False)
class NNResult:
    """Nearest neighbour of each query.

    Attributes:
        index: ``(N,)`` int64 index into the database (``-1`` if the database is empty).
        similarity: ``(N,)`` float32 cosine similarity to it.
    """

    index: np.ndarray
    similarity: np.ndarray


@dataclass(frozen=True, eq=False)
class MutualNN:
    """Both directions of exact nearest neighbours between ``a`` and ``b``.

    Attributes:
        ab: ``a -> b``: per ``a`` row, its best ``b`` row (``(N,)`` index / similarity).
        ba: ``b -> a``: per ``b`` row, its best ``a`` row (``(M,)``).
    """

    ab: NNResult
    ba: NNResult


def normalize_rows(x: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """``(N, D)`` -> float32 rows of unit norm; rows with norm < eps become zero."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"descriptors must be (N, D), got shape {x.shape}")
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.where(n >= eps, x / np.maximum(n, eps), 0.0).astype(np.float32)


def block_rows_for(n_cols: int, block_bytes: int = DEFAULT_BLOCK_BYTES) -> int:
    """Rows per block so that a ``(rows, n_cols)`` float32 block fits ``block_bytes``."""
    return max(1, int(block_bytes // (4 * max(n_cols, 1))))


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = normalize_rows(a), normalize_rows(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"descriptor lengths differ: {a.shape[1]} vs {b.shape[1]}")
    return a, b


def _torch_unit_rows(x, eps: float = 1e-8):
    """Like :func:`normalize_rows`, computed by torch (multi-threaded) -> ``torch.Tensor``.

    ``x`` may be a numpy array or a float32 tensor; a strided view (e.g. the
    transpose of a ``(C, h*w)`` feature map) is used without a copy.
    """
    import torch

    if isinstance(x, torch.Tensor):
        t = x.to(torch.float32)
    else:
        x = np.asarray(x, dtype=np.float32)
        t = torch.from_numpy(x if x.flags.writeable else x.copy())
    if t.ndim != 2:
        raise ValueError(f"descriptors must be (N, D), got shape {tuple(t.shape)}")
    n = torch.linalg.vector_norm(t, dim=1, keepdim=True)
    return torch.where(n >= eps, t / n.clamp_min(eps), torch.zeros((), dtype=t.dtype))


def nearest_neighbors(query: np.ndarray, database: np.ndarray, *,
                      engine: Literal["torch", "faiss"] | None = None,
                      block_bytes: int = DEFAULT_BLOCK_BYTES) -> NNResult:
    """Exact cosine nearest neighbour in ``database`` of every ``query`` row.

    Args:
        query: ``(N, D)`` descriptors.
        database: ``(M, D)`` descriptors.
        engine: ``"torch"`` (blocked matmul), ``"faiss"`` (``IndexFlatIP``,
            needs ``pip install faiss-cpu``) or ``None`` (torch).
        block_bytes: memory budget of one similarity block (torch engine).

    Returns:
        :class:`NNResult` with ``(N,)`` indices and similarities.
    """
    if engine not in (None, "torch", "faiss"):
        raise ValueError(f"engine must be 'torch', 'faiss' or None, got {engine!r}")
    if engine != "faiss":
        return mutual_nearest(query, database, block_bytes=block_bytes, backward=False).ab
    q, db = _check_pair(query, database)
    N, M = len(q), len(db)
    if M == 0 or N == 0:
        return NNResult(np.full(N, -1, np.int64), np.zeros(N, np.float32))
    try:
        import faiss
    except ImportError as exc:
        raise ImportError("engine='faiss' needs faiss: pip install faiss-cpu "
                          "(or use engine='torch')") from exc
    index = faiss.IndexFlatIP(q.shape[1])
    index.add(np.ascontiguousarray(db))
    sim, idx = index.search(np.ascontiguousarray(q), 1)
    return NNResult(idx[:, 0].astype(np.int64), sim[:, 0].astype(np.float32))


def mutual_nearest(a: np.ndarray, b: np.ndarray, *, block_bytes: int = DEFAULT_BLOCK_BYTES,
                   backward: bool = True) -> MutualNN:
    """Exact cosine NN ``a -> b`` and ``b -> a`` in one blocked pass.

    Args:
        a: ``(N, D)`` descriptors (numpy array or float32 tensor, views allowed).
        b: ``(M, D)`` descriptors.
        block_bytes: memory budget of one ``(rows, M)`` float32 similarity block.
        backward: also compute ``b -> a`` (otherwise ``ba`` is empty).

    Returns:
        :class:`MutualNN`; with an empty side, indices are ``-1``.
    """
    import torch

    ta, tb = _torch_unit_rows(a), _torch_unit_rows(b)
    if ta.shape[1] != tb.shape[1]:
        raise ValueError(f"descriptor lengths differ: {ta.shape[1]} vs {tb.shape[1]}")
    N, M = ta.shape[0], tb.shape[0]
    fwd_i = np.full(N, -1, np.int64)
    fwd_s = np.zeros(N, np.float32)
    bwd_i = np.full(M if backward else 0, -1, np.int64)
    bwd_s = np.full(M if backward else 0, -np.inf, np.float32)
    if N and M:
        tbT = tb.T
        rows = block_rows_for(M, block_bytes)
        col_best = torch.full((M,), -torch.inf) if backward else None
        col_arg = torch.full((M,), -1, dtype=torch.int64) if backward else None
        with torch.no_grad():
            for start in range(0, N, rows):
                s = ta[start:start + rows] @ tbT  # (r, M)
                val, idx = s.max(dim=1)
                fwd_i[start:start + len(idx)] = idx.numpy()
                fwd_s[start:start + len(idx)] = val.numpy()
                if backward:
                    cval, cidx = s.max(dim=0)
                    better = cval > col_best  # strict: earlier rows win ties
                    col_best = torch.where(better, cval, col_best)
                    col_arg = torch.where(better, cidx + start, col_arg)
        if backward:
            bwd_i, bwd_s = col_arg.numpy().copy(), col_best.numpy().astype(np.float32)
    if backward and N == 0:
        bwd_s = np.zeros(M, np.float32)
    return MutualNN(NNResult(fwd_i, fwd_s), NNResult(bwd_i, bwd_s))

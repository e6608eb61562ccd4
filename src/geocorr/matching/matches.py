"""The typed result of candidate matching between a source and a target image."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Matches"]


@dataclass(frozen=True, eq=False)
class Matches:
    """Candidate correspondences of one image pair, with what each filter decided.

    All coordinates are original-image pixels ``(u, v)`` (pixel centres at integers).

    Attributes:
        src_uv: ``(N, 2)`` source points (feature-cell centres).
        trg_uv: ``(N, 2)`` their nearest neighbours in the target.
        back_uv: ``(N, 2)`` the target point's nearest neighbour back in the source.
        similarity: ``(N,)`` float32 cosine similarity of source and target descriptors.
        cycle_error: ``(N, 2)`` ``|back_uv - src_uv|`` per axis (pixels).
        tolerance: ``(2,)`` the cyclic tolerance ``tau * (w, h)`` used (pixels).
        src_cell: ``(N,)`` flat source grid-cell index (``i * w + j``).
        trg_cell: ``(N,)`` flat target grid-cell index.
        kept: per filter name, ``(N,)`` bool: ``"cyclic"`` (relaxed cyclic
            consistency), ``"mutual"`` (exact mutual NN); later stages add
            their own (e.g. geodesic).
        provenance: settings and source names that produced these matches.
    """

    src_uv: np.ndarray
    trg_uv: np.ndarray
    back_uv: np.ndarray
    similarity: np.ndarray
    cycle_error: np.ndarray
    tolerance: np.ndarray
    src_cell: np.ndarray
    trg_cell: np.ndarray
    kept: dict[str, np.ndarray] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.src_uv)
        for name in ("src_uv", "trg_uv", "back_uv", "cycle_error"):
            if getattr(self, name).shape != (n, 2):
                raise ValueError(f"Matches.{name} must be ({n}, 2), got "
                                 f"{getattr(self, name).shape}")
        for name in ("similarity", "src_cell", "trg_cell"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"Matches.{name} must be ({n},), got {getattr(self, name).shape}")
        for k, v in self.kept.items():
            if np.asarray(v).shape != (n,):
                raise ValueError(f"Matches.kept[{k!r}] must be ({n},), got {np.asarray(v).shape}")

    def __len__(self) -> int:
        return len(self.src_uv)

    def keep_mask(self, *filters: str) -> np.ndarray:
        """``(N,)`` bool: kept by every named filter (all filters when none named)."""
        names = filters or tuple(self.kept)
        unknown = [f for f in names if f not in self.kept]
        if unknown:
            raise ValueError(f"unknown filter(s) {unknown}; have {sorted(self.kept)}")
        out = np.ones(len(self), dtype=bool)
        for f in names:
            out &= self.kept[f]
        return out

    def subset(self, index: np.ndarray) -> Matches:
        """Matches restricted to ``index`` (a bool mask or integer indices)."""
        return Matches(self.src_uv[index], self.trg_uv[index], self.back_uv[index],
                       self.similarity[index], self.cycle_error[index], self.tolerance,
                       self.src_cell[index], self.trg_cell[index],
                       {k: v[index] for k, v in self.kept.items()}, dict(self.provenance))

    def with_filter(self, name: str, keep: np.ndarray) -> Matches:
        """A copy with one more (or a replaced) filter decision ``(N,)`` bool."""
        keep = np.asarray(keep, dtype=bool)
        return Matches(self.src_uv, self.trg_uv, self.back_uv, self.similarity,
                       self.cycle_error, self.tolerance, self.src_cell, self.trg_cell,
                       {**self.kept, name: keep}, dict(self.provenance))

"""Crash-safe pseudo-label store (SQLite).

Schema::

    meta(key TEXT PRIMARY KEY, value TEXT)              settings + provenance (JSON)
    pairs(pair_id TEXT PRIMARY KEY, category, source, target,
          n_candidates, n_missed, n_kept)               one row per *finished* pair
    labels(pair_id, idx, src_x, src_y, trg_x, trg_y, score, error,
           PRIMARY KEY (pair_id, idx))                  the kept matches

A pair's labels and its ``pairs`` row are written in **one transaction**
(rollback journal, ``synchronous=FULL``): after a crash at any moment a pair
is either fully there (labels + done row) or not at all, and a restarted run
redoes exactly the missing pairs. The primary keys make a duplicate write an
error instead of a silent double. Readers never see a half-written pair.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["LabelStore", "PairLabels", "StoreError"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pairs (
    pair_id TEXT PRIMARY KEY, category TEXT NOT NULL, source TEXT NOT NULL,
    target TEXT NOT NULL, n_candidates INTEGER NOT NULL, n_missed INTEGER NOT NULL,
    n_kept INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS labels (
    pair_id TEXT NOT NULL REFERENCES pairs(pair_id), idx INTEGER NOT NULL,
    src_x REAL NOT NULL, src_y REAL NOT NULL, trg_x REAL NOT NULL, trg_y REAL NOT NULL,
    score REAL NOT NULL, error REAL NOT NULL, PRIMARY KEY (pair_id, idx));
"""


class StoreError(ValueError):
    """The store file is not a label store or was made with other settings."""


@dataclass(frozen=True, eq=False)
class PairLabels:
    """Verified pseudo-labels of one pair (the output of the per-pair function).

    Attributes:
        pair_id: ``<category>:<source>:<target>``.
        category: category name.
        source: source image stem.
        target: target image stem.
        src_uv: ``(N, 2)`` float64 kept source pixels ``(x, y)`` (original image).
        trg_uv: ``(N, 2)`` float64 matched target pixels.
        score: ``(N,)`` float64 similarity of the fused features.
        error: ``(N,)`` float64 the filter's error (NaN-free; 0 for ``cyclic``).
        n_candidates: candidates before verification.
        n_missed: candidates dropped because a ray missed a mesh.
    """

    pair_id: str
    category: str
    source: str
    target: str
    src_uv: np.ndarray
    trg_uv: np.ndarray
    score: np.ndarray
    error: np.ndarray
    n_candidates: int
    n_missed: int


class LabelStore:
    """SQLite pseudo-label store (module doc).

    Args:
        path: the ``.sqlite`` file (created with its parent folder if missing).
        settings: when given, the store's recorded settings must equal them
            (a new store records them); ``None`` opens read-only style.

    Raises:
        StoreError: the file is not a label store, or settings differ.
    """

    def __init__(self, path: str | os.PathLike[str], settings: dict | None = None) -> None:
        self.path = Path(path)
        if settings is None and not self.path.is_file():
            raise FileNotFoundError(f"label store {self.path} does not exist")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        try:
            self._db.execute("PRAGMA journal_mode=DELETE")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)  # idempotent; each CREATE is atomic
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(f"{self.path} is not a label store: {exc}") from exc
        if settings is not None:
            blob = json.dumps(settings, sort_keys=True)
            row = self._db.execute("SELECT value FROM meta WHERE key='settings'").fetchone()
            if row is None:
                with self._transaction():
                    self._db.execute("INSERT INTO meta VALUES ('settings', ?)", (blob,))
            elif row[0] != blob:
                self._db.close()
                raise StoreError(f"{self.path} was written with other settings; use a new "
                                 f"--out or the same settings.\nstored: {row[0]}\nnow:    {blob}")

    # ---------------------------------------------------------------- writing
    def _transaction(self):
        db = self._db

        class _Tx:
            def __enter__(self):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type, exc, tb):
                db.execute("ROLLBACK" if exc_type else "COMMIT")
                return False

        return _Tx()

    def write(self, labels: PairLabels) -> None:
        """Write one pair's labels and its done row atomically.

        Raises:
            sqlite3.IntegrityError: the pair is already in the store.
        """
        n = len(labels.src_uv)
        rows = [(labels.pair_id, k, float(labels.src_uv[k, 0]), float(labels.src_uv[k, 1]),
                 float(labels.trg_uv[k, 0]), float(labels.trg_uv[k, 1]),
                 float(labels.score[k]), float(labels.error[k])) for k in range(n)]
        with self._transaction():
            self._db.execute("INSERT INTO pairs VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (labels.pair_id, labels.category, labels.source, labels.target,
                              int(labels.n_candidates), int(labels.n_missed), n))
            self._db.executemany("INSERT INTO labels VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def set_meta(self, key: str, value) -> None:
        """Record provenance (JSON-serialisable ``value``) under ``key`` (not ``settings``)."""
        if key == "settings":
            raise ValueError("meta key 'settings' is fixed when the store is created")
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                             (key, json.dumps(value, sort_keys=True)))

    # ---------------------------------------------------------------- reading
    def meta(self, key: str):
        """The JSON value recorded under ``key`` (``None`` if absent)."""
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def done(self) -> set[str]:
        """Ids of the finished pairs."""
        return {r[0] for r in self._db.execute("SELECT pair_id FROM pairs")}

    def pairs(self) -> list[str]:
        """Ids of the finished pairs, sorted."""
        return [r[0] for r in self._db.execute("SELECT pair_id FROM pairs ORDER BY pair_id")]

    def pair_info(self, pair_id: str) -> dict:
        """``category, source, target, n_candidates, n_missed, n_kept`` of a finished pair."""
        row = self._db.execute("SELECT category, source, target, n_candidates, n_missed, n_kept "
                               "FROM pairs WHERE pair_id=?", (pair_id,)).fetchone()
        if row is None:
            raise KeyError(f"pair {pair_id!r} is not in {self.path}")
        return dict(zip(("category", "source", "target", "n_candidates", "n_missed", "n_kept"),
                        row, strict=True))

    def labels(self, pair_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Labels of one finished pair.

        Returns:
            ``(src_uv (N, 2), trg_uv (N, 2), score (N,))`` float64.

        Raises:
            KeyError: the pair is not finished in this store.
        """
        self.pair_info(pair_id)
        rows = np.array(self._db.execute(
            "SELECT src_x, src_y, trg_x, trg_y, score FROM labels WHERE pair_id=? ORDER BY idx",
            (pair_id,)).fetchall(), dtype=np.float64).reshape(-1, 5)
        return rows[:, 0:2], rows[:, 2:4], rows[:, 4]

    def dump(self) -> list[tuple]:
        """Every pair row and label row, sorted (to compare two stores exactly)."""
        p = self._db.execute("SELECT * FROM pairs ORDER BY pair_id").fetchall()
        lab = self._db.execute("SELECT * FROM labels ORDER BY pair_id, idx").fetchall()
        return p + lab

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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

One writer at a time: a store opened with ``settings`` (a pseudo-label run)
holds an exclusive ``flock`` on ``<store>.lock`` beside it until
:meth:`LabelStore.close`; a second writer is refused at once with
:class:`StoreLockedError` naming the holder's pid, before it does any work.
The operating system drops the lock when its process dies, so a killed run
never blocks the next one. Readers (``settings=None``) take no lock.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["LabelStore", "PairLabels", "StoreError", "StoreLockedError", "StoreWriteError"]

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


class StoreLockedError(StoreError):
    """Another process holds the store open for writing (its pid is in the message)."""


class StoreWriteError(StoreError):
    """SQLite refused a write (disk full, I/O error, read-only file); names the store."""


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _acquire_lock(path: Path) -> int:
    """Take the exclusive writer lock of the store at ``path``; return the lock file's fd.

    The lock file is removed on release, so after taking the lock we check that
    the file we locked is still the one at the path (a releasing holder may have
    unlinked it in between) and retry otherwise.

    Raises:
        StoreLockedError: another process holds the lock.
    """
    lock = _lock_path(path)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StoreLockedError(f"another geocorr pseudolabel run holds {path} "
                                   f"(pid {holder}); wait for it to finish or use "
                                   "another --out") from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            return fd
        os.close(fd)  # we locked a file that its previous holder already unlinked


def _release_lock(path: Path, fd: int) -> None:
    """Remove the lock file, then drop the lock (the order :func:`_acquire_lock` expects)."""
    try:
        _lock_path(path).unlink(missing_ok=True)
    finally:
        os.close(fd)


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
            (a new store records them) and the store is locked for writing
            until :meth:`close`; ``None`` opens read-only style, unlocked.

    Raises:
        StoreError: the file is not a label store, or settings differ.
        StoreLockedError: ``settings`` given and another process writes the store.
    """

    def __init__(self, path: str | os.PathLike[str], settings: dict | None = None) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None
        if settings is None and not self.path.is_file():
            raise FileNotFoundError(f"label store {self.path} does not exist")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if settings is not None:
            self._lock_fd = _acquire_lock(self.path)
        try:
            # SQLite would create the file 0644 & ~umask; create it as open() would
            # (0666 & ~umask), and SQLite gives its journal the same mode
            if self._lock_fd is not None and not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        except BaseException:
            self._unlock()
            raise
        try:
            self._open(settings)
        except BaseException:
            self.close()
            raise

    def _open(self, settings: dict | None) -> None:
        try:
            self._db.execute("PRAGMA journal_mode=DELETE")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)  # idempotent; each CREATE is atomic
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not a label store: {exc}") from exc
        if settings is not None:
            blob = json.dumps(settings, sort_keys=True)
            row = self._db.execute("SELECT value FROM meta WHERE key='settings'").fetchone()
            if row is None:
                with self._transaction():
                    self._db.execute("INSERT INTO meta VALUES ('settings', ?)", (blob,))
            elif row[0] != blob:
                raise StoreError(f"{self.path} was written with other settings; use a new "
                                 f"--out or the same settings.\nstored: {row[0]}\nnow:    {blob}")

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            fd, self._lock_fd = self._lock_fd, None
            _release_lock(self.path, fd)

    # ---------------------------------------------------------------- writing
    def _transaction(self):
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; on an error, roll back and re-raise *that* error.

        SQLite itself rolls the transaction back on some errors (``SQLITE_FULL``,
        ``SQLITE_IOERR``), so ``ROLLBACK`` runs only while one is still open.
        Operational errors (disk full, I/O, read-only file) become
        :class:`StoreWriteError` naming the store; integrity errors (a
        duplicate pair, a NULL value) stay ``sqlite3.IntegrityError``.
        """
        db, path = self._db, self.path

        class _Tx:
            def __enter__(self):
                try:
                    db.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as exc:
                    raise StoreWriteError(f"cannot write label store {path}: {exc}") from exc

            def __exit__(self, exc_type, exc, tb):
                if exc_type is None:
                    try:
                        db.execute("COMMIT")
                        return False
                    except sqlite3.OperationalError as commit_exc:
                        exc_type, exc = type(commit_exc), commit_exc
                if db.in_transaction:
                    try:
                        db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # the journal is rolled back when the file is next opened
                if isinstance(exc, sqlite3.OperationalError):
                    raise StoreWriteError(f"cannot write label store {path}: {exc}") from exc
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
        """Close the connection and release the writer lock (if held)."""
        try:
            self._db.close()
        finally:
            self._unlock()

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

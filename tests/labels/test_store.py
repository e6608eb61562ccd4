"""SQLite label store: round trip, one transaction per pair, duplicates refused, settings kept,
one writer at a time, SQLite's own write errors surfaced."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from geocorr.labels.store import (
    LabelStore,
    PairLabels,
    StoreError,
    StoreLockedError,
    StoreWriteError,
)


def _labels(pid="c:a:b", n=3):
    uv = np.arange(2 * n, dtype=float).reshape(n, 2)
    return PairLabels(pid, "c", pid.split(":")[1], pid.split(":")[2], uv, uv + 0.5,
                      np.linspace(0, 1, n), np.zeros(n), n_candidates=n + 2, n_missed=1)


def test_round_trip(tmp_path):
    with LabelStore(tmp_path / "s.sqlite", {"x": 1}) as st:
        st.write(_labels())
        st.write(_labels("c:b:d", 0))
        st.set_meta("provenance", {"dataset": "d"})
    with LabelStore(tmp_path / "s.sqlite") as st:
        assert st.pairs() == ["c:a:b", "c:b:d"]
        src, trg, score = st.labels("c:a:b")
        np.testing.assert_array_equal(src, [[0, 1], [2, 3], [4, 5]])
        np.testing.assert_array_equal(trg, src + 0.5)
        np.testing.assert_allclose(score, [0, 0.5, 1])
        assert st.labels("c:b:d")[0].shape == (0, 2)
        assert st.pair_info("c:a:b")["n_missed"] == 1
        assert st.meta("provenance") == {"dataset": "d"} and st.meta("settings") == {"x": 1}
        with pytest.raises(KeyError):
            st.labels("c:x:y")


def test_duplicate_pair_refused_and_nothing_half_written(tmp_path):
    st = LabelStore(tmp_path / "s.sqlite", {})
    st.write(_labels())
    with pytest.raises(sqlite3.IntegrityError):
        st.write(_labels())
    bad = _labels("c:e:f")
    # NaN becomes NULL in SQLite: the NOT NULL check fails on label row 2, inside the
    # transaction, after the done row and label row 1 were inserted
    bad_score = PairLabels(bad.pair_id, "c", "e", "f", bad.src_uv, bad.trg_uv,
                           np.array([0.0, np.nan, 1.0]), bad.error, 3, 0)
    with pytest.raises(sqlite3.IntegrityError):
        st.write(bad_score)
    assert st.pairs() == ["c:a:b"]       # the failed pair left no done row and no labels
    assert len(st.dump()) == 1 + 3
    st.close()


def test_settings_mismatch_and_bad_files(tmp_path):
    LabelStore(tmp_path / "s.sqlite", {"delta": 0.05}).close()
    with pytest.raises(StoreError, match="other settings"):
        LabelStore(tmp_path / "s.sqlite", {"delta": 0.1})
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="not a label store"):
        LabelStore(tmp_path / "junk.sqlite", {})
    with pytest.raises(FileNotFoundError):
        LabelStore(tmp_path / "missing.sqlite")


def test_disk_full_names_the_real_error_and_the_store(tmp_path):
    path = tmp_path / "s.sqlite"
    st = LabelStore(path, {})
    st.write(_labels())
    # no room to grow: the next pair's pages cannot be allocated (SQLITE_FULL), and SQLite
    # rolls the transaction back itself, so an unconditional ROLLBACK used to fail and hide it
    pages = st._db.execute("PRAGMA page_count").fetchone()[0]
    st._db.execute(f"PRAGMA max_page_count={pages}")
    with pytest.raises(StoreWriteError, match="database or disk is full") as info:
        st.write(_labels("c:x:y", 2000))
    assert str(path) in str(info.value) and "cannot rollback" not in str(info.value)
    assert isinstance(info.value, ValueError)            # the CLI prints it as one line
    assert st.pairs() == ["c:a:b"] and len(st.dump()) == 1 + 3   # nothing half-written
    assert not st._db.in_transaction
    st.write(_labels("c:x:z", 1))                         # a small pair still fits
    st.close()


def test_second_writer_refused_naming_the_holder(tmp_path):
    path = tmp_path / "s.sqlite"
    first = LabelStore(path, {"x": 1})
    held = f"another geocorr pseudolabel run holds .*s.sqlite \\(pid {os.getpid()}\\)"
    with pytest.raises(StoreLockedError, match=held):
        LabelStore(path, {"x": 1})
    with pytest.raises(StoreLockedError):            # refused before the settings are compared
        LabelStore(path, {"x": 2})
    with LabelStore(path) as reader:                  # readers take no lock
        assert reader.pairs() == []
    first.write(_labels())
    first.close()
    assert not (tmp_path / "s.sqlite.lock").exists()
    with LabelStore(path, {"x": 1}) as second:        # released on close
        assert second.pairs() == ["c:a:b"]
    with pytest.raises(StoreError, match="other settings"):
        LabelStore(path, {"x": 2})
    LabelStore(path, {"x": 1}).close()                # a refused open released its lock


_HOLDER = """
import sys, time
from geocorr.labels.store import LabelStore
st = LabelStore(sys.argv[1], {"x": 1})
print("locked", flush=True)
time.sleep(120)
"""


def test_lock_of_a_killed_writer_does_not_block(tmp_path):
    path = tmp_path / "s.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(StoreLockedError, match=f"\\(pid {proc.pid}\\)"):
            LabelStore(path, {"x": 1})
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert (tmp_path / "s.sqlite.lock").exists()      # left behind by the kill ...
    with LabelStore(path, {"x": 1}) as st:            # ... but the OS dropped the lock
        st.write(_labels())
    assert not (tmp_path / "s.sqlite.lock").exists()

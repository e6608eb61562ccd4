"""SQLite label store: round trip, one transaction per pair, duplicates refused, settings kept."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from geocorr.labels.store import LabelStore, PairLabels, StoreError


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

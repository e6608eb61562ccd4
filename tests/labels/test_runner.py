"""Runner: pure per-pair function, and a run killed with SIGKILL then resumed == uninterrupted."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from labels_fixture import build

from geocorr.labels.runner import (
    LabelSettings,
    PairInputs,
    label_pair,
    list_images,
    prepare_image,
    run_pseudolabels,
)
from geocorr.labels.store import LabelStore, StoreError
from geocorr.matching.pair import MatchSettings
from geocorr.matching.pairs import ImagePair, PairSamplingSettings

ARGS = ["--backbone", "classical", "--split", "trn", "--pairs-per-category", "3", "--seed", "1",
        "--stride", "1", "--quiet"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build(tmp_path_factory.mktemp("tiny"), categories=("blob", "pod"), n_images=4)


def _settings(**kw):
    kw.setdefault("pairs", PairSamplingSettings(pairs_per_category=6, seed=1))
    return LabelSettings(backbone="classical", match=MatchSettings(stride=1), **kw)


def test_label_pair_is_pure_and_filters_nest(tiny):
    data, cache = tiny
    from geocorr.features.geometric import GeometricDescriptor
    from geocorr.features.registry import make_backbone

    bb, desc = make_backbone("classical"), GeometricDescriptor()
    out = {}
    for flt in ("cyclic", "geodesic", "sphere"):
        s = _settings(filter=flt)
        a = prepare_image(data, cache, "blob", "blob_0000", bb, desc, s)
        b = prepare_image(data, cache, "blob", "blob_0001", bb, desc, s)
        pair = ImagePair("blob", "blob_0000", "blob_0001")
        out[flt] = label_pair(pair, PairInputs(a, b), s)
        again = label_pair(pair, PairInputs(a, b), s)
        np.testing.assert_array_equal(out[flt].src_uv, again.src_uv)
        with pytest.raises(ValueError, match="do not belong"):
            label_pair(ImagePair("blob", "blob_0001", "blob_0000"), PairInputs(a, b), s)
    cyc = out["cyclic"]
    assert cyc.n_candidates > 20 and len(cyc.src_uv) == cyc.n_candidates
    # verified labels are a subset of the cyclic candidates, with errors under the threshold
    cand = {tuple(r) for r in np.hstack([cyc.src_uv, cyc.trg_uv])}
    for flt, thr in (("geodesic", 0.05), ("sphere", 0.15 * np.pi)):
        lab = out[flt]
        assert lab.n_candidates == cyc.n_candidates
        assert {tuple(r) for r in np.hstack([lab.src_uv, lab.trg_uv])} <= cand
        assert np.all(lab.error < thr) and 0 < len(lab.src_uv) <= cyc.n_candidates


def test_list_images_and_errors(tiny, tmp_path):
    data, cache = tiny
    imgs = list_images(data, cache, "trn")
    assert len(imgs) == 8 and imgs[1][2] == pytest.approx(40.0)
    with pytest.raises(ValueError, match="geocorr reconstruct"):
        list_images(data, tmp_path, "trn")


def _cli(data, cache, out, extra=()):
    return [sys.executable, "-c", "from geocorr.cli import main; main()", "pseudolabel",
            "--dataset", str(data), "--cache", str(cache), "--out", str(out), *ARGS, *extra]


def _n_done(path: Path) -> int:
    if not path.is_file():
        return 0
    try:
        con = sqlite3.connect(path, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM pairs").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def test_sigkill_mid_run_then_resume_equals_uninterrupted(tiny, tmp_path):
    data, cache = tiny
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = tmp_path / "full.sqlite"
    subprocess.run(_cli(data, cache, full), check=True, env=env, capture_output=True)
    with LabelStore(full) as st:
        expected = st.dump()
        n_pairs = len(st.pairs())
    assert n_pairs == 6 and len(expected) > n_pairs

    killed = tmp_path / "killed.sqlite"
    proc = subprocess.Popen(_cli(data, cache, killed), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _n_done(killed) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_at_kill = _n_done(killed)
    assert 2 <= done_at_kill < n_pairs, "the run must be killed mid-way"
    res = subprocess.run(_cli(data, cache, killed), env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert f"{done_at_kill} already done" in res.stdout
    with LabelStore(killed) as st:
        assert st.dump() == expected


def test_resume_with_other_settings_refused(tiny, tmp_path):
    data, cache = tiny
    out = tmp_path / "s.sqlite"
    s = _settings(pairs=PairSamplingSettings(pairs_per_category=1, seed=1))
    r1 = run_pseudolabels(data, cache, out, s, progress=False)
    r2 = run_pseudolabels(data, cache, out, s, progress=False)
    assert (r1.labelled, r2.labelled, r2.skipped) == (2, 0, 2)
    with LabelStore(out) as st:
        assert st.meta("provenance")["pairs"] == 2
        assert st.meta("settings")["settings"]["filter"] == "geodesic"
    with pytest.raises(StoreError):
        run_pseudolabels(data, cache, out, _settings(filter="sphere"), progress=False)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(_cli(data, cache, out, ["--filter", "nonsense"]), env=env,
                         capture_output=True, text=True)
    assert res.returncode == 2 and "filter" in (res.stdout + res.stderr)


def test_second_pseudolabel_run_on_a_held_store_exits_2_at_once(tiny, tmp_path):
    data, cache = tiny
    out = tmp_path / "s.sqlite"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "1000"}
    with LabelStore(out, {"held": "by this test"}):
        res = subprocess.run(_cli(data, cache, out), env=env, capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    text = " ".join((res.stdout + res.stderr).split())
    assert f"another geocorr pseudolabel run holds {out} (pid {os.getpid()})" in text
    assert "Traceback" not in text
    with LabelStore(out) as st:
        assert st.pairs() == []

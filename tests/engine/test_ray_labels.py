"""Pseudo-labels on a local Ray cluster == a local run (store rows, settings, provenance),
also with a Ray worker killed mid-run, and a bad pair recorded as failed on both engines."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "labels"))
from labels_fixture import build  # noqa: E402
from ray_helpers import worker_pids  # noqa: E402

from geocorr.cli import app  # noqa: E402
from geocorr.engine import EngineSettings, make_engine  # noqa: E402
from geocorr.labels.runner import LabelSettings, run_pseudolabels  # noqa: E402
from geocorr.labels.store import LabelStore  # noqa: E402
from geocorr.matching.pair import MatchSettings  # noqa: E402
from geocorr.matching.pairs import PairSamplingSettings  # noqa: E402

SETTINGS = LabelSettings(backbone="classical", match=MatchSettings(stride=1),
                         pairs=PairSamplingSettings(pairs_per_category=6, seed=1))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build(tmp_path_factory.mktemp("tiny"), categories=("blob", "pod"), n_images=4)


def _content(path):
    with LabelStore(path) as st:
        return st.dump(), st.meta("settings"), st.meta("provenance")


def _cli(data, cache, out, *extra):
    return ["pseudolabel", "--dataset", str(data), "--cache", str(cache), "--out", str(out),
            "--backbone", "classical", "--split", "trn", "--pairs-per-category", "6",
            "--seed", "1", "--stride", "1", "--quiet", *extra]


def test_ray_pseudolabel_cli_equals_local(tiny, tmp_path, ray_cluster):
    data, cache = tiny
    runner = CliRunner()
    res = runner.invoke(app, _cli(data, cache, tmp_path / "local.sqlite"))
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, _cli(data, cache, tmp_path / "ray.sqlite", "--engine", "ray",
                                  "--num-workers", "2", "--chunk-size", "2"))
    assert res.exit_code == 0, res.output
    local, ray_run = _content(tmp_path / "local.sqlite"), _content(tmp_path / "ray.sqlite")
    assert len(local[0]) > 12  # 12 pair rows + their labels
    assert ray_run == local
    assert "12 pairs labelled" in res.output


def _bad_cache(cache, tmp_path):
    bad = tmp_path / "cache"
    shutil.copytree(cache, bad)
    (bad / "pod" / "pod_0001" / "mesh.ply").write_text("not a mesh\n")
    return bad


def test_a_bad_pair_is_recorded_as_failed_and_the_run_goes_on(tiny, tmp_path):
    data, cache = tiny
    s = run_pseudolabels(data, _bad_cache(cache, tmp_path), tmp_path / "l.sqlite", SETTINGS,
                         progress=False)
    assert s.failures and all("pod_0001" in f.item.pair_id for f in s.failures)
    assert all("mesh.ply" in f.message for f in s.failures)
    with LabelStore(tmp_path / "l.sqlite") as st:
        assert len(st.pairs()) == s.labelled == 12 - len(s.failures)
        assert not any("pod_0001" in p for p in st.pairs())


@pytest.mark.slow
def test_a_bad_pair_is_recorded_as_failed_on_both_engines(tiny, tmp_path, ray_cluster):
    data, cache = tiny
    bad = _bad_cache(cache, tmp_path)
    runs = {}
    for name in ("local", "ray"):
        eng = make_engine(EngineSettings(engine=name, workers=2, chunk_size=1))
        s = run_pseudolabels(data, bad, tmp_path / f"{name}.sqlite", SETTINGS, progress=False,
                             engine=eng)
        runs[name] = (sorted(f.item.pair_id for f in s.failures), s.labelled,
                      _content(tmp_path / f"{name}.sqlite"))
        assert s.failures and all("pod_0001" in f.item.pair_id for f in s.failures)
        assert s.labelled == 12 - len(s.failures)
    assert runs["ray"] == runs["local"]


@pytest.mark.slow
def test_killed_ray_worker_is_retried_and_the_store_equals_an_uninterrupted_run(
        tiny, tmp_path, ray_cluster):
    data, cache = tiny
    run_pseudolabels(data, cache, tmp_path / "ref.sqlite", SETTINGS, progress=False)
    killed: list[int] = []
    stop = threading.Event()

    def killer():  # kill one worker process running a chunk, by its pid
        while not stop.is_set() and not killed:
            pids = worker_pids("_ChunkActor.run")  # pair chunks run on actors (locality)
            if pids:
                time.sleep(0.3)  # mid-item
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.01)

    t = threading.Thread(target=killer)
    t.start()
    try:
        eng = make_engine(EngineSettings(engine="ray", workers=2, chunk_size=1))
        s = run_pseudolabels(data, cache, tmp_path / "ray.sqlite", SETTINGS, progress=False,
                             engine=eng)
    finally:
        stop.set()
        t.join()
    assert killed, "no worker was killed"
    assert s.labelled == 12 and not s.failures
    assert _content(tmp_path / "ray.sqlite") == _content(tmp_path / "ref.sqlite")

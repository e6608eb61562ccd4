"""The Ray engine itself: tasks and actors give the local engine's results, item errors come
back as failures, setup errors as the original exception, a killed worker is retried and a
worker that keeps dying ends the run with an error naming its items."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from geocorr.engine import EngineSettings, ItemFailure, WorkerLostError, make_engine

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")
# Ray workers cannot import this test module: ship its functions by value
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _setup():
    return {"pid": os.getpid(), "scale": 10}


def _fn(state, x):
    if x == 5:
        raise ValueError("five is a bad item")
    return x * state["scale"], state["pid"]


def _plain(results):
    return {i: (r.message if isinstance(r, ItemFailure) else r[0]) for i, r in results}


@pytest.mark.parametrize("actors", [False, True])
def test_results_equal_local_and_state_is_built_once_per_worker(ray_cluster, actors):
    items = list(range(12))
    local = _plain(make_engine().map_items(_fn, items, setup=_setup))
    eng = make_engine(EngineSettings(engine="ray", workers=2, chunk_size=2, actors=actors))
    out = list(eng.map_items(_fn, items, setup=_setup, stateful=True))
    assert _plain(out) == local and local[5] == "ValueError: five is a bad item"
    pids = {r[1] for _, r in out if not isinstance(r, ItemFailure)}
    assert 1 <= len(pids) <= 2 and os.getpid() not in pids


def _bad_setup():
    raise ValueError("--model /nowhere: not found")


@pytest.mark.parametrize("actors", [False, True])
def test_a_setup_error_is_raised_as_itself(ray_cluster, actors):
    eng = make_engine(EngineSettings(engine="ray", workers=1, actors=actors))
    with pytest.raises(ValueError, match="^--model /nowhere: not found$"):
        list(eng.map_items(_fn, [1, 2], setup=_bad_setup, stateful=True))


def _die_once(marker, state, x):
    if x == 3 and not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return x


@pytest.mark.parametrize("actors", [False, True])
def test_a_worker_killed_mid_item_is_retried(ray_cluster, tmp_path, actors):
    from functools import partial

    eng = make_engine(EngineSettings(engine="ray", workers=2, chunk_size=1, actors=actors))
    out = dict(eng.map_items(partial(_die_once, str(tmp_path / "m")), list(range(8)),
                             stateful=actors))
    assert (tmp_path / "m").exists() and out == {i: i for i in range(8)}


def _always_dies(state, x):
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_that_keeps_dying_ends_the_run_naming_its_items(ray_cluster):
    eng = make_engine(EngineSettings(engine="ray", workers=1, chunk_size=2, max_retries=1))
    with pytest.raises(WorkerLostError, match=r"items item-1, item-2: the Ray worker .* died 2 "):
        list(eng.map_items(_always_dies, [1, 2], label=lambda i: f"item-{i}"))


def test_more_gpus_than_the_cluster_has_is_refused(ray_cluster):
    eng = make_engine(EngineSettings(engine="ray", num_gpus_per_worker=1))
    with pytest.raises(ValueError, match="--num-gpus-per-worker 1: the Ray cluster has 0 GPU"):
        list(eng.map_items(_fn, [1]))


def test_local_ray_temp_dir_short_enough_for_unix_sockets(monkeypatch, tmp_path):
    # Ray's sockets live ~70 characters below its temp dir and a socket path may not exceed
    # 107 bytes: a long TMPDIR made `ray.init` fail ("AF_UNIX path length cannot exceed 107").
    from geocorr.engine.ray_engine import local_temp_dir

    monkeypatch.setattr("tempfile.gettempdir", lambda: "/tmp")
    assert local_temp_dir() is None
    monkeypatch.setattr("tempfile.gettempdir", lambda: "/tmp/" + "x" * 120)
    short = local_temp_dir()
    assert short is not None and len(short) + 75 <= 107

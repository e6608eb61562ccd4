"""The engine interface without Ray: chunking, the local engine, settings, the missing-Ray error."""

from __future__ import annotations

import sys

import pytest

from geocorr.engine import EngineSettings, ItemFailure, chunk_items, make_engine, run_chunk
from geocorr.engine.local import LocalEngine


def test_chunks_are_consecutive_bounded_and_never_mix_groups():
    items = ["a1", "a2", "a3", "b1", "b2", "c1"]
    assert chunk_items(items, 2, group=lambda s: s[0]) == [["a1", "a2"], ["a3"], ["b1", "b2"],
                                                            ["c1"]]
    assert chunk_items(items, 4) == [["a1", "a2", "a3", "b1"], ["b2", "c1"]]
    assert chunk_items([], 3) == []
    with pytest.raises(ValueError, match="chunk size"):
        chunk_items(items, 0)


def _fn(state, x):
    if x == 3:
        raise ValueError("three is bad")
    if x == 4:
        raise FileNotFoundError("no file for four")
    return state * x


def test_local_engine_runs_setup_once_and_records_item_errors():
    calls = []

    def setup():
        calls.append(1)
        return 10

    out = list(LocalEngine().map_items(_fn, [1, 2, 3, 4, 5], setup=setup))
    assert calls == [1]
    assert [i for i, _ in out] == [1, 2, 3, 4, 5]
    assert [r for _, r in out if not isinstance(r, ItemFailure)] == [10, 20, 50]
    bad = [r for _, r in out if isinstance(r, ItemFailure)]
    assert [f.item for f in bad] == [3, 4]
    assert bad[0].message == "ValueError: three is bad"
    assert isinstance(bad[1].error, FileNotFoundError)
    assert list(LocalEngine().map_items(_fn, [], setup=setup)) == [] and calls == [1]


def test_other_errors_stop_the_run():
    def boom(state, x):
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        list(LocalEngine().map_items(boom, [1]))
    # only the listed types become failures
    with pytest.raises(ValueError, match="three"):
        run_chunk(10, _fn, [3], errors=())


def test_settings_are_checked():
    with pytest.raises(ValueError, match="engine"):
        EngineSettings(engine="spark")
    for kw in ({"workers": 0}, {"chunk_size": 0}, {"num_gpus_per_worker": -1},
               {"max_retries": -1}):
        with pytest.raises(ValueError):
            EngineSettings(engine="ray", **kw)
    assert isinstance(make_engine(), LocalEngine)


def test_missing_ray_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'geocorr\[ray\]'") as info:
        make_engine(EngineSettings(engine="ray"))
    assert info.value.name == "ray"

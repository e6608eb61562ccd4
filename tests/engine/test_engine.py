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


def test_cli_without_ray_is_one_line_exit_2(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from geocorr.cli import app

    monkeypatch.setitem(sys.modules, "ray", None)
    data = tmp_path / "ds"
    (data / "Layout" / "large").mkdir(parents=True)
    (data / "Layout" / "large" / "trn.txt").write_text("000000-a-b:car\n")
    res = CliRunner().invoke(app, ["pseudolabel", "--dataset", str(data), "--cache",
                                   str(tmp_path / "c"), "--out", str(tmp_path / "l.sqlite"),
                                   "--engine", "ray", "--quiet"])
    assert res.exit_code == 2
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert lines == ["error: missing dependency: the Ray engine needs Ray: pip install "
                     "'geocorr[ray]' (or pip install 'ray>=2.40')"]


def test_engine_flags_are_checked_naming_the_flag():
    from geocorr.cli._engine import engine_settings

    with pytest.raises(ValueError, match="--engine must be local or ray"):
        engine_settings("dask", None, None, 1.0, 0.0, None)
    with pytest.raises(ValueError, match="--ray-address needs --engine ray"):
        engine_settings("local", "auto", None, 1.0, 0.0, None)
    with pytest.raises(ValueError, match="--num-workers must be >= 1"):
        engine_settings("ray", None, 0, 1.0, 0.0, None)
    with pytest.raises(ValueError, match="--num-gpus-per-worker must be >= 0"):
        engine_settings("ray", None, None, 1.0, -1.0, None)

"""Thread counts chosen by geocorr: set before or after the libraries load, and from the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from geocorr.threads import DEFAULT_THREADS, default_threads, set_threads

_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
         "OPENCV_FOR_THREADS_NUM")

_PROBE = """
import json, sys
from geocorr.threads import set_threads
report = set_threads(int(sys.argv[1]))       # before torch, numba, cv2, numpy are imported
import cv2, numba, numpy, torch, threadpoolctl
numpy.ones((64, 64)) @ numpy.ones((64, 64))
print(json.dumps({"report": [report.torch, report.numba, report.opencv, list(report.pools)],
                  "torch": torch.get_num_threads(), "numba": numba.get_num_threads(),
                  "cv2": cv2.getNumThreads(),
                  "pools": sorted({p["num_threads"] for p in threadpoolctl.threadpool_info()})}))
"""


@pytest.fixture
def restore_threads():
    saved = {v: os.environ.get(v) for v in _VARS}
    before = torch.get_num_threads()
    yield
    for v, value in saved.items():
        if value is None:
            os.environ.pop(v, None)
        else:
            os.environ[v] = value
    set_threads(before)


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in _VARS}
    return {**env, **extra}


@pytest.mark.parametrize("n", [1, 2])
def test_set_before_import_reaches_every_library(n):
    # a fresh process: the libraries load after set_threads and read the environment
    out = subprocess.run([sys.executable, "-c", _PROBE, str(n)], env=_clean_env(),
                         capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)
    assert got["report"] == [None, None, None, []]        # nothing was imported by it
    assert (got["torch"], got["numba"], got["cv2"], got["pools"]) == (n, n, n, [n])


def test_set_after_import_uses_the_setters(restore_threads):
    import cv2
    import numba
    import numpy  # noqa: F401  (its BLAS pool is what threadpoolctl limits)

    report = set_threads(2)
    assert report.torch == torch.get_num_threads() == 2
    assert report.opencv == cv2.getNumThreads() == 2
    assert report.numba == numba.get_num_threads() == min(2, numba.config.NUMBA_NUM_THREADS)
    assert report.pools and {n for _, n in report.pools} == {2}
    assert os.environ["OMP_NUM_THREADS"] == "2"
    report = set_threads(1)
    assert (report.torch, report.opencv, report.numba) == (1, 1, 1)
    assert {n for _, n in report.pools} == {1}


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_counts_refused(bad):
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        set_threads(bad)


def test_default_reads_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads() == 3
    for junk in ("", "0", "two", "-2"):
        monkeypatch.setenv("OMP_NUM_THREADS", junk)
        assert default_threads() == DEFAULT_THREADS
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert default_threads() == DEFAULT_THREADS == 1


def test_cli_threads_option(restore_threads):
    from geocorr.cli import app

    res = CliRunner().invoke(app, ["--threads", "2", "version"])
    assert res.exit_code == 0, res.output
    assert torch.get_num_threads() == 2 and os.environ["OMP_NUM_THREADS"] == "2"
    res = CliRunner().invoke(app, ["--threads", "0", "version"])
    assert res.exit_code == 2 and "--threads" in res.output


def test_cli_default_is_one_thread_without_the_makefile():
    # `geocorr` run directly, with no OMP_NUM_THREADS: the command sees geocorr's default
    code = ("import sys; sys.argv = ['geocorr', 'version']\n"
            "from geocorr.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "import os, torch; print(os.environ['OMP_NUM_THREADS'], torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], env=_clean_env(), capture_output=True,
                         text=True, check=True)
    assert out.stdout.split()[-2:] == [str(DEFAULT_THREADS), str(DEFAULT_THREADS)]

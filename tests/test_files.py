"""Files geocorr writes: permissions follow the umask; a killed writer's temporaries are
cleaned up on the next start (and a live writer's are left alone)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest

from geocorr.adapter.checkpoint import save_checkpoint
from geocorr.adapter.network import Adapter, AdapterSettings
from geocorr.adapter.train import remove_stale_run_temps
from geocorr.atomic import create_temp_file, current_umask, write_json_atomic
from geocorr.data.flo import write_flo
from geocorr.evaluation.scorer import write_predictions
from geocorr.features.base import FeatureMap
from geocorr.features.cache import FeatureCache
from geocorr.geometry.camera import Camera, save_camera
from geocorr.geometry.image_transform import resize_and_pad
from geocorr.labels.store import LabelStore


@contextmanager
def _umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _write_all(folder) -> dict[str, int]:
    """Mode of one file from every writer that used to go through a bare mkstemp, + the store."""
    files = {"json": folder / "a.json", "checkpoint": folder / "c.pt", "flo": folder / "f.flo",
             "camera": folder / "cam.json", "predictions": folder / "p.jsonl",
             "store": folder / "s.sqlite"}
    write_json_atomic(files["json"], {"x": 1})
    save_checkpoint(files["checkpoint"], Adapter(AdapterSettings(sources=(("a", 4),), out_dim=4)))
    write_flo(files["flo"], np.zeros((2, 3, 2)))
    K = np.array([[10.0, 0, 4], [0, 10, 3], [0, 0, 1]])
    save_camera(Camera(K, np.eye(3), np.array([0.0, 0, 5]), 8, 6), files["camera"])
    write_predictions(files["predictions"], {"c:a:b": [[1.0, 2.0]]})
    modes = {}
    with LabelStore(files["store"], {}):       # the lock file exists while the store is open
        modes["store lock"] = _mode(folder / "s.sqlite.lock")
    cache = FeatureCache(folder / "cache")
    files["feature cache"] = cache._path_for("k", "x")
    cache.save(files["feature cache"], "k",
               FeatureMap(np.zeros((2, 4, 4), np.float32), resize_and_pad(8, 8, 4), "x"))
    return {**modes, **{name: _mode(path) for name, path in files.items()}}


@pytest.mark.parametrize(("mask", "expect"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_honour_the_umask(tmp_path, mask, expect):
    with _umask(mask):
        assert current_umask() == mask
        modes = _write_all(tmp_path)
    assert modes == dict.fromkeys(modes, expect) and len(modes) == 8
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]   # no temp left


def test_create_temp_file_names_the_pid(tmp_path):
    fd, tmp = create_temp_file(tmp_path, ".x.", ".tmp")
    os.close(fd)
    assert os.path.basename(tmp).startswith(f".x.{os.getpid()}-") and tmp.endswith(".tmp")


_KILLED_WRITER = """
import sys, time
from geocorr.atomic import create_temp_file
fd, tmp = create_temp_file(sys.argv[1], ".tmp-", ".pt")
print(tmp, flush=True)
time.sleep(120)
"""


def _killed_writer_temp(folder) -> str:
    """The temporary file of a checkpoint writer killed mid-save (a real dead pid)."""
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(folder)],
                            stdout=subprocess.PIPE, text=True)
    try:
        tmp = proc.stdout.readline().strip()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert os.path.isfile(tmp)
    return tmp


def test_stale_checkpoint_temps_removed_live_ones_kept(tmp_path):
    dead = _killed_writer_temp(tmp_path)
    old = tmp_path / ".tmp-k3j2h1.pt"                 # an older version's name: no pid
    old.write_bytes(b"x")
    history = tmp_path / f".history.json.{os.getpid() + 10**7}-ab.tmp"   # pids stay < 2**22
    history.write_bytes(b"x")
    fd, live = create_temp_file(tmp_path, ".tmp-", ".pt")   # this process is writing it
    os.close(fd)
    other = tmp_path / ".tmp-notes.txt"               # not ours
    other.write_bytes(b"x")
    removed = remove_stale_run_temps(tmp_path)
    assert sorted(map(str, removed)) == sorted(map(str, [dead, old, history]))
    assert os.path.isfile(live) and other.is_file()

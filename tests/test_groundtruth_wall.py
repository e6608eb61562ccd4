"""The ground-truth wall: "the pipeline never reads GroundTruth/" (README, docs, pipeline.py).

The procedural benchmark writes the answers (true meshes, poses, dense
correspondences) to ``GroundTruth/`` for scoring only. Here the whole chain,
``reconstruct -> features -> pseudolabel -> train -> eval --model`` (the CLI
commands, in-process), runs twice on one small synthetic set: once normally,
once on a copy with ``GroundTruth/`` deleted while an audit hook records every
``open``/``listdir``/``scandir``/sqlite connect below either ``GroundTruth/``.
No access may be recorded, and every output (stage-1 meshes, cameras and
records, the label store, the adapter weights, the scores) must be the same:
a silent ``if GroundTruth exists`` branch would show up as a difference.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from geocorr.cli import app

torch = pytest.importorskip("torch")

_WALLS: list[str] = []
_HITS: list[str] = []
_EVENTS = {"open", "os.listdir", "os.scandir", "sqlite3.connect", "shutil.copytree",
           "os.walk"}


def _audit(event: str, args: tuple) -> None:
    if not _WALLS or event not in _EVENTS or not args:
        return
    path = args[0]
    if not isinstance(path, str | bytes | os.PathLike):
        return
    p = os.path.abspath(os.fsdecode(path))
    for wall in _WALLS:
        if p == wall or p.startswith(wall + os.sep):
            _HITS.append(f"{event}: {p}")
            raise PermissionError(f"ground-truth wall: {event} of {p}")


_HOOK_INSTALLED = False


def _install_hook() -> None:
    global _HOOK_INSTALLED
    if not _HOOK_INSTALLED:  # audit hooks cannot be removed; this one is inert unless armed
        sys.addaudithook(_audit)
        _HOOK_INSTALLED = True


def _cli(*args) -> str:
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, (args[0], res.output, res.exception)
    return res.output


def _pipeline(data: Path, work: Path) -> None:
    _cli("reconstruct", "--dataset", data, "--split", "all", "--out", work / "stage1",
         "--reference-pool", "images", "--max-side", "32", "--quiet")
    _cli("features", "--dataset", data, "--split", "trn,test", "--backbone", "xfeat",
         "--cache", work / "feats", "--quiet")
    _cli("pseudolabel", "--dataset", data, "--cache", work / "stage1", "--out",
         work / "labels.sqlite", "--filter", "geodesic", "--feature-cache", work / "feats",
         "--pairs-per-category", "6", "--quiet")
    _cli("train", "--store", work / "labels.sqlite", "--cache", work / "feats", "--dataset", data,
         "--out", work / "run", "--steps", "3", "--out-dim", "8", "--quiet")
    _cli("eval", "--dataset", "spair", "--root", data, "--model", work / "run", "--cache",
         work / "feats", "--stage1", work / "stage1", "--alpha", "0.1", "--json",
         work / "eval.json")


def _stage1(work: Path, data: Path) -> dict:
    out = {}
    for rec in sorted((work / "stage1").glob("*/*/record.json")):
        d = json.loads(rec.read_text().replace(str(data), "<DATA>"))
        d.pop("timings", None)
        d.pop("settings", None)
        d["refine"].pop("seconds", None)
        folder = rec.parent
        out[folder.name] = (d, (folder / "mesh.ply").read_bytes(),
                            json.loads((folder / "camera.json").read_text()))
    return out


def _labels(work: Path) -> dict:
    from geocorr.labels.store import LabelStore

    with LabelStore(work / "labels.sqlite") as st:
        return {p: st.labels(p) for p in st.pairs()}


def _weights(work: Path) -> dict:
    from geocorr.adapter.checkpoint import BEST_NAME, LAST_NAME, load_checkpoint

    out = {}
    for name in (BEST_NAME, LAST_NAME):
        state = load_checkpoint(work / "run" / name)["state_dict"]
        out.update({f"{name}:{k}": v for k, v in state.items()})
    return out


def test_pipeline_never_reads_groundtruth(tmp_path):
    from geocorr.data.synth.generate import SynthSettings, generate_dataset
    from geocorr.data.synth.scene import SceneSettings

    data = tmp_path / "data"
    generate_dataset(data, SynthSettings(seed=3, categories=("car",), images_per_category=6,
                                         split_fractions=(0.5, 0.0, 0.5),
                                         pairs_per_split=(6, 0, 4),
                                         scene=SceneSettings(size=96)), progress=False)
    assert any((data / "GroundTruth").rglob("*.npz"))
    _pipeline(data, tmp_path / "normal")

    walled = tmp_path / "walled"
    shutil.copytree(data, walled, ignore=shutil.ignore_patterns("GroundTruth"))
    assert not (walled / "GroundTruth").exists()
    _install_hook()
    _HITS.clear()
    _WALLS[:] = [str((data / "GroundTruth").resolve()), str((walled / "GroundTruth").resolve())]
    try:
        _pipeline(walled, tmp_path / "wall_run")
    finally:
        _WALLS.clear()
    assert not _HITS, _HITS

    a, b = tmp_path / "normal", tmp_path / "wall_run"
    s1, s2 = _stage1(a, data), _stage1(b, walled)
    assert s1 and s1.keys() == s2.keys()
    for stem in s1:
        assert s1[stem][0] == s2[stem][0], stem
        assert s1[stem][1] == s2[stem][1], stem
        assert s1[stem][2] == s2[stem][2], stem
    l1, l2 = _labels(a), _labels(b)
    assert l1 and l1.keys() == l2.keys()
    assert sum(len(x[0]) for x in l1.values()) > 0
    for pair in l1:
        for x, y in zip(l1[pair], l2[pair], strict=True):
            np.testing.assert_array_equal(x, y)
    w1, w2 = _weights(a), _weights(b)
    assert w1 and w1.keys() == w2.keys()
    for k in w1:
        torch.testing.assert_close(w1[k], w2[k], rtol=0, atol=0)
    e1 = json.loads((a / "eval.json").read_text())["overall"]
    e2 = json.loads((b / "eval.json").read_text())["overall"]
    assert e1["num_pairs"] > 0 and e1 == e2


def test_the_wall_catches_a_read(tmp_path):
    """The hook is not inert: reading a ground-truth file while armed is recorded and refused."""
    gt = tmp_path / "GroundTruth" / "car"
    gt.mkdir(parents=True)
    (gt / "car_0000.npz").write_bytes(b"x")
    _install_hook()
    _HITS.clear()
    _WALLS[:] = [str((tmp_path / "GroundTruth").resolve())]
    try:
        with pytest.raises(PermissionError, match="ground-truth wall"):
            (gt / "car_0000.npz").read_bytes()
        with pytest.raises(PermissionError):
            os.listdir(gt)
        (tmp_path / "other.txt").write_text("fine")  # outside the wall
    finally:
        _WALLS.clear()
    assert len(_HITS) == 2

"""The four commands on a small procedural dataset: --engine ray writes what --engine local
writes (stage-1 cache files, feature cache arrays, label store, predictions and PCK)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from geocorr.cli import app

pytestmark = pytest.mark.slow

RAY = ["--engine", "ray", "--num-workers", "2", "--chunk-size", "1"]
VOLATILE = {"timings", "seconds"}  # wall-clock measurements, different in any two runs


def _run(*args):
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    _run("synth", "--out", root / "ds", "--categories", "car", "--images-per-category", 8,
         "--size", 96, "--pairs-per-split", 6, "--seed", 3, "--quiet")
    return root / "ds"


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _tree(root: Path) -> dict[str, object]:
    """Every file under root: JSON without wall-clock fields, npz as arrays, else bytes."""
    out: dict[str, object] = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        rel = str(p.relative_to(root))
        if p.suffix == ".json":
            out[rel] = _strip(json.loads(p.read_text()))
        elif p.suffix == ".npz":
            with np.load(p) as z:
                out[rel] = {k: z[k].tolist() for k in sorted(z.files)}
        else:
            out[rel] = p.read_bytes()
    return out


@pytest.fixture(scope="module")
def stages(synth, tmp_path_factory, ray_cluster):
    """Each command run twice, local and Ray, into separate outputs."""
    out = tmp_path_factory.mktemp("runs")
    for eng, extra in (("local", []), ("ray", RAY)):
        d = out / eng
        _run("reconstruct", "--dataset", synth, "--split", "all", "--out", d / "s1",
             "--max-side", 32, "--quiet", *extra)
        _run("features", "--dataset", synth, "--split", "trn,test", "--backbone", "classical",
             "--cache", d / "feats", "--quiet", *extra)
        _run("pseudolabel", "--dataset", synth, "--cache", d / "s1", "--out", d / "labels.sqlite",
             "--backbone", "classical", "--feature-cache", d / "feats",
             "--pairs-per-category", 8, "--quiet", *extra)
        _run("eval", "--dataset", "spair", "--root", synth, "--split", "test", "--backbone",
             "classical", "--cache", d / "feats", "--stage1", d / "s1", "--json",
             d / "eval.json", *extra)
    return out


def test_reconstruct_cache_equals_local(stages):
    local, ray_run = _tree(stages / "local" / "s1"), _tree(stages / "ray" / "s1")
    assert sum(k.endswith("record.json") for k in local) == 8
    assert ray_run.keys() == local.keys()
    for k in local:
        assert ray_run[k] == local[k], k


def test_feature_cache_equals_local(stages):
    local, ray_run = _tree(stages / "local" / "feats"), _tree(stages / "ray" / "feats")
    assert len(local) >= 4 and ray_run == local


def test_label_store_equals_local(stages):
    from geocorr.labels.store import LabelStore

    dumps = []
    for eng in ("local", "ray"):
        with LabelStore(stages / eng / "labels.sqlite") as st:
            dumps.append((st.dump(), st.meta("settings"), st.meta("provenance")["pairs"]))
    assert len(dumps[0][0]) > 0 and dumps[1] == dumps[0]


def test_eval_pck_and_predictions_equal_local(stages, synth, ray_cluster):
    a = json.loads((stages / "local" / "eval.json").read_text())
    b = json.loads((stages / "ray" / "eval.json").read_text())
    assert a["num_pairs"] > 0
    for d in (a, b):
        d.pop("stage1")  # the two runs' own stage-1 folders
    assert b == a
    # per pair: the predictions' errors, through the library
    from geocorr.engine import EngineSettings, make_engine
    from geocorr.evaluation.predict import PredictSettings
    from geocorr.evaluation.scorer import evaluate_pairs, open_dataset
    from geocorr.evaluation.zero_shot import fused_feature_source, zero_shot_predictor
    from geocorr.features.registry import make_backbone

    ds = open_dataset("spair", synth)
    pairs = ds.pairs("test")
    per_pair = []
    for eng in ("local", "ray"):
        src = fused_feature_source({"classical": make_backbone("classical")},
                                   cache_dir=stages / "local" / "feats")
        pred = zero_shot_predictor(src, PredictSettings())
        res = evaluate_pairs(pairs, pred, ds, engine=make_engine(
            EngineSettings(engine=eng, workers=2, chunk_size=1)))
        per_pair.append(res.to_dict(per_pair=True))
    assert per_pair[1] == per_pair[0]


def test_stage1_with_an_actor_killed_mid_run_equals_the_uninterrupted_run(
        stages, synth, tmp_path, ray_cluster):
    import os
    import signal
    import threading
    import time

    from ray_helpers import worker_pids

    from geocorr.engine import EngineSettings, make_engine
    from geocorr.reconstruct.pipeline import Stage1Settings, dataset_images, run_stage1
    from geocorr.reconstruct.reconstructor import simulated_reconstructor
    from geocorr.reconstruct.refine import RefineSettings
    from geocorr.reconstruct.segmenter import DatasetMasks

    killed: list[int] = []
    stop = threading.Event()

    def killer():  # one actor process, by its pid, while it runs an image
        while not stop.is_set() and not killed:
            pids = worker_pids("_ChunkActor.run")
            if pids:
                time.sleep(0.5)
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.02)

    t = threading.Thread(target=killer)
    t.start()
    try:
        eng = make_engine(EngineSettings(engine="ray", workers=2, chunk_size=1, actors=True))
        recs = run_stage1(synth, dataset_images(synth, "all"), DatasetMasks(synth),
                          simulated_reconstructor(synth), tmp_path / "s1",
                          Stage1Settings(refine=RefineSettings(max_side=32)), progress=False,
                          engine=eng)
    finally:
        stop.set()
        t.join()
    assert killed and not any("error" in r for r in recs)
    assert _tree(tmp_path / "s1") == _tree(stages / "local" / "s1")

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from geocorr.adapter.checkpoint import (
    apply_adapter,
    from_pretrained,
    load_checkpoint,
    save_checkpoint,
)
from geocorr.adapter.dataset import LabeledPair, TrainingPairs, stack_sources, uv_to_normalized
from geocorr.adapter.network import Adapter, AdapterSettings
from geocorr.adapter.train import TrainSettings, one_cycle_lr, split_pairs, train_adapter
from geocorr.features.base import FeatureMap
from geocorr.geometry.image_transform import resize_and_pad

from .adapter_toy import nn_accuracy, toy_problem


def test_one_cycle_shape():
    lrs = [one_cycle_lr(s, 100, 1.0, 0.3) for s in range(100)]
    assert abs(lrs[0] - 1 / 25) < 1e-9
    assert abs(max(lrs) - 1.0) < 1e-9 and int(np.argmax(lrs)) == 30
    assert abs(lrs[-1] - 1 / 25 / 1e4) < 1e-9
    assert all(x >= y for x, y in zip(lrs[30:], lrs[31:], strict=False))


def test_uv_to_normalized_hand_values():
    t = resize_and_pad(200, 100, 100)  # scale 0.5, top padding 25; canvas = uv * 0.5 + (0, 25)
    xy = uv_to_normalized(t, np.array([[0.0, 0.0], [100.0, 50.0]]))
    np.testing.assert_allclose(xy, [[-0.99, -0.49], [0.01, 0.01]], atol=1e-9)


def test_stack_sources_resamples_other_canvas():
    t8 = resize_and_pad(16, 16, 8)
    t4 = resize_and_pad(16, 16, 4)
    x = np.arange(4, dtype=np.float32)[None, None, :].repeat(4, 1)  # varies along x
    fine = FeatureMap(np.zeros((2, 8, 8), np.float32), t8, "a")
    coarse = FeatureMap(x, t4, "b")
    out, ref = stack_sources({"a": fine, "b": coarse}, ["a", "b"])
    assert ref is fine and out["b"].shape == (1, 8, 8)
    # reference: FeatureMap.sample at the fine map's cell centres (original pixels)
    expect = coarse.sample(fine.cell_centers().reshape(-1, 2)).reshape(8, 8)
    np.testing.assert_allclose(out["b"][0].numpy(), expect, atol=1e-5)
    np.testing.assert_allclose(out["b"][0, 0].numpy(), np.clip(np.arange(8) / 2, 0, 3))
    with pytest.raises(ValueError, match="missing sources"):
        stack_sources({"a": fine}, ["a", "b"])


def test_split_pairs_by_pair_and_seeded():
    pairs, *_ = toy_problem(num_images=4)
    tr, va = split_pairs(pairs, 0.25, seed=3)
    assert len(va) == 3 and len(tr) == 9
    assert not {p.pair_id for p in tr} & {p.pair_id for p in va}
    assert [p.pair_id for p in split_pairs(pairs, 0.25, seed=3)[1]] == [p.pair_id for p in va]
    with pytest.raises(ValueError, match="no labelled pairs"):
        split_pairs([], 0.1, 0)


def test_point_subset_capped_and_seeded():
    pairs, provider, _, _ = toy_problem(num_images=2)
    data = TrainingPairs(pairs, provider, ["pos", "noise"])
    a = data.sample(0, 10, torch.Generator().manual_seed(1))
    b = data.sample(0, 10, torch.Generator().manual_seed(1))
    assert a.src_xy.shape == (10, 2)
    torch.testing.assert_close(a.src_xy, b.src_xy)


def test_labeled_pair_validates():
    with pytest.raises(ValueError, match="pair x"):
        LabeledPair("x", "c", "a", "b", np.zeros((3, 2)), np.zeros((2, 2)), np.zeros(3))


def test_checkpoint_round_trip_exact(tmp_path):
    torch.manual_seed(0)
    net = Adapter(AdapterSettings(sources=(("a", 8), ("b", 5)), out_dim=16))
    with torch.no_grad():
        net.mix_logits.add_(torch.randn(2))
    path = save_checkpoint(tmp_path / "x" / "best.pt", net, note="hi")
    assert not list((tmp_path / "x").glob(".tmp-*"))
    loaded = from_pretrained(tmp_path / "x")
    assert not loaded.training and loaded.settings == net.settings
    for k, v in net.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    assert load_checkpoint(path)["note"] == "hi"
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        from_pretrained(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError):
        from_pretrained(tmp_path / "nope.pt")


SMALL = dict(steps=12, val_every=4, max_points=16, out_dim=16, val_fraction=0.2, seed=5)


def test_resume_matches_uninterrupted(tmp_path):
    pairs, provider, _, _ = toy_problem(num_images=3)
    s = TrainSettings(**SMALL)
    full = train_adapter(pairs, provider, tmp_path / "full", s, progress=False)
    assert full.finished and len(full.history) == 3
    part = train_adapter(pairs, provider, tmp_path / "cut", s, progress=False,
                         max_steps_this_call=5)
    assert part.step == 5 and not part.finished
    part = train_adapter(pairs, provider, tmp_path / "cut", s, progress=False,
                         max_steps_this_call=2)
    assert part.step == 7
    done = train_adapter(pairs, provider, tmp_path / "cut", s, progress=False)
    assert done.finished
    a = load_checkpoint(full.last_path)
    b = load_checkpoint(done.last_path)
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert a["history"] == b["history"]
    with pytest.raises(ValueError, match="other settings"):
        train_adapter(pairs, provider, tmp_path / "cut", TrainSettings(**{**SMALL, "lr": 1e-3}),
                      progress=False)


def test_training_improves_toy_problem(tmp_path):
    pairs, provider, maps, _ = toy_problem(num_images=6)
    names = sorted(maps)
    held_out = [(names[0], names[1]), (names[2], names[3])]
    settings = TrainSettings(steps=120, val_every=40, max_points=30, out_dim=16,
                             val_fraction=0.1, lr=5e-3, seed=0)
    result = train_adapter(pairs, provider, tmp_path / "run", settings, progress=False,
                           sources=["pos", "noise"])
    hist = result.history
    assert hist[-1]["train_loss"] < 0.7 * hist[0]["train_loss"]
    adapter = from_pretrained(result.best_path)

    def raw(path):
        m = maps[path]
        return FeatureMap(np.concatenate([m["pos"].features, m["noise"].features]),
                          m["pos"].transform)

    before = np.mean([nn_accuracy(raw(a), raw(b)) for a, b in held_out])
    after = np.mean([nn_accuracy(apply_adapter(adapter, maps[a]), apply_adapter(adapter, maps[b]))
                     for a, b in held_out])
    assert after > before + 0.2, (before, after)


class _GroupedBackbone:
    """A stand-in for the SD backbone: 5 channels in groups a=[0,2), b=[2,5)."""

    name = "sdfake"

    def cache_key(self):
        return "sdfake-v1"

    def extract(self, image):
        f = np.arange(5, dtype=np.float32)[:, None, None] * np.ones((5, 4, 4), np.float32)
        return FeatureMap(f, resize_and_pad(image.shape[1], image.shape[0], 16), self.name)

    def channel_groups(self):
        return {"a": (0, 2), "b": (2, 5)}


def test_provider_splits_channel_groups(tmp_path):
    from PIL import Image

    from geocorr.adapter.dataset import cache_feature_provider
    from geocorr.features.cache import FeatureCache

    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "x.png")
    provide = cache_feature_provider(FeatureCache(tmp_path / "c"), [_GroupedBackbone()])
    maps = provide(tmp_path / "x.png", "cat")
    assert list(maps) == ["sdfake_a", "sdfake_b"]
    np.testing.assert_array_equal(maps["sdfake_b"].features[:, 0, 0], [2, 3, 4])
    whole = cache_feature_provider(FeatureCache(tmp_path / "c"), [_GroupedBackbone()],
                                   split_groups=False)(tmp_path / "x.png", "cat")
    assert whole["sdfake"].shape == (5, 4, 4)


_KILLED_WRITER = """
import sys, time
from geocorr.atomic import create_temp_file
fd, tmp = create_temp_file(sys.argv[1], ".tmp-", ".pt")
print(tmp, flush=True)
time.sleep(120)
"""


def test_training_start_removes_a_killed_save_temp(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    # a checkpoint writer killed between creating its temporary file and the rename
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(run)],
                            stdout=subprocess.PIPE, text=True)
    try:
        dead = proc.stdout.readline().strip()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert os.path.basename(dead).startswith(f".tmp-{proc.pid}-") and os.path.isfile(dead)
    pairs, provider, _, _ = toy_problem(num_images=3)
    train_adapter(pairs, provider, run, TrainSettings(**SMALL), progress=False,
                  max_steps_this_call=1)
    assert not os.path.exists(dead)
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]
    assert (run / "last.pt").is_file()

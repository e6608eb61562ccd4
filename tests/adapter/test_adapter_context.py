"""Wider-context adapter options (dilated blocks, global branch) and equal-count subsampling."""

from pathlib import Path

import numpy as np
import pytest
import torch

from geocorr.adapter.checkpoint import apply_adapter, from_pretrained
from geocorr.adapter.dataset import LabeledPair, subsample_labels
from geocorr.adapter.network import Adapter, AdapterSettings, BottleneckBlock
from geocorr.adapter.train import TrainSettings, train_adapter
from geocorr.features.base import FeatureMap
from geocorr.geometry.image_transform import resize_and_pad

SOURCES = (("a", 6), ("b", 4))


def _feats(seed=0, h=9, w=11):
    g = torch.Generator().manual_seed(seed)
    return {n: torch.randn(2, c, h, w, generator=g) for n, c in SOURCES}


def test_context_options_start_as_the_diysc_adapter():
    torch.manual_seed(0)
    plain = Adapter(AdapterSettings(sources=SOURCES, out_dim=16)).eval()
    wide = Adapter(AdapterSettings(sources=SOURCES, out_dim=16, context_blocks=3,
                                   global_pool=True)).eval()
    missing, unexpected = wide.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith(("context.", "global_proj."))
                                              for k in missing)
    x = _feats()
    torch.testing.assert_close(wide(x), plain(x))
    out = wide(x)
    assert out.shape == (2, 16, 9, 11)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2, 9, 11))


def test_dilations_and_grid_kept():
    net = Adapter(AdapterSettings(sources=SOURCES, out_dim=16, context_blocks=3))
    assert [b.conv2.dilation for b in net.context] == [(2, 2), (4, 4), (8, 8)]
    block = BottleneckBlock(16, 16, dilation=4)
    assert block(torch.randn(1, 16, 5, 6)).shape == (1, 16, 5, 6)


def test_gradcheck_float64_context_and_global():
    torch.manual_seed(0)
    net = Adapter(AdapterSettings(sources=(("a", 3),), out_dim=8, context_blocks=2,
                                  global_pool=True, dropout=0.0)).double().eval()
    for b in net.context:
        torch.nn.init.normal_(b.norm3.weight)
    torch.nn.init.normal_(net.global_proj.weight, std=0.3)
    x = torch.randn(1, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: net({"a": t}), (x,), eps=1e-6, atol=1e-5)


def test_settings_round_trip_and_old_dicts():
    s = AdapterSettings(sources=SOURCES, out_dim=8, context_blocks=2, global_pool=True)
    assert AdapterSettings.from_dict(s.to_dict()) == s
    old = {k: v for k, v in s.to_dict().items() if k not in ("context_blocks", "global_pool")}
    restored = AdapterSettings.from_dict(old)
    assert restored.context_blocks == 0 and restored.global_pool is False
    with pytest.raises(ValueError, match="context_blocks"):
        AdapterSettings(sources=SOURCES, out_dim=8, context_blocks=-1)
    with pytest.raises(ValueError, match="label_budget"):
        TrainSettings(label_budget=1)


def _pairs(counts):
    out = []
    for i, n in enumerate(counts):
        uv = np.arange(2 * n, dtype=np.float64).reshape(n, 2) + 100 * i
        out.append(LabeledPair(f"p{i}", "toy", Path("s.png"), Path("t.png"), uv, uv + 1,
                               np.arange(n, dtype=np.float64)))
    return out


def test_subsample_labels_counts_and_seed():
    pairs = _pairs([10, 20, 30, 40])
    assert subsample_labels(pairs, 100) == pairs
    assert subsample_labels(pairs, 1000) == pairs
    a, b = subsample_labels(pairs, 40, seed=3), subsample_labels(pairs, 40, seed=3)
    assert [p.pair_id for p in a] == [p.pair_id for p in b]
    for p, q in zip(a, b, strict=True):
        np.testing.assert_array_equal(p.src_uv, q.src_uv)
    # every pair keeps >= 2 labels; only pairs that fell below 2 were dropped
    assert all(len(p.src_uv) >= 2 for p in a)
    assert 40 - 1 * (4 - len(a)) <= sum(len(p.src_uv) for p in a) <= 40
    # kept labels stay matched: trg = src + 1 and score indexes the original rows
    by_id = {p.pair_id: p for p in pairs}
    for p in a:
        np.testing.assert_array_equal(p.trg_uv, p.src_uv + 1)
        np.testing.assert_array_equal(by_id[p.pair_id].src_uv[p.score.astype(int)], p.src_uv)
    # idempotent: a subset already under the budget is returned unchanged
    assert subsample_labels(a, 40, seed=9) == a
    # a budget of 3 over 4 pairs can keep at most one pair (>= 2 labels each)
    assert len(subsample_labels(pairs, 3, seed=0)) <= 1
    with pytest.raises(ValueError, match=">= 0"):
        subsample_labels(pairs, -1)


SIDE = 8


def _twin_problem(num_images=6, seed=0):
    """Front/rear twins: cell ``(i, j)`` and ``(i, j + 4)`` look alike.

    Channels 0-3 hold a code of ``(i, j mod 4)`` plus per-image noise (a local
    descriptor of an object with two identical halves, like front and rear
    wheels). Channel 4 marks column 0 (the object's front). Columns 2 and 6
    have identical 3x3 neighbourhoods (the marker and the grid border are
    two cells away), so only an adapter that sees further can tell them apart.
    """
    rng = np.random.default_rng(seed)
    half = rng.normal(size=(4, SIDE, SIDE // 2))
    code = np.concatenate([half, half], axis=2)
    transform = resize_and_pad(SIDE, SIDE, SIDE)
    maps = {}
    for k in range(num_images):
        f = np.zeros((5, SIDE, SIDE))
        f[:4] = code + 0.3 * rng.normal(size=(4, SIDE, SIDE))
        f[4, :, 0] = 3.0
        maps[Path(f"m{k}.png")] = {"a": FeatureMap(f.astype(np.float32), transform, "a")}
    jj, ii = np.meshgrid(np.arange(SIDE), np.arange(SIDE))
    uv = np.stack([jj.ravel(), ii.ravel()], 1).astype(np.float64)
    names = sorted(maps)
    pairs = [LabeledPair(f"{a}-{b}", "toy", names[a], names[b], uv, uv, np.ones(len(uv)))
             for a in range(num_images - 2) for b in range(num_images - 2) if a != b]
    return pairs, (lambda path, category: maps[Path(path)]), maps, names[-2:]


def _twin_accuracy(src: FeatureMap, trg: FeatureMap) -> float:
    """Fraction of the cells of columns 2 and 6 whose NN is the same cell (not its twin)."""
    a = src.features.reshape(src.features.shape[0], -1)
    b = trg.features.reshape(trg.features.shape[0], -1)
    hit = np.argmax(a.T @ b, axis=1) == np.arange(a.shape[1])
    cols = np.tile(np.arange(SIDE), SIDE)
    return float(hit[(cols == 2) | (cols == 6)].mean())


def test_context_blocks_tell_twins_apart(tmp_path):
    pairs, provider, maps, (u, v) = _twin_problem()
    acc = {}
    for blocks in (0, 2):
        s = TrainSettings(steps=150, val_every=150, max_points=64, out_dim=16, lr=5e-3,
                          val_fraction=0.0, seed=0, dropout=0.0, context_blocks=blocks)
        r = train_adapter(pairs, provider, tmp_path / f"b{blocks}", s, progress=False)
        net = from_pretrained(r.best_path)
        acc[blocks] = _twin_accuracy(apply_adapter(net, maps[u]), apply_adapter(net, maps[v]))
    assert acc[0] <= 0.7, acc  # a coin flip between the twins (0.5 at these settings)
    assert acc[2] >= 0.85, acc  # 0.94 at these settings


def test_context_defaults_by_backbone():
    from geocorr.adapter.train import context_defaults

    assert context_defaults(["xfeat"]) == {"context_blocks": 4, "global_pool": True}
    assert context_defaults(["xfeat", "classical"]) == {"context_blocks": 4, "global_pool": True}
    assert context_defaults(["sd", "dinov2"]) == {"context_blocks": 0, "global_pool": False}
    assert context_defaults(["xfeat", "dinov2"]) == {"context_blocks": 0, "global_pool": False}
    with pytest.raises(ValueError, match="at least one"):
        context_defaults([])

import math

import torch

from geocorr.adapter.losses import (
    LossSettings,
    adapter_loss,
    cell_centers_normalized,
    clip_loss,
    dense_epe_loss,
    logit_scale,
    sample_descriptors,
    soft_argmax,
)
from geocorr.adapter.network import Adapter, AdapterSettings


def test_cell_centers_hand_values():
    c = cell_centers_normalized(2, 4)
    torch.testing.assert_close(c[:4, 0], torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    torch.testing.assert_close(c[::4, 1], torch.tensor([-0.5, 0.5]))


def test_sample_at_cell_centre_returns_that_cell():
    torch.manual_seed(0)
    desc = torch.randn(5, 3, 4)
    xy = cell_centers_normalized(3, 4)[[0, 6, 11]]
    out = sample_descriptors(desc, xy)
    cells = desc.reshape(5, -1)[:, [0, 6, 11]].T
    torch.testing.assert_close(out, torch.nn.functional.normalize(cells, dim=1))


def test_clip_loss_perfect_vs_random():
    eye = torch.eye(8)
    perfect = clip_loss(eye, eye, torch.tensor(1 / 0.07))
    # hand value: logit 1/0.07 on the diagonal, 0 elsewhere
    expected = -math.log(math.exp(1 / 0.07) / (math.exp(1 / 0.07) + 7))
    assert abs(perfect.item() - expected) < 1e-5
    assert perfect.item() < 1e-4
    shuffled = clip_loss(eye, eye[torch.roll(torch.arange(8), 1)], torch.tensor(1 / 0.07))
    assert shuffled.item() > 10


def test_soft_argmax_one_hot_gives_that_cell():
    h, w = 3, 5
    corr = torch.full((2, h * w), -1.0)
    corr[0, 7] = 1.0
    corr[1, 14] = 1.0
    out = soft_argmax(corr, h, w, beta=0.02)
    torch.testing.assert_close(out, cell_centers_normalized(h, w)[[7, 14]])


def test_dense_epe_zero_for_exact_one_hot_maps():
    h, w = 4, 4
    trg = torch.eye(16).reshape(16, h, w)
    src = torch.eye(16)[[3, 9]]
    xy = cell_centers_normalized(h, w)[[3, 9]]
    assert dense_epe_loss(src, trg, xy, beta=0.02).item() < 1e-6
    wrong = cell_centers_normalized(h, w)[[0, 0]]
    epe = dense_epe_loss(src, trg, wrong, beta=0.02).item()
    d = torch.linalg.vector_norm(xy - wrong, dim=1).mean().item()
    assert abs(epe - d) < 1e-5


def test_logit_scale_clamped():
    assert abs(logit_scale(torch.tensor(math.log(1000.0)), 100.0).item() - 100.0) < 1e-3
    assert abs(logit_scale(torch.tensor(0.0), 100.0).item() - 1.0) < 1e-6


def test_gradients_reach_adapter_and_logit_scale():
    torch.manual_seed(0)
    net = Adapter(AdapterSettings(sources=(("a", 6), ("b", 4)), out_dim=8))
    feats = {"a": torch.randn(2, 6, 5, 5), "b": torch.randn(2, 4, 5, 5)}
    out = net(feats)
    xy = torch.rand(6, 2) * 1.6 - 0.8
    terms = adapter_loss(out[0], out[1], xy, xy.flip(0), net.log_logit_scale)
    terms.total.backward()
    assert net.log_logit_scale.grad is not None and net.log_logit_scale.grad.abs() > 0
    assert net.mix_logits.grad.abs().sum() > 0
    for name in ("a", "b"):
        assert net.blocks[name].conv1.weight.grad.abs().sum() > 0


def test_gradcheck_float64():
    torch.manual_seed(0)
    src = torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)
    trg = torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)
    log_s = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    xy_s = torch.tensor([[-0.3, 0.2], [0.4, -0.1], [0.1, 0.5]], dtype=torch.float64)
    xy_t = torch.tensor([[0.2, 0.3], [-0.4, 0.1], [0.35, -0.25]], dtype=torch.float64)
    settings = LossSettings(beta=0.5)

    def f(a, b, s):
        return adapter_loss(a, b, xy_s, xy_t, s, settings).total

    assert torch.autograd.gradcheck(f, (src, trg, log_s))

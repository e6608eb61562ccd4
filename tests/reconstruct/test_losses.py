"""DT and soft-IoU losses on hand-made masks: values and gradient direction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geocorr.reconstruct.losses import (
    distance_fields,
    dt_loss,
    mask_iou,
    soft_iou_loss,
)


def _square(H, W, top, left, size):
    m = np.zeros((H, W), bool)
    m[top:top + size, left:left + size] = True
    return m


def test_distance_fields_hand_values():
    # 1x7 row, mask at columns 2..4, no dilation, no border replication.
    m = np.zeros((1, 7), bool)
    m[0, 2:5] = True
    f = distance_fields(m, dilation_px=0, replicate_border=False)
    diag2 = 1 + 49
    np.testing.assert_allclose(f.phi_out[0] * diag2, [4, 1, 0, 0, 0, 1, 4], atol=1e-5)
    # distance to nearest outside pixel: column 2 -> 1, column 3 -> 2 (row is padded with
    # background above and below, so vertical neighbours are outside: distance 1 everywhere).
    np.testing.assert_allclose(f.phi_in[0] * diag2, [0, 0, 1, 1, 1, 0, 0], atol=1e-5)


def test_distance_fields_dilation():
    m = _square(20, 20, 8, 8, 4)
    f = distance_fields(m, dilation_px=2)
    assert f.dilated[6, 9] and f.dilated[9, 13] and not f.dilated[5, 9]
    assert f.phi_out[6, 9] == 0
    # row 4 is 4 px from the mask, 2 px from M+ -> 4 / diag^2
    np.testing.assert_allclose(f.phi_out[4, 9], 4 / 800, rtol=1e-5)


def test_border_replication_makes_border_interior():
    m = np.zeros((20, 20), bool)
    m[:, :6] = True  # object truncated by the left border
    rep = distance_fields(m, 0, replicate_border=True)
    zero = distance_fields(m, 0, replicate_border=False)
    # at column 0 the replicated field sees 6 px to the right edge (the only real edge).
    np.testing.assert_allclose(rep.phi_in[10, 0] * 800, 36, rtol=1e-5)
    np.testing.assert_allclose(zero.phi_in[10, 0] * 800, 1, rtol=1e-5)


def test_dt_loss_value_and_gradient_direction():
    H, W = 32, 32
    m = _square(H, W, 10, 10, 8)
    f = distance_fields(m, dilation_px=0)
    phi_out, phi_in = f.tensors()
    # S covers an outside pixel only: loss term is phi_out there plus uncovered interior.
    s = torch.zeros(H, W, dtype=torch.float32)
    s[2, 2] = 1.0
    expected = phi_out[2, 2] / (H * W) + phi_in.sum() / (H * W)
    torch.testing.assert_close(dt_loss(s, phi_out, phi_in, coverage_weight=0.0), expected)
    # Gradient: increasing S outside the mask raises the loss, inside lowers it.
    s = torch.full((H, W), 0.5, requires_grad=True)
    dt_loss(s, phi_out, phi_in, coverage_weight=0.5).backward()
    assert s.grad[2, 2] > 0
    assert s.grad[14, 14] < 0
    assert s.grad[12, 12] <= 0


def test_dt_loss_pulls_shifted_blob_towards_mask():
    # A Gaussian blob at x0 to the left of the mask: d loss / d x0 < 0 (move right).
    H, W = 40, 40
    m = _square(H, W, 15, 24, 10)
    phi_out, phi_in = distance_fields(m, 1.0).tensors(dtype=torch.float64)
    x0 = torch.tensor(8.0, dtype=torch.float64, requires_grad=True)
    yy, xx = torch.meshgrid(torch.arange(H, dtype=torch.float64),
                            torch.arange(W, dtype=torch.float64), indexing="ij")
    s = torch.exp(-((xx - x0) ** 2 + (yy - 20) ** 2) / (2 * 4.0 ** 2))
    dt_loss(s, phi_out, phi_in, 0.5).backward()
    assert x0.grad < 0


def test_soft_iou_hand_values_and_gradcheck():
    m = torch.zeros(4, 4, dtype=torch.float64)
    m[:2, :2] = 1
    s = torch.zeros(4, 4, dtype=torch.float64)
    s[:2, :4] = 1  # covers the mask and 4 extra pixels: IoU = 4 / 8
    torch.testing.assert_close(soft_iou_loss(s, m), torch.tensor(0.5, dtype=torch.float64),
                               atol=1e-5, rtol=0)
    assert float(soft_iou_loss(m.clone(), m)) == pytest.approx(0.0, abs=1e-6)
    s = torch.rand(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    s.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: soft_iou_loss(x, m), (s,))
    soft_iou_loss(s, m).backward()
    assert (s.grad[m.bool()] < 0).all() and (s.grad[~m.bool()] > 0).all()


def test_dt_loss_gradcheck():
    m = _square(6, 6, 1, 1, 3)
    phi_out, phi_in = distance_fields(m, 0.5).tensors(dtype=torch.float64)
    s = torch.rand(6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    s.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: dt_loss(x, phi_out, phi_in, 0.3), (s,))


def test_mask_iou_and_errors():
    a = _square(10, 10, 0, 0, 4)
    b = _square(10, 10, 2, 2, 4)
    assert mask_iou(a, b) == pytest.approx(4 / 28)
    assert mask_iou(np.zeros((3, 3)), np.zeros((3, 3))) == 0.0
    with pytest.raises(ValueError, match="shape"):
        mask_iou(a, b[:5])
    with pytest.raises(ValueError, match="silhouette"):
        soft_iou_loss(torch.zeros(3, 3), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="dilation_px"):
        distance_fields(a, -1)

"""Kept-label figure: one row per filter, green = correct by GT, red = wrong."""

import numpy as np
import pytest
from PIL import Image

from geocorr.report.label_figure import CORRECT, WRONG, KeptLabels, save_label_figure


def test_rows_and_colours(tmp_path):
    img = np.full((50, 80, 3), 128, np.uint8)
    good = KeptLabels(np.array([[10.0, 30.0]]), np.array([[10.0, 30.0]]), np.array([True]))
    bad = KeptLabels(np.array([[40.0, 40.0]]), np.array([[60.0, 20.0]]), np.array([False]))
    p = save_label_figure(tmp_path / "f.png", img, img, {"a": good, "b": bad},
                          panel_height=50, title="x")
    fig = np.asarray(Image.open(p))
    assert fig.shape == (100, 160, 3)          # two rows of two 80x50 panels
    top, bottom = fig[:50].reshape(-1, 3), fig[50:].reshape(-1, 3)
    assert (top == CORRECT).all(1).any() and not (top == WRONG).all(1).any()
    assert (bottom == WRONG).all(1).any() and not (bottom == CORRECT).all(1).any()
    # the source point of the correct label, at (x 10, y 30) on the first row
    assert tuple(fig[30, 10]) == CORRECT


def test_bad_input(tmp_path):
    img = np.zeros((5, 5, 3), np.uint8)
    with pytest.raises(ValueError, match="equal"):
        KeptLabels(np.zeros((2, 2)), np.zeros((3, 2)), np.zeros(2, bool))
    with pytest.raises(ValueError, match="empty"):
        save_label_figure(tmp_path / "f.png", img, img, {})
    with pytest.raises(ValueError, match="image_t"):
        save_label_figure(tmp_path / "f.png", img, img[..., 0],
                          {"a": KeptLabels(np.zeros((0, 2)), np.zeros((0, 2)), np.zeros(0, bool))})
    assert not (tmp_path / "f.png").exists()

"""The one image reader and the one mask reader: the documented mask rule per mode, errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from geocorr.data.images import image_size, read_mask, read_rgb, resized_size


def _disc(h=24, w=32):
    yy, xx = np.mgrid[:h, :w]
    return (xx - 15) ** 2 + (yy - 11) ** 2 < 49


def test_mask_rule_single_channel_modes(tmp_path):
    m = _disc()
    Image.fromarray(m.astype(np.uint8) * 255).save(tmp_path / "l.png")
    Image.fromarray(m).save(tmp_path / "one.png")  # mode "1"
    Image.fromarray(m.astype(np.uint8) * 7).convert("P").save(tmp_path / "p.png")
    for name in ("l.png", "one.png", "p.png"):
        np.testing.assert_array_equal(read_mask(tmp_path / name), m, err_msg=name)


def test_mask_rule_rgb_any_channel(tmp_path):
    m = _disc()
    rgb = np.zeros((*m.shape, 3), np.uint8)
    rgb[m, 2] = 200  # blue object, zero red/green
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "rgb.png"), m)


def test_mask_rule_opaque_alpha_uses_colour(tmp_path):
    """A black/white mask exported as RGBA (alpha 255 everywhere) is its colour, not all object."""
    m = _disc()
    rgba = np.zeros((*m.shape, 4), np.uint8)
    rgba[m, :3] = 255
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "opaque.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "opaque.png"), m)
    la = np.stack([m.astype(np.uint8) * 255, np.full(m.shape, 255, np.uint8)], axis=-1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "la.png"), m)


def test_mask_rule_cutout_alpha_is_the_mask(tmp_path):
    """A cut-out (colour everywhere, transparent background): alpha is the mask."""
    m = _disc()
    rng = np.random.default_rng(0)
    rgba = rng.integers(1, 256, (*m.shape, 4)).astype(np.uint8)
    rgba[..., 3] = np.where(m, 255, 0)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cut.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "cut.png"), m)
    la = np.stack([np.full(m.shape, 90, np.uint8), np.where(m, 128, 0).astype(np.uint8)], -1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "la.png"), m)


def test_mask_resize_nearest(tmp_path):
    m = np.zeros((40, 60), bool)
    m[10:30, 20:40] = True
    Image.fromarray(m.astype(np.uint8) * 255).save(tmp_path / "m.png")
    small = read_mask(tmp_path / "m.png", size=(30, 20))
    assert small.shape == (20, 30)
    np.testing.assert_array_equal(small, m[::2, ::2])


def test_read_errors_name_the_file(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_mask(tmp_path / "nope.png")
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        read_rgb(tmp_path / "nope.jpg")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    for fn in (read_mask, read_rgb, image_size):
        with pytest.raises(ValueError, match="bad.png"):
            fn(tmp_path / "bad.png")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "ok.jpg")
    truncated = (tmp_path / "ok.jpg").read_bytes()[:200]
    (tmp_path / "cut.jpg").write_bytes(truncated)
    with pytest.raises(ValueError, match="cut.jpg"):
        read_rgb(tmp_path / "cut.jpg")
    # PIL refuses images over 2 * MAX_IMAGE_PIXELS as decompression bombs
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ValueError, match="ok.jpg.*too large"):
        read_rgb(tmp_path / "ok.jpg")


def test_resized_size():
    assert resized_size(6000, 4000, 1024) == (1024, 683)
    assert resized_size(400, 6000, 1024) == (68, 1024)
    assert resized_size(800, 600, 1024) == (800, 600)
    assert resized_size(800, 600, None) == (800, 600)
    assert resized_size(5000, 1, 100) == (100, 1)


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_read_rgb_max_side_matches_a_full_resize(tmp_path, ext):
    import cv2

    yy, xx = np.mgrid[:400, :600]
    img = np.stack([xx * 255 // 599, yy * 255 // 399, (xx + yy) * 255 // 998], -1).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / f"g.{ext}", quality=95)
    full = read_rgb(tmp_path / f"g.{ext}")
    assert full.shape == (400, 600, 3) and full.dtype == np.uint8
    small = read_rgb(tmp_path / f"g.{ext}", max_side=150)
    assert small.shape == (100, 150, 3)
    ref = cv2.resize(full, (150, 100), interpolation=cv2.INTER_AREA)
    # a smooth gradient: the reduced decode + resize agrees with an area resize of the full image
    assert np.abs(small.astype(int) - ref.astype(int)).mean() < 3
    assert read_rgb(tmp_path / f"g.{ext}", max_side=1000).shape == (400, 600, 3)
    assert image_size(tmp_path / f"g.{ext}") == (600, 400)

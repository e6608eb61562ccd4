import numpy as np
import pytest

from geocorr.features.classical import ClassicalBackbone, ClassicalSettings, daisy_dim


def _texture(size=128, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, size=(size // 4, size // 4, 3), dtype=np.uint8)
    return np.kron(img, np.ones((4, 4, 1), dtype=np.uint8))


SMALL = ClassicalSettings(canvas_size=128, grid_size=32, radius=8, rings=2, histograms=6)


def test_shape_and_unit_daisy_block():
    b = ClassicalBackbone(SMALL)
    f = b.extract(_texture())
    D = daisy_dim(SMALL)
    assert D == (2 * 6 + 1) * 8
    assert f.shape == (D + 3, 32, 32)
    np.testing.assert_allclose(np.linalg.norm(f.features[:D], axis=0), 1.0, atol=1e-4)


def test_lab_block_of_a_uniform_colour():
    img = np.zeros((50, 80, 3), dtype=np.uint8)
    img[:] = (255, 0, 0)
    f = ClassicalBackbone(SMALL).extract(img)
    lab = f.features[-3:, 16, 16]
    # CIE Lab of sRGB red: L = 53.24, a = 80.09, b = 67.20; block = 0.5 * (L/100, a/128, b/128)
    np.testing.assert_allclose(lab, 0.5 * np.array([53.24 / 100, 80.09 / 128, 67.20 / 128]),
                               atol=0.01)
    # padding rows (black): L = a = b = 0
    np.testing.assert_allclose(f.features[-3:, 0, 16], 0.0, atol=1e-6)


def test_descriptor_is_at_the_cell_centre():
    """Shifting the image by one cell (4 px) shifts the descriptors by one cell."""
    b = ClassicalBackbone(SMALL)
    img = _texture(seed=1)
    shifted = np.zeros_like(img)
    shifted[:, 4:] = img[:, :-4]
    a = b.extract(img).features
    s = b.extract(shifted).features
    np.testing.assert_allclose(s[:, 6:-6, 7:-5], a[:, 6:-6, 6:-6], atol=2e-3)
    assert np.abs(s[:, 6:-6, 6:-6] - a[:, 6:-6, 6:-6]).max() > 0.1  # the test can fail


def test_bad_settings_and_key():
    with pytest.raises(ValueError, match="must divide"):
        ClassicalSettings(canvas_size=100, grid_size=64)
    a = ClassicalBackbone().cache_key()
    assert a != ClassicalBackbone(ClassicalSettings(color_weight=1.0)).cache_key()
    assert a == ClassicalBackbone(ClassicalSettings()).cache_key()

import numpy as np
import pytest

from geocorr.features.base import FeatureMap
from geocorr.features.cache import FeatureCache, file_identity
from geocorr.features.classical import ClassicalBackbone, ClassicalSettings
from geocorr.geometry.image_transform import resize_and_pad


class Counting:
    """A backbone that counts its calls; output depends on image, scale and mask."""

    name = "counting"

    def __init__(self, scale=1.0):
        self.scale = scale
        self.calls = 0

    def cache_key(self):
        return f"counting|scale={self.scale}"

    def extract(self, image, mask=None):
        self.calls += 1
        f = image[::8, ::8].transpose(2, 0, 1).astype(np.float32) * self.scale / 255.0
        if mask is not None:
            f = f * mask[::8, ::8][None]
        return FeatureMap(f, resize_and_pad(image.shape[1], image.shape[0], image.shape[1]),
                          self.name)


def _img(seed=0):
    return np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)


def test_second_call_reads_from_disk(tmp_path):
    cache, bb, img = FeatureCache(tmp_path), Counting(), _img()
    a = cache.get_or_compute(img, bb)
    b = cache.get_or_compute(img, bb)
    assert bb.calls == 1 and (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(a.features, b.features)
    assert b.transform == a.transform and b.name == "counting"
    # a fresh cache object on the same folder also hits
    again = FeatureCache(tmp_path)
    again.get_or_compute(img, bb)
    assert bb.calls == 1 and again.hits == 1
    assert not list(tmp_path.rglob(".tmp-*"))


def test_changes_change_the_key(tmp_path):
    cache, img = FeatureCache(tmp_path), _img()
    one, two = Counting(1.0), Counting(2.0)
    a = cache.get_or_compute(img, one)
    b = cache.get_or_compute(img, two)
    assert one.calls == two.calls == 1
    np.testing.assert_allclose(b.features, 2 * a.features)
    cache.get_or_compute(_img(1), one)
    cache.get_or_compute(img, one, key_extra="v2")
    mask = np.zeros((32, 32), np.float32)
    cache.get_or_compute(img, one, mask=mask)
    mask2 = mask.copy()
    mask2[0, 0] = 1
    cache.get_or_compute(img, one, mask=mask2)
    assert one.calls == 5
    cache.get_or_compute(img, one, mask=mask2.copy())
    assert one.calls == 5
    k1 = cache.key(img, ClassicalBackbone())
    k2 = cache.key(img, ClassicalBackbone(ClassicalSettings(radius=12)))
    assert k1 != k2


@pytest.mark.parametrize("garbage", [b"", b"not a zip", b"PK\x03\x04truncated"])
def test_corrupt_entry_is_recomputed(tmp_path, garbage):
    cache, bb, img = FeatureCache(tmp_path), Counting(), _img()
    a = cache.get_or_compute(img, bb)
    path = cache.path(img, bb)
    path.write_bytes(garbage)
    b = cache.get_or_compute(img, bb)
    assert bb.calls == 2
    np.testing.assert_array_equal(a.features, b.features)
    cache.get_or_compute(img, bb)
    assert bb.calls == 2  # rewritten entry is valid


def test_entry_under_another_key_is_not_trusted(tmp_path):
    cache, img = FeatureCache(tmp_path), _img()
    one, two = Counting(1.0), Counting(2.0)
    cache.get_or_compute(img, one)
    # plant one's entry where two's should be: the stored key does not match
    cache.path(img, two).parent.mkdir(parents=True, exist_ok=True)
    cache.path(img, two).write_bytes(cache.path(img, one).read_bytes())
    b = cache.get_or_compute(img, two)
    assert two.calls == 1 and b.features.max() > 1.0


def test_float16(tmp_path):
    cache, bb, img = FeatureCache(tmp_path, float16=True), Counting(), _img()
    a = cache.get_or_compute(img, bb)
    b = cache.get_or_compute(img, bb)
    assert b.features.dtype == np.float32
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_allclose(b.features, Counting().extract(img).features, atol=1e-3)


def test_file_identity(tmp_path):
    p = tmp_path / "w.bin"
    p.write_bytes(b"abc")
    a = file_identity(p)
    p.write_bytes(b"abd")
    assert file_identity(p) != a
    assert str(p.stat().st_size) in file_identity(p, hash_bytes=False)
    with pytest.raises(FileNotFoundError):
        file_identity(tmp_path / "nope")

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


def _tiny_spair(root):
    """Two images (one with a mask), one test pair, SPair-71k layout."""
    import json

    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("car_0000", "car_0001"):
        p = root / "JPEGImages" / "car" / f"{name}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(p)
    seg = np.zeros((48, 64), np.uint8)
    seg[10:40, 8:50] = 255
    (root / "Segmentation" / "car").mkdir(parents=True)
    Image.fromarray(seg).save(root / "Segmentation" / "car" / "car_0000.png")
    stem = "000000-car_0000-car_0001:car"
    pair = {"src_imname": "car_0000.jpg", "trg_imname": "car_0001.jpg", "category": "car",
            "src_imsize": [64, 48, 3], "trg_imsize": [64, 48, 3],
            "src_bndbox": [8, 10, 49, 39], "trg_bndbox": [0, 0, 63, 47],
            "src_kps": [[10.0, 12.0]], "trg_kps": [[20.0, 22.0]], "kps_ids": ["0"]}
    (root / "PairAnnotation" / "test").mkdir(parents=True)
    (root / "PairAnnotation" / "test" / f"{stem}.json").write_text(json.dumps(pair))
    (root / "Layout" / "large").mkdir(parents=True)
    (root / "Layout" / "large" / "test.txt").write_text(stem + "\n")
    return root


def test_backbone_inputs_and_mask_reading(tmp_path):
    from PIL import Image

    from geocorr.features.cache import backbone_inputs, read_mask
    from geocorr.features.registry import make_backbone

    mask = np.zeros((4, 5), bool)
    mask[1:3, 2:4] = True
    assert backbone_inputs(make_backbone("classical"), mask=mask, category="car") == {}
    got = backbone_inputs(make_backbone("classical", context=True), mask=mask,
                          bbox=np.array([0, 0, 3, 3]))
    assert list(got) == ["mask"] and got["mask"].dtype == bool
    got = backbone_inputs(make_backbone("xfeat", context=True), bbox=np.array([0, 0, 3, 3]))
    assert list(got) == ["bbox"]
    sd = make_backbone("sd", prompt="a photo of a {category}")
    assert backbone_inputs(sd, category="car") == {"category": "car"}
    with pytest.raises(ValueError, match="category"):
        backbone_inputs(sd)
    pal = Image.fromarray(mask.astype(np.uint8) * 3, mode="L").convert("P")
    pal.save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), mask)
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(ValueError, match="not a readable image"):
        read_mask(tmp_path / "bad.png")


def test_encode_dataset_and_cli(tmp_path):
    from typer.testing import CliRunner

    from geocorr.cli import app
    from geocorr.features.cache import encode_dataset
    from geocorr.features.registry import make_backbone

    root = _tiny_spair(tmp_path / "ds")
    cache = FeatureCache(tmp_path / "cache")
    bb = make_backbone("classical", canvas_size=64, grid_size=16, radius=4, context=True)
    s = encode_dataset(root, ["test"], bb, cache, progress=False)
    assert (s.num_images, s.computed, s.cached, s.masked) == (2, 2, 0, 1)
    s = encode_dataset(root, ["test"], bb, cache, progress=False)
    assert (s.computed, s.cached) == (0, 2)
    r = CliRunner().invoke(app, ["features", "--dataset", str(root), "--split", "test",
                                 "--backbone", "classical", "--cache", str(tmp_path / "c2"),
                                 "--quiet", "--float16"])
    assert r.exit_code == 0, r.output
    assert "2 images, 2 computed" in r.output
    assert len(list((tmp_path / "c2" / "classical").rglob("*.npz"))) == 2
    r = CliRunner().invoke(app, ["features", "--dataset", str(root), "--split", "test",
                                 "--backbone", "xfeat", "--grid-size", "8", "--context",
                                 "--cache", str(tmp_path / "c3"), "--quiet"])
    assert r.exit_code == 0, r.output
    assert "1 with masks" in r.output
    r = CliRunner().invoke(app, ["features", "--dataset", str(root), "--backbone", "xfeat",
                                 "--timestep", "3", "--cache", str(tmp_path / "c2")])
    assert r.exit_code == 2 and "timestep" in " ".join(r.output.split())
    r = CliRunner().invoke(app, ["features", "--dataset", str(root), "--backbone", "dinov2+sd",
                                 "--cache", str(tmp_path / "c2")])
    assert r.exit_code == 2 and "combinations are fused" in " ".join(r.output.split())
    r = CliRunner().invoke(app, ["features", "--dataset", str(root), "--backbone", "sd",
                                 "--context", "--cache", str(tmp_path / "c2")])
    assert r.exit_code == 2 and "['context'] apply to none" in " ".join(r.output.split())


def test_dataset_mask_for_reads_segmentation_or_none(tmp_path):
    from PIL import Image

    from geocorr.features.cache import dataset_mask_for

    (tmp_path / "Segmentation" / "car").mkdir(parents=True)
    m = np.zeros((4, 5), np.uint8)
    m[1:3, 2:4] = 255
    Image.fromarray(m).save(tmp_path / "Segmentation" / "car" / "car_0001.png")
    mask_for = dataset_mask_for(tmp_path)
    got = mask_for(tmp_path / "JPEGImages" / "car" / "car_0001.jpg", "car")
    np.testing.assert_array_equal(got, m > 0)
    assert mask_for(tmp_path / "JPEGImages" / "car" / "car_0002.jpg", "car") is None


def test_encode_uses_the_masks_training_and_evaluation_read(tmp_path):
    """On the procedural benchmark the context masks are the predicted ones (PredictedMasks/),
    never the true Segmentation/: encoding keys its entries by them, so eval and train hit."""
    from PIL import Image

    from geocorr.data.images import read_rgb
    from geocorr.features.cache import dataset_mask_for, encode_dataset
    from geocorr.features.registry import make_backbone

    root = _tiny_spair(tmp_path / "ds")
    predicted = np.zeros((48, 64), np.uint8)
    predicted[5:30, 20:60] = 255                 # differs from the true mask
    (root / "PredictedMasks" / "car").mkdir(parents=True)
    Image.fromarray(predicted).save(root / "PredictedMasks" / "car" / "car_0000.png")
    cache = FeatureCache(tmp_path / "cache")
    bb = make_backbone("classical", canvas_size=64, grid_size=16, radius=4, context=True)
    s = encode_dataset(root, ["test"], bb, cache, progress=False)
    assert (s.computed, s.masked) == (2, 1)
    path = root / "JPEGImages" / "car" / "car_0000.jpg"
    mask = dataset_mask_for(root)(path, "car")
    np.testing.assert_array_equal(mask, predicted > 0)
    before = cache.misses
    cache.features_for(read_rgb(path), bb, mask=mask, category="car")
    assert cache.misses == before                # the entry encode wrote

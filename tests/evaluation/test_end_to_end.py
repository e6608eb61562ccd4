"""docs/evaluation.md's chain (backbone -> feature_predictor -> evaluate_pairs) on a tiny
random-weight DINOv2, the same code path as the real weights."""

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from spair_fixture import spair_pair, write_spair  # noqa: E402

from geocorr.evaluation.predict import PredictSettings, feature_predictor  # noqa: E402
from geocorr.evaluation.scorer import evaluate_pairs, open_dataset  # noqa: E402

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def dino_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("dino")
    torch.manual_seed(0)
    cfg = transformers.Dinov2Config(patch_size=14, image_size=56, hidden_size=32,
                                    num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=64)
    transformers.Dinov2Model(cfg).save_pretrained(root)
    return root


def test_self_pairs_through_tiny_dinov2(tmp_path, dino_dir):
    from geocorr.features.registry import make_backbone

    # source == target image: every keypoint must come back to (about) itself
    kps = [(10.0, 12.0), (100.0, 50.0), (60.0, 80.0)]
    pair = spair_pair(1, "cat", "n.png", "n.png", kps, kps, [0, 1, 2],
                      trg_bbox=(0, 0, 140, 90), src_size=(140, 90), trg_size=(140, 90))
    root = write_spair(tmp_path, [pair], {})
    noise = np.random.default_rng(0).integers(0, 255, size=(90, 140, 3), dtype=np.uint8)
    path = root / "JPEGImages" / "cat" / "n.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(noise).save(path)

    ds = open_dataset("spair", root)
    dino = make_backbone("dinov2", model=str(dino_dir), image_size=140)  # 10 x 10 grid

    def features(p):
        return dino.extract(np.asarray(Image.open(p).convert("RGB")))

    pairs = ds.pairs("test")
    for method in ("nn", "soft_argmax"):
        res = evaluate_pairs(pairs, feature_predictor(features, PredictSettings(method=method)),
                             ds, (0.1,))
        err = res.scores[0].errors / res.scores[0].threshold
        # a cell is 14 canvas px = 14 original px here; T = 140: half a cell diagonal < 0.071 T
        assert np.all(err < 0.1), (method, err)
        assert res.report.overall.per_image[0.1] == 1.0

"""Dataset masks, instance selection, and SAM3 through transformers on a tiny random model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from geocorr.reconstruct.segmenter import (
    DatasetMasks,
    Sam3Segmenter,
    Sam3Settings,
    Segmenter,
    box_iou,
    select_instance,
)


def test_dataset_masks_grey_palette_and_errors(tmp_path):
    d = tmp_path / "Segmentation" / "car"
    d.mkdir(parents=True)
    arr = np.zeros((6, 8), np.uint8)
    arr[2:4, 3:6] = 255
    Image.fromarray(arr).save(d / "car_0001.png")
    pal = Image.fromarray((arr > 0).astype(np.uint8) * 3, mode="P")
    pal.putpalette([0, 0, 0] * 256)
    pal.save(d / "car_0002.png")
    seg = DatasetMasks(tmp_path)
    assert isinstance(seg, Segmenter)
    img = np.zeros((6, 8, 3), np.uint8)
    for stem in ("car_0001", "car_0002"):
        m = seg.segment(img, "car", stem)
        assert m.dtype == bool and m.sum() == 6 and m[2, 3] and not m[0, 0]
    with pytest.raises(FileNotFoundError, match="car_0003.png"):
        seg.segment(img, "car", "car_0003")
    with pytest.raises(ValueError, match="car_0001.png.*8x6.*image is 4x4"):
        seg.segment(np.zeros((4, 4, 3), np.uint8), "car", "car_0001")
    (d / "car_0004.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="car_0004.png"):
        seg.segment(img, "car", "car_0004")


def test_select_instance_score_and_box():
    scores = np.array([0.9, 0.6, 0.95])
    boxes = np.array([[0, 0, 10, 10], [20, 20, 40, 40], [0, 0, 1, 1]], float)
    masks = np.ones((3, 4, 4), bool)
    masks[2] = False  # highest score but an empty mask
    assert select_instance(scores, boxes, masks) == 0
    assert select_instance(scores, boxes, masks, bbox=(22, 22, 40, 40)) == 1
    assert select_instance(scores, boxes, masks, bbox=(100, 100, 110, 110)) is None
    assert select_instance(np.zeros(0), np.zeros((0, 4)), np.zeros((0, 4, 4))) is None
    np.testing.assert_allclose(box_iou(boxes[:1], (5, 0, 15, 10)), [50 / 150])


def test_sam3_missing_checkpoint_says_where(tmp_path):
    seg = Sam3Segmenter(Sam3Settings(model=str(tmp_path / "nowhere")))
    with pytest.raises(FileNotFoundError, match="nowhere.*facebook/sam3"):
        seg.segment(np.zeros((8, 8, 3), np.uint8), "car", "x")


@pytest.mark.slow
def test_sam3_tiny_random_model(tmp_path):
    """Same code path as the real checkpoint, on a random-weight tiny config.

    Needs torchvision (transformers' Sam3 image processor imports it); this venv has none
    for its CPU torch, hence skipped there.
    """
    pytest.importorskip("torchvision")
    import torch
    from transformers import CLIPTokenizer, Sam3Config, Sam3Model, Sam3Processor
    from transformers.models.sam3.image_processing_sam3 import Sam3ImageProcessor

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in "abcdefghijklmnopqrstuvwxyz":
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    tok = CLIPTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    small = dict(num_attention_heads=2, intermediate_size=64)
    cfg = Sam3Config(
        vision_config=dict(backbone_config=dict(model_type="sam3_vit_model", hidden_size=32,
                                                num_hidden_layers=2,
                                                image_size=56, patch_size=14, window_size=2,
                                                global_attn_indexes=[1], pretrain_image_size=56,
                                                **small),
                           fpn_hidden_size=32, backbone_feature_sizes=[[16, 16], [8, 8], [4, 4]]),
        text_config=dict(vocab_size=len(vocab), hidden_size=32, projection_dim=32,
                         num_hidden_layers=1, max_position_embeddings=32, **small),
        geometry_encoder_config=dict(hidden_size=32, num_layers=1, **small),
        detr_encoder_config=dict(hidden_size=32, num_layers=1, **small),
        detr_decoder_config=dict(hidden_size=32, num_layers=1, num_queries=5, **small),
        mask_decoder_config=dict(hidden_size=32, num_attention_heads=2),
    )
    torch.manual_seed(0)
    Sam3Model(cfg).save_pretrained(tmp_path)
    Sam3Processor(image_processor=Sam3ImageProcessor(size={"height": 56, "width": 56}),
                  tokenizer=tok).save_pretrained(tmp_path)
    img = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    seg = Sam3Segmenter(Sam3Settings(model=str(tmp_path), threshold=0.0))
    det = seg.detect(img, "car")
    assert det["masks"].shape[1:] == (40, 60) and det["masks"].dtype == bool
    assert len(det["scores"]) == len(det["boxes"]) == len(det["masks"])
    m = seg.segment(img, "car", "x")
    assert m.shape == (40, 60) and m.dtype == bool
    strict = Sam3Segmenter(Sam3Settings(model=str(tmp_path), threshold=1.01))
    assert not strict.segment(img, "car", "x").any()  # nothing passes the score threshold

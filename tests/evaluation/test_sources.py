"""One builder of backbones and evaluation feature sources (``evaluation/sources.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from spair_fixture import standard_fixture  # noqa: E402

from geocorr.adapter.settings import TrainSettings, train_settings  # noqa: E402
from geocorr.evaluation.sources import (  # noqa: E402
    SourceError,
    SourceSettings,
    eval_backbone_names,
    eval_source,
)
from geocorr.evaluation.zero_shot import fused_feature_source  # noqa: E402
from geocorr.features.registry import (  # noqa: E402
    DEFAULT_BACKBONE,
    context_mask_source,
    make_backbone,
    make_backbones,
    split_names,
)


def test_split_names_and_comma_names_in_make_backbones():
    assert split_names(["dinov2,sd", " xfeat ", ",", ""]) == ["dinov2", "sd", "xfeat"]
    bbs = make_backbones(["xfeat,classical"], weights=["xfeat=/w/x.pt"], grid_size=16)
    assert list(bbs) == ["xfeat", "classical"]
    assert bbs["xfeat"].settings.weights == "/w/x.pt"
    assert bbs["xfeat"].settings.grid_size == bbs["classical"].settings.grid_size == 16
    with pytest.raises(ValueError, match="repeat"):
        make_backbones(["xfeat", "classical,xfeat"])
    with pytest.raises(ValueError, match="expected NAME=PATH"):
        make_backbones(["xfeat"], weights=["/w/x.pt"])


def test_backbone_names_for_an_adapter_or_zero_shot():
    assert eval_backbone_names([]) == [DEFAULT_BACKBONE]
    assert eval_backbone_names(["classical,xfeat"]) == ["classical", "xfeat"]
    sd = ["sd_s3", "sd_s4", "xfeat", "sd_s5"]
    assert eval_backbone_names([], sd) == ["sd", "xfeat"]
    assert eval_backbone_names(["sd", "xfeat"], sd) == ["sd", "xfeat"]
    with pytest.raises(SourceError, match=r"run was trained on \['sd', 'xfeat'\], not") as e:
        eval_backbone_names(["xfeat", "sd"], sd, "run")
    assert e.value.fields == ("backbones",)


def test_mask_source_only_for_context_backbones(tmp_path):
    root = standard_fixture(tmp_path / "spair")
    plain, ctx = make_backbone("classical"), make_backbone("classical", context=True)
    assert context_mask_source([plain], root) is None
    assert context_mask_source([plain, ctx], None) is None
    seg = np.zeros((30, 40), np.uint8)
    seg[5:20, 10:30] = 255
    (root / "Segmentation" / "car").mkdir(parents=True, exist_ok=True)
    Image.fromarray(seg).save(root / "Segmentation" / "car" / "c1.png")
    mask_for = context_mask_source([plain, ctx], root)
    np.testing.assert_array_equal(mask_for(root / "JPEGImages" / "car" / "c1.jpg", "car"),
                                  seg > 0)
    assert mask_for(root / "JPEGImages" / "car" / "c2.jpg", "car") is None


def test_eval_source_zero_shot_is_the_fused_source(tmp_path):
    root = standard_fixture(tmp_path / "spair")
    img = root / "JPEGImages" / "car" / "c1.jpg"
    src = eval_source(SourceSettings(backbones=("classical,xfeat",), grid_size=16), root)
    assert src.backbones == ("classical", "xfeat") and src.adapter is None and src.fusion is None
    ref = fused_feature_source(make_backbones(["classical", "xfeat"], grid_size=16))
    np.testing.assert_array_equal(src.features(img, "car").features,
                                  ref(img, "car").features)
    one = eval_source(SourceSettings(), root)
    assert one.backbones == (DEFAULT_BACKBONE,)


def test_eval_source_errors_name_the_settings(tmp_path):
    with pytest.raises(SourceError) as e:
        eval_source(SourceSettings(backbones=("dinov2",), context=True), None)
    assert e.value.fields == ("backbones", "weights", "grid_size", "context")
    assert "context" in str(e.value)
    with pytest.raises(SourceError, match="weights given for"):
        eval_source(SourceSettings(backbones=("xfeat",), weights={"classical": "/w"}), None)


def test_train_settings_apply_context_defaults_and_given_fields():
    local = train_settings(["xfeat", "classical"], lr=1e-3, epochs=None)
    assert (local.context_blocks, local.global_pool) == (4, True)
    assert local.lr == 1e-3 and local.epochs == TrainSettings().epochs
    vit = train_settings(["dinov2", "xfeat"], global_pool=True)
    assert (vit.context_blocks, vit.global_pool) == (0, True)
    with pytest.raises(ValueError, match="unknown training setting"):
        train_settings(["xfeat"], learning_rate=1.0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        train_settings(["xfeat"], lr=0.0)

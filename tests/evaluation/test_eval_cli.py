"""`geocorr eval` end to end: a tiny random-weight DINOv2 fused with XFeat on a SPair fixture."""

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from spair_fixture import standard_fixture  # noqa: E402

from geocorr.cli import app  # noqa: E402

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def test_eval_fused_tiny_dinov2_and_xfeat(tmp_path):
    root = standard_fixture(tmp_path / "spair")
    dino = tmp_path / "dino"
    torch.manual_seed(0)
    cfg = transformers.Dinov2Config(patch_size=14, image_size=56, hidden_size=32,
                                    num_hidden_layers=1, num_attention_heads=2,
                                    intermediate_size=64)
    transformers.Dinov2Model(cfg).save_pretrained(dino)
    out = tmp_path / "eval.json"
    res = CliRunner().invoke(app, ["eval", "--dataset", "spair", "--root", str(root),
                                   "--backbone", "dinov2", "--backbone", "xfeat",
                                   "--weights", f"dinov2={dino}", "--cache", str(tmp_path / "c"),
                                   "--json", str(out)])
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert d["num_pairs"] == 3 and d["backbones"] == ["dinov2", "xfeat"]
    pck = d["overall"]["per_image"]
    assert all(0.0 <= v <= 1.0 for v in pck.values())
    assert any((tmp_path / "c").rglob("*.npz"))  # features went through the cache


def test_eval_rejects_weights_for_unused_backbone(tmp_path):
    root = standard_fixture(tmp_path / "spair")
    res = CliRunner().invoke(app, ["eval", "--dataset", "spair", "--root", str(root),
                                   "--weights", "dinov2=/nowhere"])
    assert res.exit_code == 2
    assert "not a --backbone" in res.output

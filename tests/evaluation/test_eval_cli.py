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
    assert "not among the backbones" in res.output


def test_eval_and_match_take_xfeat_weights(tmp_path):
    """`--weights xfeat=PATH` once failed in eval and match ("unknown setting(s) ['model']")."""
    import shutil

    import numpy as np
    from PIL import Image

    from geocorr.features.xfeat import default_xfeat_weights

    w = tmp_path / "my_xfeat.pt"
    shutil.copyfile(default_xfeat_weights(), w)
    root = standard_fixture(tmp_path / "spair")
    out = tmp_path / "eval.json"
    res = CliRunner().invoke(app, ["eval", "--dataset", "spair", "--root", str(root),
                                   "--backbone", "xfeat", "--weights", f"xfeat={w}",
                                   "--grid-size", "16", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["backbones"] == ["xfeat"]
    rng = np.random.default_rng(0)
    for n in (1, 2):
        image = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
        Image.fromarray(image).save(tmp_path / f"{n}.png")
    for value in (f"xfeat={w}", str(w)):
        res = CliRunner().invoke(app, ["match", str(tmp_path / "1.png"), str(tmp_path / "2.png"),
                                       "--weights", value, "--out", str(tmp_path / "m.json")])
        assert res.exit_code == 0, res.output
    # the path is used: a missing file is reported by name
    for cmd in (["eval", "--dataset", "spair", "--root", str(root), "--backbone", "xfeat"],
                ["match", str(tmp_path / "1.png"), str(tmp_path / "2.png"),
                 "--out", str(tmp_path / "m.json")]):
        res = CliRunner().invoke(app, [*cmd, "--weights", f"xfeat={tmp_path / 'gone.pt'}"])
        assert res.exit_code == 2 and "gone.pt" in res.output, res.output

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


def test_eval_reports_the_group_table_per_category(tmp_path):
    """Which group table each category used is in the JSON and on the console; a category
    without one is warned about (it silently fell back to SPair's, or to nothing)."""
    from spair_fixture import spair_pair, write_spair

    pairs = [spair_pair(1, "car", "c1.jpg", "c2.jpg", [(10, 10), (20, 20)], [(30, 30), (40, 40)],
                        [0, 1], trg_bbox=(0, 0, 100, 100)),
             spair_pair(2, "cat", "k1.jpg", "k2.jpg", [(10, 10), (20, 20)], [(30, 30), (40, 40)],
                        [2, 3], trg_bbox=(0, 0, 100, 100)),
             spair_pair(3, "mug", "m1.jpg", "m2.jpg", [(10, 10), (20, 20)], [(30, 30), (40, 40)],
                        [0, 1], trg_bbox=(0, 0, 100, 100))]
    images = {(c, f"{p}{i}.jpg"): {"size": (96, 64), "kps": {}}
              for c, p in (("car", "c"), ("cat", "k"), ("mug", "m")) for i in (1, 2)}
    root = write_spair(tmp_path / "ds", pairs, images)
    (root / "Meta").mkdir()
    (root / "Meta" / "categories.json").write_text(
        json.dumps({"car": {"keypoint_names": {"0": "wheel_l", "1": "wheel_r"},
                            "groups": [[0, 1]]}}))
    out = tmp_path / "eval.json"
    res = CliRunner().invoke(app, ["eval", "--dataset", "spair", "--root", str(root),
                                   "--backbone", "xfeat", "--grid-size", "8",
                                   "--json", str(out)])
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert d["keypoint_groups"] == {
        "car": {"source": "Meta/categories.json", "num_groups": 1},
        "cat": {"source": "SPair-71k built-in", "num_groups": 2},
        "mug": {"source": "none", "num_groups": 0}}
    text = " ".join(res.output.split())
    assert ("keypoint groups: car 1 (Meta/categories.json), cat 2 (SPair-71k built-in), "
            "mug 0 (none)") in text
    assert "warning: category 'mug' has no keypoint groups" in text
    assert "category 'car' has no" not in text and "category 'cat' has no" not in text

"""`geocorr eval --model RUN`: a tiny adapter trained in the test, evaluated end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from spair_fixture import standard_fixture  # noqa: E402

from geocorr.cli import app  # noqa: E402
from geocorr.evaluation.adapter_predict import (  # noqa: E402
    adapter_backbone_names,
    adapter_feature_source,
    part_fused_source,
)

IMAGES = [("car", "c1"), ("car", "c2"), ("car", "c3"), ("cat", "k1"), ("cat", "k2")]


def _textured(root: Path) -> None:
    """Replace the fixture's black images by smooth random textures (same sizes)."""
    rng = np.random.default_rng(0)
    for cat, stem in IMAGES:
        p = root / "JPEGImages" / cat / f"{stem}.jpg"
        with Image.open(p) as im:
            w, h = im.size
        small = rng.integers(0, 256, (h // 30 + 1, w // 30 + 1, 3), dtype=np.uint8)
        Image.fromarray(small).resize((w, h), Image.BILINEAR).save(p)


def _store(path: Path) -> None:
    from geocorr.labels.store import LabelStore, PairLabels

    rng = np.random.default_rng(1)
    with LabelStore(path, {"test": "eval-adapter"}) as st:
        for s, t in (("c1", "c2"), ("c2", "c1"), ("c1", "c3")):
            uv = rng.uniform(20, 400, (12, 2))
            st.write(PairLabels(f"car:{s}:{t}", "car", s, t, uv, uv * 0.9 + 5, np.ones(12),
                                np.zeros(12), 12, 0))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evadapter")
    root = standard_fixture(tmp / "spair")
    _textured(root)
    _store(tmp / "labels.sqlite")
    res = CliRunner().invoke(app, ["train", "--store", str(tmp / "labels.sqlite"), "--cache",
                                   str(tmp / "fc"), "--dataset", str(root), "--out",
                                   str(tmp / "run"), "--backbone", "classical", "--grid-size",
                                   "16", "--steps", "3", "--out-dim", "16", "--quiet"])
    assert res.exit_code == 0, res.output
    return tmp, root


def test_backbone_names_of_sources():
    assert adapter_backbone_names(["sd_s3", "sd_s4", "dinov2", "sd_s5"]) == ["sd", "dinov2"]
    assert adapter_backbone_names(["xfeat"]) == ["xfeat"]
    with pytest.raises(ValueError, match="not a known backbone"):
        adapter_backbone_names(["mystery_s3"])


def test_eval_model_run_matches_direct_prediction(run):
    tmp, root = run
    out = tmp / "eval.json"
    res = CliRunner().invoke(app, ["eval", "--dataset", "spair", "--root", str(root),
                                   "--model", str(tmp / "run"), "--grid-size", "16",
                                   "--cache", str(tmp / "fc"), "--json", str(out)])
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert d["model"] == str(tmp / "run") and d["backbones"] == ["classical"]
    assert d["num_pairs"] == 3

    # the same numbers from the plain library calls, no cache, no helper
    from geocorr.adapter.checkpoint import apply_adapter, from_pretrained
    from geocorr.evaluation.predict import predict_keypoints
    from geocorr.evaluation.scorer import evaluate_pairs, open_dataset
    from geocorr.features.registry import make_backbone

    adapter = from_pretrained(tmp / "run")
    bb = make_backbone("classical", grid_size=16)

    memo = {}

    def feats(path):
        if path not in memo:
            with Image.open(path) as im:
                img = np.asarray(im.convert("RGB"))
            memo[path] = apply_adapter(adapter, {"classical": bb.extract(img)})
        return memo[path]

    def predict(pair):
        return predict_keypoints(feats(pair.src_image), feats(pair.trg_image),
                                 pair.src_kps).trg_kps

    ds = open_dataset("spair", root)
    ref = evaluate_pairs(ds.pairs("test"), predict, ds, split="test").to_dict()
    for a, v in ref["overall"]["per_image"].items():
        assert d["overall"]["per_image"][str(a)] == pytest.approx(v)
    # the helper without a cache gives the same maps
    src = adapter_feature_source(adapter, {"classical": bb})
    p = root / "JPEGImages" / "car" / "c1.jpg"
    np.testing.assert_allclose(src(p, "car").features, feats(p).features, atol=1e-6)


def test_eval_model_errors(run):
    tmp, root = run
    base = ["eval", "--dataset", "spair", "--root", str(root)]
    res = CliRunner().invoke(app, [*base, "--model", str(tmp / "nowhere")])
    assert res.exit_code == 2 and "neither 'zero-shot'" in " ".join(res.output.split())
    res = CliRunner().invoke(app, [*base, "--model", str(tmp / "run"), "--backbone", "xfeat"])
    out = " ".join(res.output.split())
    assert res.exit_code == 2 and "--backbone: the adapter" in out
    assert "trained on ['classical'], not ['xfeat']" in out
    # a negative canvas is refused before any work, naming the flag
    res = CliRunner().invoke(app, [*base, "--size", "-1", "--backbone", "classical"])
    assert res.exit_code == 2 and "--size must be >= 0" in " ".join(res.output.split())
    with pytest.raises(ValueError, match="not given"):
        from geocorr.adapter.checkpoint import from_pretrained

        adapter_feature_source(from_pretrained(tmp / "run"), {})


def _stage1(root: Path, cache: Path) -> None:
    """Hand-made stage-1 entries: an ellipsoid in front of each fixture image's camera."""
    from geocorr.geometry.camera import Camera, look_at, save_camera
    from geocorr.geometry.raster import rasterize

    mesh = trimesh.creation.icosphere(subdivisions=2)
    v = np.asarray(mesh.vertices) * np.array([1.4, 0.8, 0.6])
    f = np.asarray(mesh.faces)
    for cat, stem in IMAGES:
        with Image.open(root / "JPEGImages" / cat / f"{stem}.jpg") as im:
            w, h = im.size
        R, t = look_at(np.array([3.0, 1.0, 1.0]), np.zeros(3))
        K = np.array([[1.2 * h, 0, (w - 1) / 2], [0, 1.2 * h, (h - 1) / 2], [0, 0, 1.0]])
        cam = Camera(K, R, t, w, h)
        d = cache / cat / stem
        d.mkdir(parents=True)
        trimesh.Trimesh(v, f, process=False).export(d / "mesh.ply")
        save_camera(cam, d / "camera.json")
        Image.fromarray(rasterize(v, f, cam).mask.astype(np.uint8) * 255).save(d / "mask.png")
        (d / "record.json").write_text(json.dumps({"category": cat, "stem": stem, "k": 0}))


def test_eval_model_fused_with_rendered_parts(run):
    tmp, root = run
    _stage1(root, tmp / "stage1")
    out = tmp / "fused.json"
    res = CliRunner().invoke(app, ["eval", "--dataset", "spair", "--root", str(root),
                                   "--model", str(tmp / "run"), "--grid-size", "16",
                                   "--cache", str(tmp / "fc"), "--stage1", str(tmp / "stage1"),
                                   "--part-weight", "0.4",
                                   "--json", str(out)])
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert d["part_weight"] == 0.4 and d["stage1"] == str(tmp / "stage1")
    from geocorr.adapter.checkpoint import from_pretrained
    from geocorr.features.geometric import GeometricDescriptor
    from geocorr.features.registry import make_backbone

    adapter = from_pretrained(tmp / "run")
    plain = adapter_feature_source(adapter, {"classical": make_backbone("classical",
                                                                        grid_size=16)},
                                   cache_dir=tmp / "fc")
    from geocorr.features.part_fusion import PartFusionSettings

    fused = part_fused_source(plain, tmp / "stage1", PartFusionSettings(part_weight=0.4))
    p = root / "JPEGImages" / "car" / "c2.jpg"
    fm, pm = fused(p, "car"), plain(p, "car")
    n_desc = GeometricDescriptor().describe(*_mesh(tmp / "stage1" / "car" / "c2")).shape[1]
    assert fm.features.shape == (16 + n_desc, *pm.grid_size)
    with pytest.raises(ValueError, match="part_weight"):
        part_fused_source(plain, tmp / "stage1", PartFusionSettings(part_weight=0.0))
    with pytest.raises(FileNotFoundError, match="not reconstructed"):
        part_fused_source(plain, tmp / "nostage")(p, "car")


def _mesh(d: Path):
    m = trimesh.load(d / "mesh.ply", process=False)
    return np.asarray(m.vertices), np.asarray(m.faces)


def test_eval_context_backbone_uses_dataset_masks(run):
    """A --context run is evaluated on maps made with the Segmentation/ masks, as trained."""
    tmp, root = run
    for cat, stem in IMAGES:
        with Image.open(root / "JPEGImages" / cat / f"{stem}.jpg") as im:
            w, h = im.size
        m = np.zeros((h, w), np.uint8)
        m[h // 4: 3 * h // 4, w // 5: w // 2] = 255
        (root / "Segmentation" / cat).mkdir(parents=True, exist_ok=True)
        Image.fromarray(m).save(root / "Segmentation" / cat / f"{stem}.png")
    res = CliRunner().invoke(app, ["train", "--store", str(tmp / "labels.sqlite"), "--cache",
                                   str(tmp / "fc"), "--dataset", str(root), "--out",
                                   str(tmp / "run_ctx"), "--backbone", "classical", "--context",
                                   "--grid-size", "16", "--steps", "2", "--out-dim", "16",
                                   "--quiet"])
    assert res.exit_code == 0, res.output
    out = tmp / "ctx.json"
    res = CliRunner().invoke(app, ["eval", "--dataset", "spair", "--root", str(root), "--model",
                                   str(tmp / "run_ctx"), "--grid-size", "16", "--context",
                                   "--json", str(out)])
    assert res.exit_code == 0, res.output
    d = json.loads(out.read_text())
    assert d["context"] is True

    from geocorr.adapter.checkpoint import apply_adapter, from_pretrained
    from geocorr.evaluation.predict import predict_keypoints
    from geocorr.evaluation.scorer import evaluate_pairs, open_dataset
    from geocorr.features.cache import read_mask
    from geocorr.features.registry import make_backbone

    adapter = from_pretrained(tmp / "run_ctx")
    bb = make_backbone("classical", grid_size=16, context=True)
    memo = {}

    def feats(path):
        if path not in memo:
            with Image.open(path) as im:
                img = np.asarray(im.convert("RGB"))
            mask = read_mask(root / "Segmentation" / path.parent.name / f"{path.stem}.png")
            memo[path] = apply_adapter(adapter, {"classical": bb.extract(img, mask=mask)})
        return memo[path]

    ds = open_dataset("spair", root)
    ref = evaluate_pairs(ds.pairs("test"), lambda p: predict_keypoints(
        feats(p.src_image), feats(p.trg_image), p.src_kps).trg_kps, ds, split="test").to_dict()
    for a, v in ref["overall"]["per_image"].items():
        assert d["overall"]["per_image"][str(a)] == pytest.approx(v)
    # the masks matter: maps with them equal the reference, maps without differ
    p = root / "JPEGImages" / "car" / "c1.jpg"

    def mask_for(path, category):
        return read_mask(root / "Segmentation" / category / f"{Path(path).stem}.png")

    with_masks = adapter_feature_source(adapter, {"classical": bb}, mask_for=mask_for)(p, "car")
    np.testing.assert_allclose(with_masks.features, feats(p).features, atol=1e-6)
    without = adapter_feature_source(adapter, {"classical": bb})(p, "car")
    assert not np.allclose(without.features, feats(p).features, atol=1e-4)
    from geocorr.evaluation.zero_shot import fused_feature_source

    with Image.open(p) as im:
        img = np.asarray(im.convert("RGB"))
    zs = fused_feature_source({"classical": bb}, mask_for=mask_for)(p, "car")
    np.testing.assert_allclose(zs.features, bb.extract(img, mask=mask_for(p, "car")).features)

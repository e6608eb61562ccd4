"""Writers and the readers behind them keep dataset-derived paths inside their roots.

The escaping category below resolves, from ``JPEGImages/``, ``Segmentation/``
and ``Reconstructions/`` alike, to a real folder ``elsewhere/escape_cat``
holding a complete image (jpg, png, ply, json), and from ``--out`` to that
same folder: before the check, ``geocorr reconstruct`` ran stage 1 on it and
wrote its cache there, outside ``--out``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image
from typer.testing import CliRunner

from geocorr.cli import app
from geocorr.data.pairs import DatasetFormatError
from geocorr.geometry.camera import Camera, look_at, save_camera
from geocorr.reconstruct.pipeline import Stage1Settings, dataset_images, load_cached, run_stage1
from geocorr.reconstruct.reconstructor import FileReconstructor, simulated_reconstructor
from geocorr.reconstruct.refine import RefineSettings, render_mask
from geocorr.reconstruct.segmenter import DatasetMasks

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from spair_fixture import spair_pair, write_spair  # noqa: E402

ESCAPE = "../../elsewhere/escape_cat"  # from ROOT/JPEGImages (and from tmp/a/out)


def _image(folder: Path, stem: str) -> None:
    """One complete image (jpg, mask png, mesh ply, camera json) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    mesh = trimesh.creation.box([2.0, 0.9, 0.6])
    K = np.array([[120.0, 0, 63.5], [0, 120, 47.5], [0, 0, 1]])
    R, t = look_at(6 * np.array([1.0, 0.5, 0.4]), [0, 0, 0])
    cam = Camera(K, R, t, 128, 96)
    mask = render_mask(mesh.vertices, mesh.faces, cam)
    Image.fromarray(np.repeat(mask[..., None] * 200, 3, axis=2).astype(np.uint8)).save(
        folder / f"{stem}.jpg")
    Image.fromarray((mask * 255).astype(np.uint8)).save(folder / f"{stem}.png")
    mesh.export(folder / f"{stem}.ply")
    save_camera(cam, folder / f"{stem}.json")


@pytest.fixture
def escaping(tmp_path):
    """``tmp/ds`` whose Layout names ESCAPE; the files exist at ``tmp/elsewhere/escape_cat``."""
    root = tmp_path / "ds"
    for sub in ("JPEGImages", "Segmentation", "Reconstructions"):
        (root / sub / "car").mkdir(parents=True)
    for stem in ("a", "b"):
        _image(tmp_path / "elsewhere" / "escape_cat", stem)
    assert (root / "JPEGImages" / ESCAPE / "a.jpg").is_file()  # the trap is real
    (root / "Layout" / "large").mkdir(parents=True)
    (root / "Layout" / "large" / "test.txt").write_text(f"000000-a-b:{ESCAPE}\n")
    return root


def _files(tmp_path: Path) -> set[Path]:
    return {p for p in tmp_path.rglob("*") if p.is_file()}


def test_dataset_images_names_layout_line_and_category(escaping):
    with pytest.raises(DatasetFormatError) as e:
        dataset_images(escaping, "test")
    assert "test.txt:1" in str(e.value) and ESCAPE in str(e.value)


def test_dataset_images_refuses_empty_fields(tmp_path):
    (tmp_path / "Layout" / "large").mkdir(parents=True)
    (tmp_path / "Layout" / "large" / "test.txt").write_text("000000-a-b:\n")
    with pytest.raises(ValueError, match="test.txt:1"):
        dataset_images(tmp_path, "test")


def test_run_stage1_checks_every_image_before_writing(escaping, tmp_path):
    before = _files(tmp_path)
    out = tmp_path / "a" / "out"
    settings = Stage1Settings(refine=RefineSettings(max_side=32), skip_yaw=True)
    with pytest.raises(DatasetFormatError, match="escape_cat"):
        run_stage1(escaping, [(ESCAPE, "a")], DatasetMasks(escaping),
                   simulated_reconstructor(escaping), out, settings, progress=False)
    assert _files(tmp_path) == before and not out.exists()


def test_cli_reconstruct_escaping_layout_writes_nothing(escaping, tmp_path):
    before = _files(tmp_path)
    out = tmp_path / "a" / "out"
    res = CliRunner().invoke(app, ["reconstruct", "--dataset", str(escaping), "--out", str(out),
                                   "--skip-yaw", "--max-side", "32", "--quiet"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    layout = escaping / "Layout" / "large" / "test.txt"
    assert lines == [f"error: {layout}:1: image 'JPEGImages/{ESCAPE}/a.jpg' points outside "
                     f"{escaping}"]
    assert _files(tmp_path) == before and not out.exists()


def test_cli_score_and_eval_refuse_escaping_image_names(tmp_path):
    secret = tmp_path / "outside" / "secret.jpg"
    secret.parent.mkdir()
    Image.new("RGB", (64, 48)).save(secret)
    pair = spair_pair(1, "car", "c1.jpg", "../../../outside/secret.jpg", [(1, 1)], [(2, 2)], [0],
                      trg_bbox=(0, 0, 10, 10))
    pair["stem"] = "000001-c1-secret:car"
    root = write_spair(tmp_path / "spair", [pair],
                       {("car", "c1.jpg"): {"size": (840, 630), "kps": {"0": [1, 1]}}})
    assert (root / "JPEGImages" / "car" / "../../../outside/secret.jpg").is_file()
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"pair": "000001-c1-secret:car", "trg_kps": [[2, 2]]}) + "\n")
    for args in (["score", "--dataset", "spair", "--root", str(root), "--predictions",
                  str(preds)],
                 ["eval", "--dataset", "spair", "--root", str(root), "--backbone", "classical"]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2, res.output
        pair_json = root / "PairAnnotation" / "test" / "000001-c1-secret:car.json"
        assert [ln for ln in res.output.splitlines() if ln.strip()] == [
            f"error: {pair_json}: image 'JPEGImages/car/../../../outside/secret.jpg' points "
            f"outside {root}"]


def test_stage1_readers_and_cache_refuse_escapes(tmp_path):
    from geocorr.adapter.dataset import spair_image_path
    from geocorr.features.cache import dataset_mask_for

    (tmp_path / "ds" / "JPEGImages").mkdir(parents=True)
    (tmp_path / "meshes").mkdir()
    ds = tmp_path / "ds"
    with pytest.raises(DatasetFormatError, match="mask .*escape"):
        DatasetMasks(ds).path("../../escape", "a")
    with pytest.raises(DatasetFormatError, match="mesh .*escape"):
        FileReconstructor(tmp_path / "meshes").paths("../escape", "a")
    with pytest.raises(DatasetFormatError, match="image folder .*escape"):
        load_cached(tmp_path / "cache", "..", "escape")
    with pytest.raises(DatasetFormatError, match="segmentation .*escape"):
        dataset_mask_for(ds)(ds / "JPEGImages" / "car" / "a.jpg", "../../escape")
    with pytest.raises(DatasetFormatError, match="absolute"):
        spair_image_path(ds)("car", "/etc/passwd")
    assert spair_image_path(ds)("car", "a") == ds / "JPEGImages" / "car" / "a.jpg"
    assert DatasetMasks(ds).path("car", "a") == ds / "Segmentation" / "car" / "a.png"

import json

import numpy as np
import pytest
import trimesh
from PIL import Image
from typer.testing import CliRunner

from geocorr.cli import app
from geocorr.features.registry import make_backbone
from geocorr.geometry import Camera, look_at, save_camera
from geocorr.geometry.raster import rasterize
from geocorr.matching.images import MeshView, match_images


def _scene(eye):
    mesh = trimesh.creation.box(extents=(2.0, 1.0, 0.8))
    mesh = mesh.subdivide().subdivide()
    R, t = look_at(eye, [0.0, 0.0, 0.0])
    cam = Camera(np.array([[120.0, 0, 64], [0, 120.0, 48], [0, 0, 1]]), R, t, 128, 96)
    mask = rasterize(mesh.vertices, mesh.faces, cam).mask
    rng = np.random.default_rng(0)
    image = (rng.uniform(0, 255, (96, 128, 3)) * 0.3).astype(np.uint8)
    image[mask] = (200, 120, 40)
    return mesh, cam, mask, image


def test_match_images_2d_and_fused():
    m1, c1, k1, i1 = _scene([5.0, 2.0, 1.5])
    m2, c2, k2, i2 = _scene([4.0, -3.0, 1.5])
    bb = make_backbone("classical")
    plain = match_images(i1, i2, bb, mask_s=k1, mask_t=k2)
    assert list(plain.maps) == ["classical"]
    fused = match_images(i1, i2, bb, mask_s=k1, mask_t=k2,
                         mesh_s=MeshView(m1.vertices, m1.faces, c1),
                         mesh_t=MeshView(m2.vertices, m2.faces, c2))
    assert list(fused.maps) == ["classical", "rendered part descriptor", "fused"]
    n = len(fused.matches.src_uv)
    assert n > 0 and fused.matches.trg_uv.shape == (n, 2)
    # every source candidate lies on the source mask, every target on the target mask
    for uv, mask in ((fused.matches.src_uv, k1), (fused.matches.trg_uv, k2)):
        r = np.clip(np.round(uv).astype(int), 0, [127, 95])
        assert mask[r[:, 1], r[:, 0]].mean() > 0.9


def test_match_images_rejects_bad_inputs():
    m1, c1, k1, i1 = _scene([5.0, 2.0, 1.5])
    bb = make_backbone("classical")
    with pytest.raises(ValueError, match="both images"):
        match_images(i1, i1, bb, mesh_s=MeshView(m1.vertices, m1.faces, c1))
    with pytest.raises(ValueError, match="mask is"):
        match_images(i1, i1, bb, mask_s=k1[:10])


def test_match_cli_writes_png_and_json(tmp_path):
    for n, eye in ((1, [5.0, 2.0, 1.5]), (2, [4.0, -3.0, 1.5])):
        mesh, cam, mask, image = _scene(eye)
        Image.fromarray(image).save(tmp_path / f"i{n}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / f"k{n}.png")
        mesh.export(tmp_path / f"m{n}.ply")
        save_camera(cam, tmp_path / f"c{n}.json")
    res = CliRunner().invoke(app, [
        "match", str(tmp_path / "i1.png"), str(tmp_path / "i2.png"), "--backbone", "classical",
        "--mask1", str(tmp_path / "k1.png"), "--mask2", str(tmp_path / "k2.png"),
        "--mesh1", str(tmp_path / "m1.ply"), "--camera1", str(tmp_path / "c1.json"),
        "--mesh2", str(tmp_path / "m2.ply"), "--camera2", str(tmp_path / "c2.json"),
        "--out", str(tmp_path / "out" / "m.png")])
    assert res.exit_code == 0, res.output
    d = json.loads((tmp_path / "out" / "m.json").read_text())
    assert d["sources"] == ["classical", "rendered part descriptor", "fused"]
    assert d["matches"] and {"src", "trg", "similarity", "kept"} <= set(d["matches"][0])
    assert (tmp_path / "out" / "m.png").stat().st_size > 0
    bad = CliRunner().invoke(app, ["match", str(tmp_path / "nope.png"), str(tmp_path / "i2.png"),
                                   "--out", str(tmp_path / "x.png")])
    assert bad.exit_code == 2 and "nope.png" in bad.output

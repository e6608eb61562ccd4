import json

import numpy as np
import pytest
import trimesh
from PIL import Image
from typer.testing import CliRunner

from box_scenes import box_scene, write_box_views
from geocorr.cli import app
from geocorr.features.registry import make_backbone
from geocorr.geometry import Camera, save_camera
from geocorr.geometry.camera import load_camera
from geocorr.geometry.raster import rasterize
from geocorr.matching.images import MeshView, match_images


def _scene(eye):
    return box_scene(eye)


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
    write_box_views(tmp_path)
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
    assert "warning" not in res.output  # Z-up meshes
    # the same scene written Y-up (same images) is matched, with a warning per mesh
    for n in (1, 2):
        mesh = trimesh.load(tmp_path / f"m{n}.ply", process=False)
        trimesh.Trimesh(np.asarray(mesh.vertices)[:, [1, 2, 0]], mesh.faces,
                        process=False).export(tmp_path / f"y{n}.ply")
        cam = load_camera(tmp_path / f"c{n}.json")
        save_camera(Camera(cam.K, cam.R[:, [1, 2, 0]], cam.t, cam.width, cam.height),
                    tmp_path / f"yc{n}.json")
    res = CliRunner().invoke(app, [
        "match", str(tmp_path / "i1.png"), str(tmp_path / "i2.png"), "--backbone", "classical",
        "--mesh1", str(tmp_path / "y1.ply"), "--camera1", str(tmp_path / "yc1.json"),
        "--mesh2", str(tmp_path / "y2.ply"), "--camera2", str(tmp_path / "yc2.json"),
        "--out", str(tmp_path / "out" / "y.json")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "y1.ply: the camera's up direction" in text and "y2.ply" in text
    bad = CliRunner().invoke(app, ["match", str(tmp_path / "nope.png"), str(tmp_path / "i2.png"),
                                   "--out", str(tmp_path / "x.png")])
    assert bad.exit_code == 2 and "nope.png" in bad.output


def _photo(path, width, height):
    """A smooth synthetic photo (JPEG or PNG by suffix) with a bright box as the object."""
    yy, xx = np.mgrid[:48, :64]
    small = np.stack([xx * 4, yy * 5, (xx + yy) * 2], -1).astype(np.uint8)
    small[12:36, 16:48] = (230, 200, 60)
    Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR).save(path)


def test_load_working_image_scales_image_mask_and_camera(tmp_path):
    from geocorr.matching.images import ImageInputSettings, MeshView, load_working_image

    mesh, cam, mask, image = _scene([5.0, 2.0, 1.5])  # 128 x 96
    Image.fromarray(image).save(tmp_path / "i.png")
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp_path / "k.png")
    view = MeshView(np.asarray(mesh.vertices), np.asarray(mesh.faces), cam)
    w = load_working_image(tmp_path / "i.png", tmp_path / "k.png", view,
                           ImageInputSettings(max_side=64, min_side=8))
    assert w.image.shape == (48, 64, 3) and w.mask.shape == (48, 64)
    assert w.src_size == (128, 96) and w.scale == (0.5, 0.5)
    assert (w.mesh.camera.width, w.mesh.camera.height) == (64, 48)
    # the scaled camera renders the object where the scaled mask is
    rendered = rasterize(view.vertices, view.faces, w.mesh.camera).mask
    assert (rendered != w.mask).mean() < 0.03
    # working pixel centres map back to file pixel centres
    np.testing.assert_allclose(w.to_source([[0, 0], [63, 47]]), [[0.5, 0.5], [126.5, 94.5]])
    same = load_working_image(tmp_path / "i.png", settings=ImageInputSettings(max_side=512))
    assert same.image.shape == (96, 128, 3) and same.mask is None and same.scale == (1.0, 1.0)
    with pytest.raises(ValueError, match="camera"):
        load_working_image(tmp_path / "i.png", mesh=MeshView(view.vertices, view.faces,
                                                             cam.scaled(0.5)))
    Image.fromarray(mask[:48].astype(np.uint8)).save(tmp_path / "short.png")
    with pytest.raises(ValueError, match="short.png: mask is 128x48"):
        load_working_image(tmp_path / "i.png", tmp_path / "short.png")
    with pytest.raises(ValueError, match="i.png: image is 128x96, below the 100-pixel"):
        load_working_image(tmp_path / "i.png", settings=ImageInputSettings(min_side=100))


def test_match_cli_resizes_large_photos_first(tmp_path, monkeypatch):
    """A 3200 x 2400 photo reaches the backbone at the working size and the JSON is in file
    pixels (the full-size photo once went everywhere: 30 s and 3.4 GB for 6000 x 4000)."""
    from geocorr.features.xfeat import XFeatBackbone

    seen = []
    extract = XFeatBackbone.extract

    def spy(self, image, *args, **kwargs):
        seen.append(image.shape)
        return extract(self, image, *args, **kwargs)

    monkeypatch.setattr(XFeatBackbone, "extract", spy)
    _photo(tmp_path / "large.jpg", 3200, 2400)
    res = CliRunner().invoke(app, ["match", str(tmp_path / "large.jpg"),
                                   str(tmp_path / "large.jpg"), "--out",
                                   str(tmp_path / "large.json")])
    assert res.exit_code == 0, res.output
    assert seen == [(768, 1024, 3)] * 2
    d = json.loads((tmp_path / "large.json").read_text())
    assert d["sizes"] == [[3200, 2400]] * 2 and d["working_sizes"] == [[1024, 768]] * 2
    uv = np.array([m["src"] for m in d["matches"]])
    assert uv[:, 0].max() > 3000 and uv[:, 1].max() > 2200  # file pixels, not working pixels


@pytest.mark.parametrize("suffix", ["jpg", "png"])
def test_working_image_memory_does_not_grow_with_the_photo(tmp_path, suffix):
    """numpy's memory peak (tracemalloc) while loading a 4000 x 3000 photo + mask is that of a
    photo at the working size: one full-size RGB array alone would be 36 MB. (PIL's own decode
    buffers are not traced: a PNG is decoded in full inside PIL, a JPEG at 1/2..1/8 scale.)"""
    import tracemalloc

    from geocorr.matching.images import load_working_image

    peaks = []
    for W, H in ((1024, 768), (4000, 3000)):
        _photo(tmp_path / f"{W}.{suffix}", W, H)
        mask = np.zeros((H, W), np.uint8)
        mask[H // 4: 3 * H // 4, W // 4: 3 * W // 4] = 255
        Image.fromarray(mask).save(tmp_path / f"{W}_mask.png")
        tracemalloc.start()
        w = load_working_image(tmp_path / f"{W}.{suffix}", tmp_path / f"{W}_mask.png")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert w.image.shape == (768, 1024, 3) and w.mask.mean() == pytest.approx(0.25, abs=0.01)
    assert peaks[1] < peaks[0] + 1e6, peaks


def test_match_cli_refuses_images_too_small_to_describe(tmp_path):
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(tmp_path / "dot.png")
    _photo(tmp_path / "ok.jpg", 320, 240)
    for pair in (("dot.png", "ok.jpg"), ("ok.jpg", "dot.png")):
        res = CliRunner().invoke(app, ["match", *(str(tmp_path / p) for p in pair),
                                       "--out", str(tmp_path / "out" / "m.png")])
        assert res.exit_code == 2, res.output
        assert "dot.png: image is 1x1, below the 32-pixel minimum" in " ".join(res.output.split())
    assert not (tmp_path / "out").exists()
    # an extreme strip is refused at the working resolution too
    _photo(tmp_path / "strip.jpg", 4000, 40)
    res = CliRunner().invoke(app, ["match", str(tmp_path / "strip.jpg"), str(tmp_path / "ok.jpg"),
                                   "--out", str(tmp_path / "m.png")])
    assert res.exit_code == 2 and "working resolution" in " ".join(res.output.split())
    from geocorr.features.registry import make_backbone as mk
    from geocorr.matching.images import match_images as mi

    with pytest.raises(ValueError, match="source: image is 1x1"):
        mi(np.zeros((1, 1, 3), np.uint8), np.zeros((64, 64, 3), np.uint8), mk("classical"))

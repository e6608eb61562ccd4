"""The viewer's Python side: grid encoding, the page's nearest neighbour, twin-swap choice,
mesh overlay, page contents and ``geocorr view`` (the browser runs in test_viewer_browser.py)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from box_scenes import box_scene, write_box_views
from geocorr.cli import app
from geocorr.data.pairs import KeypointPair
from geocorr.evaluation.predict import image_cells, predict_keypoints
from geocorr.features.base import FeatureMap
from geocorr.geometry.image_transform import resize_and_pad
from geocorr.geometry.raster import rasterize
from geocorr.viewer.demo_pairs import transfer_points, twin_swap_fixed
from geocorr.viewer.grid import cell_center, decode_grid, encode_grid, nearest_cell, query_cell
from geocorr.viewer.overlay import mesh_overlay
from geocorr.viewer.page import (
    ViewerImage,
    ViewerKeypoints,
    ViewerPair,
    read_page_data,
    render_page,
    write_viewer,
)


def _onehot_map(W: int, H: int, S: int = 64, cells: int = 8) -> FeatureMap:
    """Cell (i, j) holds the one-hot vector of its index: every cell is its own best match."""
    f = np.eye(cells * cells, dtype=np.float32).reshape(cells * cells, cells, cells) * 3.0
    return FeatureMap(f, resize_and_pad(W, H, S), "onehot")


def test_encode_keeps_on_image_cells_unit_norm_float16():
    fm = _onehot_map(64, 32)  # landscape: top and bottom rows of cells are padding
    g = encode_grid(fm)
    valid = image_cells(fm)
    rows, cols = np.nonzero(valid)
    assert g.block == (rows.min(), cols.min(), rows.max() - rows.min() + 1,
                       cols.max() - cols.min() + 1) == (2, 0, 4, 8)
    x = decode_grid(g)
    assert x.shape == (4, 8, 64)
    np.testing.assert_allclose(np.linalg.norm(x, axis=-1), 1.0)  # 3 * one-hot -> unit
    assert x[0, 0, 2 * 8 + 0] == 1.0 and x[3, 7, 5 * 8 + 7] == 1.0
    # zero cells stay zero (a part descriptor off the mask never wins)
    z = FeatureMap(np.zeros((3, 8, 8), np.float32), fm.transform)
    assert not decode_grid(encode_grid(z)).any()


def test_query_cell_and_cell_center_follow_featuremap():
    fm = _onehot_map(50, 30, S=64)
    g = encode_grid(fm)
    centres = fm.cell_centers()
    r0, c0, rows, cols = g.block
    for i in range(r0, r0 + rows):
        for j in range(c0, c0 + cols):
            x, y = centres[i, j]
            assert cell_center(g, i, j) == pytest.approx((x, y))
            assert query_cell(g, x, y) == (i, j)
            # any pixel goes to the cell whose centre is nearest (FeatureMap.uv_to_cell, rounded)
            cx, cy = fm.uv_to_cell(np.array([[x + 0.3, y - 0.2]]))[0]
            assert query_cell(g, x + 0.3, y - 0.2) == (int(np.floor(cy + 0.5)),
                                                       int(np.floor(cx + 0.5)))
    assert query_cell(g, -1000, 1000) == (r0 + rows - 1, c0)  # clamped into the block


def test_nearest_cell_is_the_identity_on_onehot_grids_and_agrees_with_predict():
    src, trg = _onehot_map(40, 40), _onehot_map(40, 40)
    gs, gt = encode_grid(src), encode_grid(trg)
    for cell in ((0, 0), (3, 5), (7, 7)):
        best, sim = nearest_cell(gs, gt, cell)
        assert best == cell and sim == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    a = FeatureMap(rng.normal(size=(16, 8, 8)).astype(np.float32), resize_and_pad(40, 40, 64))
    b = FeatureMap(rng.normal(size=(16, 8, 8)).astype(np.float32), resize_and_pad(40, 40, 64))
    pts = a.cell_centers().reshape(-1, 2)[::7]
    ref = predict_keypoints(a, b, pts)  # cell centres: bilinear sampling = the cell itself
    got = transfer_points(encode_grid(a), encode_grid(b), pts)
    np.testing.assert_allclose(got, ref.trg_kps, atol=1e-9)
    with pytest.raises(ValueError, match="outside"):
        nearest_cell(gs, gt, (9, 0))


def _pair(trg_visible_ids, trg_visible_kps) -> KeypointPair:
    return KeypointPair(
        pair_id="p", category="car", src_image="s.jpg", trg_image="t.jpg",
        src_kps=np.array([[10.0, 10.0], [30.0, 10.0]]), trg_kps=np.array([[20.0, 50.0],
                                                                        [80.0, 50.0]]),
        kps_ids=np.array([0, 1]), src_bbox=None, trg_bbox=np.array([0.0, 0.0, 100.0, 100.0]),
        src_size=(100, 100), trg_size=(100, 100),
        trg_visible_ids=np.asarray(trg_visible_ids), trg_visible_kps=np.asarray(trg_visible_kps))


def test_twin_swap_fixed_needs_a_2d_swap_and_a_correct_fused_match():
    pair = _pair([0, 1], [[20.0, 50.0], [80.0, 50.0]])
    groups = ((0, 1),)  # keypoints 0 and 1 are left/right twins; T = 100, alpha 0.1 -> 10 px
    swapped_2d = np.array([[80.0, 52.0], [79.0, 50.0]])  # kp 0 on its twin; kp 1 correct
    fused = np.array([[21.0, 50.0], [20.0, 50.0]])      # kp 0 correct; kp 1 on its twin
    got = twin_swap_fixed(pair, swapped_2d, fused, rule="bbox", groups=groups, alpha=0.1)
    assert got.tolist() == [True, False]
    # without the group a wrong 2D match is an error, not a swap
    assert not twin_swap_fixed(pair, swapped_2d, fused, rule="bbox", groups=(),
                               alpha=0.1).any()
    # a fused match that is wrong too does not count
    assert not twin_swap_fixed(pair, swapped_2d, swapped_2d, rule="bbox", groups=groups,
                               alpha=0.1).any()


def _scene(eye):
    return box_scene(eye, seed=len(eye))


def test_mesh_overlay_colours_by_canonical_position_inside_the_silhouette_only():
    mesh, cam, mask, image = _scene([5.0, 2.0, 1.5])
    out = mesh_overlay(image, mesh.vertices, mesh.faces, cam)
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~mask], image[~mask])
    assert (out[mask] != image[mask]).any(axis=1).mean() > 0.95
    # the camera sits at +X (front) and +Y (left): the front face is redder than the left one
    from geocorr.geometry.raster import interpolate

    frags = rasterize(mesh.vertices, mesh.faces, cam)
    pos = interpolate(frags, mesh.faces, mesh.vertices)
    front = mask & (pos[..., 0] > 0.99)
    left = mask & (pos[..., 1] > 0.49)
    assert front.any() and left.any()
    assert out[front][:, 0].mean() > out[left][:, 0].mean() + 40
    assert out[left][:, 1].mean() > out[front][:, 1].mean() + 40
    with pytest.raises(ValueError, match="camera is 128x96"):
        mesh_overlay(image[:50], mesh.vertices, mesh.faces, cam)


def _simple_pair(name="a </script> b") -> ViewerPair:
    fm = _onehot_map(40, 30)
    img = np.zeros((30, 40, 3), np.uint8)
    return ViewerPair(name=name, source=ViewerImage(img, "s"), target=ViewerImage(img, "t"),
                      maps={"onehot": (fm, fm)},
                      keypoints=ViewerKeypoints(np.array([3]), np.array([[5.0, 6.0]]),
                                                np.array([[7.0, 8.0]])))


def test_page_is_self_contained_and_round_trips_its_grids():
    pair = _simple_pair()
    text = render_page([pair, pair])
    assert text.count("</script>") == 2  # the data block's and the code's: the name is escaped
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)
    assert "<script src" not in text and "http://" not in text and "https://" not in text
    data = read_page_data(text)
    assert [p["name"] for p in data["pairs"]] == ["a </script> b"] * 2
    g = data["pairs"][1]["grids"]["onehot"]["source"]
    assert g == encode_grid(pair.maps["onehot"][0])
    assert data["pairs"][0]["keypoints"]["source"] == [[5.0, 6.0]]
    # both pairs (and both sides) carry the same grid and image once
    blob = json.loads(re.search(r'application/json">(.*?)</script>', text, re.S).group(1))
    assert len(blob["blobs"]) == 2  # one image, one grid


def test_viewer_pair_rejects_maps_of_another_image():
    fm = _onehot_map(40, 30)
    img = np.zeros((31, 40, 3), np.uint8)
    with pytest.raises(ValueError, match="map is for a 40x30 image"):
        ViewerPair("p", ViewerImage(img), ViewerImage(img), {"k": (fm, fm)})
    with pytest.raises(ValueError, match="no feature map"):
        ViewerPair("p", ViewerImage(img), ViewerImage(img), {})
    with pytest.raises(ValueError, match="uint8"):
        ViewerImage(np.zeros((4, 4, 3)))


def test_write_viewer_is_atomic_and_reports_size(tmp_path):
    rec = write_viewer(tmp_path / "sub" / "v.html", [_simple_pair("p")], showcase=[[3]])
    assert rec.size_bytes == (tmp_path / "sub" / "v.html").stat().st_size > 0
    assert rec.pairs == ("p",) and rec.kinds == ("onehot",) and rec.showcase == ((3,),)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["v.html"]


def write_scene_files(tmp_path):
    """Two views of a box as files: images, masks, meshes, cameras, and keypoints JSON.

    Keypoints: the box's top front-left and front-right corners (left/right twins).
    """
    from geocorr.geometry.raster import project_vertices

    corners = np.array([[1.0, 0.5, 0.4], [1.0, -0.5, 0.4]])
    kps = [project_vertices(corners, cam)[0] for cam in write_box_views(tmp_path, seed=3)]
    (tmp_path / "kps.json").write_text(json.dumps({"source": kps[0].tolist(),
                                                   "target": kps[1].tolist()}))
    return kps


def view_args(tmp_path, out, *extra):
    return ["view", str(tmp_path / "i1.png"), str(tmp_path / "i2.png"), "--backbone",
            "classical", "--mask1", str(tmp_path / "k1.png"), "--mask2", str(tmp_path / "k2.png"),
            "--mesh1", str(tmp_path / "m1.ply"), "--camera1", str(tmp_path / "c1.json"),
            "--mesh2", str(tmp_path / "m2.ply"), "--camera2", str(tmp_path / "c2.json"),
            "--keypoints", str(tmp_path / "kps.json"), "--out", str(out), *extra]


def test_view_cli_writes_every_kind_with_an_adapter(tmp_path):
    from geocorr.adapter.checkpoint import save_checkpoint
    from geocorr.adapter.network import Adapter, AdapterSettings
    from geocorr.features.registry import make_backbone

    kps = write_scene_files(tmp_path)
    ch = make_backbone("classical").extract(np.zeros((96, 128, 3), np.uint8)).shape[0]
    save_checkpoint(tmp_path / "run" / "best.pt",
                    Adapter(AdapterSettings(sources=(("classical", ch),), out_dim=8)))
    out = tmp_path / "o" / "view.html"
    res = CliRunner().invoke(app, view_args(tmp_path, out, "--model", str(tmp_path / "run")))
    assert res.exit_code == 0, res.output
    data = read_page_data(out.read_text())
    (pair,) = data["pairs"]
    assert data["kinds"] == ["classical", "rendered part descriptor", "fused", "adapter"]
    assert pair["grids"]["adapter"]["source"].channels == 8
    assert pair["grids"]["fused"]["source"].channels == (
        pair["grids"]["classical"]["source"].channels
        + pair["grids"]["rendered part descriptor"]["source"].channels)
    assert pair["source"]["overlay"].startswith("data:image/")
    np.testing.assert_allclose(pair["keypoints"]["source"], kps[0])
    assert "MiB" in res.output


def test_view_cli_bad_input_is_one_line_and_writes_nothing(tmp_path):
    write_scene_files(tmp_path)
    runner = CliRunner()
    cases = [
        (view_args(tmp_path, tmp_path / "v.png"), "use an .html path"),
        (["view", str(tmp_path / "i1.png"), str(tmp_path / "i2.png"), "--mesh1",
          str(tmp_path / "m1.ply"), "--out", str(tmp_path / "v.html")], "--camera1"),
        (["view", str(tmp_path / "i1.png"), str(tmp_path / "nope.png"), "--out",
          str(tmp_path / "v.html")], "nope.png"),
    ]
    (tmp_path / "bad.json").write_text('{"source": [[1, 2]]}')
    cases.append((view_args(tmp_path, tmp_path / "v.html")[:-4]
                  + ["--keypoints", str(tmp_path / "bad.json"), "--out",
                     str(tmp_path / "v.html")], "bad.json"))
    for args, needle in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, res.output
        assert needle in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not list(tmp_path.glob("v.*"))


def test_view_adapter_gets_the_mask_files_and_stage1_masks_are_not_mixed(tmp_path, monkeypatch):
    """With --mask1/--mask2 the adapter's feature source sees those masks (context adapters
    depend on them); --stage1 with --mask would drop one of the two: refused."""
    import geocorr.viewer.files as files
    from geocorr.adapter.checkpoint import save_checkpoint
    from geocorr.adapter.network import Adapter, AdapterSettings
    from geocorr.data.images import read_mask
    from geocorr.features.registry import make_backbone

    write_scene_files(tmp_path)
    ch = make_backbone("classical").extract(np.zeros((96, 128, 3), np.uint8)).shape[0]
    save_checkpoint(tmp_path / "run" / "best.pt",
                    Adapter(AdapterSettings(sources=(("classical", ch),), out_dim=8)))
    seen = {}
    real = files.adapter_feature_source

    def spy(adapter, bbs, **kw):
        for n in (1, 2):
            p = tmp_path / f"i{n}.png"
            seen[n] = kw["mask_for"](p, p.parent.name)
        return real(adapter, bbs, **kw)

    monkeypatch.setattr(files, "adapter_feature_source", spy)
    res = CliRunner().invoke(app, view_args(tmp_path, tmp_path / "v.html", "--model",
                                            str(tmp_path / "run")))
    assert res.exit_code == 0, res.output
    for n in (1, 2):
        np.testing.assert_array_equal(seen[n], read_mask(tmp_path / f"k{n}.png"))
    with pytest.raises(ValueError, match="--mask or from --stage1"):
        files.pair_from_files(tmp_path / "i1.png", tmp_path / "i2.png", stage1=tmp_path,
                              masks=(tmp_path / "k1.png", None))

"""Sam3DReconstructor end to end against the API stand-in (tests/fakes/sam_3d_objects).

A known mesh (geocorr frame, Z up, front +X) and camera give the synthetic
image and mask; the stand-in returns that scene in SAM3D's conventions (wxyz
quaternion, Y-up glb, PyTorch3D pointmap, downsampled for large images). The
adapter's mesh and camera must render back onto the synthetic mask, Z up.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from geocorr.geometry.camera import Camera, look_at
from geocorr.geometry.raster import rasterize
from geocorr.reconstruct.refine import RefineSettings, refine_pose
from geocorr.reconstruct.sam3d import Sam3DReconstructor

torch = pytest.importorskip("torch")
pytest.importorskip("scipy")


def toy_car():
    body = trimesh.creation.box([2.0, 0.9, 0.4])
    body.apply_translation([0, 0, 0.2])
    cabin = trimesh.creation.box([0.8, 0.8, 0.35])
    cabin.apply_translation([-0.3, 0, 0.575])
    m = trimesh.util.concatenate([body, cabin])
    return np.asarray(m.vertices), np.asarray(m.faces)


def scene(W, H):
    v, f = toy_car()
    R, t = look_at([3.5, -2.5, 1.8], [0, 0, 0.3])
    K = np.array([[1.1 * W, 0, W / 2 - 3.5], [0, 1.1 * W, H / 2 + 2.0], [0, 0, 1]])
    cam = Camera(K, R, t, W, H)
    mask = rasterize(v, f, cam).face_index >= 0
    image = np.full((H, W, 3), 90, np.uint8)
    image[mask] = (200, 40, 40)
    return v, f, cam, image, mask


def write_repo(repo, v, f, cam, scale):
    np.savez(repo / "checkpoints" / "hf" / "scene.npz", vertices=v, faces=f, K=cam.K, R=cam.R,
             t=cam.t, width=cam.width, height=cam.height, scale=scale)


@pytest.fixture()
def sam3d_repo(stand_in, monkeypatch):
    monkeypatch.setenv("CONDA_PREFIX", "unset")
    monkeypatch.delenv("CONDA_PREFIX")  # the adapter must set it; restored afterwards
    repo = stand_in("sam_3d_objects")
    (repo / "checkpoints" / "hf").mkdir(parents=True)
    (repo / "checkpoints" / "hf" / "pipeline.yaml").write_text(json.dumps({"scene": "scene.npz"}))
    return repo


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


@pytest.mark.parametrize("size", [(160, 120), (1280, 720)])  # the second: pointmap x0.5
def test_converted_mesh_renders_onto_the_mask(sam3d_repo, size):
    W, H = size
    v, f, cam, image, mask = scene(W, H)
    write_repo(sam3d_repo, v, f, cam, scale=2.4)
    rec = Sam3DReconstructor(sam3d_repo, seed=7).reconstruct(image, mask, "car", "car_0001")
    assert rec.source == "sam3d:car/car_0001"
    assert rec.vertices.shape == v.shape and rec.faces.dtype == np.int64
    np.testing.assert_allclose(rec.vertices, v, atol=1e-5)          # Z up, same frame and size
    np.testing.assert_allclose(np.ptp(rec.vertices, axis=0), [2.0, 0.9, 0.75], atol=1e-5)
    assert rec.camera.size == (H, W)
    np.testing.assert_allclose(rec.camera.K, cam.K, rtol=2e-3, atol=0.5)
    rendered = rasterize(rec.vertices, rec.faces, rec.camera).face_index >= 0
    assert _iou(rendered, mask) > 0.97
    # and the refinement starts from it without having to move anything
    if W <= 200:
        res = refine_pose(rec.vertices, rec.faces, rec.camera, mask, RefineSettings())
        assert res.iou_before > 0.97 and res.iou_after >= res.iou_before - 0.01


def test_sam3d_and_orient_anything_load_in_one_process(sam3d_repo, stand_in, tmp_path):
    """Both repositories ship a top-level ``inference`` module; neither may shadow the other."""
    from geocorr.reconstruct.orientation import OrientAnythingV2
    from geocorr.reconstruct.views import render_view

    v, f, cam, image, mask = scene(160, 120)
    write_repo(sam3d_repo, v, f, cam, scale=2.4)
    Sam3DReconstructor(sam3d_repo).reconstruct(image, mask, "car", "car_0001")
    oa_repo = stand_in("orient_anything_v2")
    import importlib.util

    spec = importlib.util.spec_from_file_location("_oa_tower_ckpt", oa_repo / "vision_tower.py")
    tower = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tower)
    model = tower.VGGT_OriAny_Ref(out_dim=900, dtype=torch.float32, nopretrain=True)
    with torch.no_grad():
        model.side_azimuths_deg.copy_(torch.tensor([0.0, 35.0, 109.0, 155.0, 255.0, 330.0]))
    torch.save(model.state_dict(), tmp_path / "oa.pt")
    est = OrientAnythingV2(oa_repo, tmp_path / "oa.pt").estimate(render_view(v, f, 0.0))
    assert 0.0 <= est.azimuth_deg < 360.0 and est.symmetry == 1
    # and SAM3D still works after Orient Anything was loaded
    rec = Sam3DReconstructor(sam3d_repo).reconstruct(image, mask, "car", "car_0001")
    np.testing.assert_allclose(rec.vertices, v, atol=1e-5)


def test_sam3d_bad_input_and_missing_repo(sam3d_repo, tmp_path):
    v, f, cam, image, mask = scene(160, 120)
    write_repo(sam3d_repo, v, f, cam, scale=2.4)
    with pytest.raises(ValueError, match="car/car_0002"):
        Sam3DReconstructor(sam3d_repo).reconstruct(image[:100], mask, "car", "car_0002")
    with pytest.raises(FileNotFoundError, match="inference.py"):
        Sam3DReconstructor(tmp_path / "nowhere").reconstruct(image, mask, "car", "x")


def test_geocorr_reconstruct_with_sam3d_and_orient_anything(sam3d_repo, stand_in, tmp_path):
    """``geocorr reconstruct --meshes sam3d:REPO --estimator orient-anything:REPO:CKPT``.

    SAM3D's raw frame has no documented front: the stand-in returns the known prism
    turned by 90 degrees. Stage 1 must refine it onto the mask and the Orient Anything
    vote must turn it back (k = 3), leaving the canonical prism and a camera that
    still renders it onto the mask.
    """
    from PIL import Image
    from test_orient_anything_adapter import SIDES_DEG, prism
    from typer.testing import CliRunner

    from geocorr.cli import app
    from geocorr.geometry.camera import load_camera
    from geocorr.geometry.mesh import load_mesh
    from geocorr.reconstruct.views import rotation_z

    v0, f = prism()
    v_sam = v0 @ rotation_z(90.0).T
    W, H = 160, 120
    R, t = look_at([4.0, -3.0, 2.5], [0, 0, 0.3])
    cam = Camera(np.array([[170.0, 0, 80.0], [0, 170.0, 58.0], [0, 0, 1]]), R, t, W, H)
    mask = rasterize(v_sam, f, cam).face_index >= 0
    write_repo(sam3d_repo, v_sam, f, cam, scale=3.0)
    data = tmp_path / "data"
    (data / "JPEGImages" / "thing").mkdir(parents=True)
    (data / "Segmentation" / "thing").mkdir(parents=True)
    image = np.full((H, W, 3), 120, np.uint8)
    image[mask] = (30, 160, 60)
    Image.fromarray(image).save(data / "JPEGImages" / "thing" / "thing_0001.jpg")
    Image.fromarray(mask.astype(np.uint8) * 255).save(data / "Segmentation" / "thing" /
                                                      "thing_0001.png")

    oa_repo = stand_in("orient_anything_v2")
    import importlib.util

    spec = importlib.util.spec_from_file_location("_oa_tower_cli", oa_repo / "vision_tower.py")
    tower = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tower)
    model = tower.VGGT_OriAny_Ref(out_dim=900, dtype=torch.float32, nopretrain=True)
    with torch.no_grad():
        model.side_azimuths_deg.copy_(torch.as_tensor(SIDES_DEG))
    torch.save(model.state_dict(), tmp_path / "oa.pt")

    out = tmp_path / "stage1"
    res = CliRunner().invoke(app, [
        "reconstruct", "--dataset", str(data), "--split", "all", "--out", str(out),
        "--meshes", f"sam3d:{sam3d_repo}",
        "--estimator", f"orient-anything:{oa_repo}:{tmp_path / 'oa.pt'}",
        "--max-side", "48", "--quiet"])
    assert res.exit_code == 0, (res.output, res.exception)
    folder = out / "thing" / "thing_0001"
    record = json.loads((folder / "record.json").read_text())
    assert record["k"] == 3 and record["estimator"] != "template"
    assert record["yaw"]["margin"] == 8
    mesh = load_mesh(folder / "mesh.ply")
    got = np.asarray(mesh.vertices)

    def normalised(x):
        lo, hi = x.min(0), x.max(0)
        return (x - 0.5 * (lo + hi)) / (hi - lo).max()

    np.testing.assert_allclose(normalised(got), normalised(v0), atol=1e-6)
    rendered = rasterize(got, np.asarray(mesh.faces), load_camera(folder / "camera.json"))
    assert _iou(rendered.face_index >= 0, mask) > 0.95

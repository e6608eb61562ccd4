"""File import (errors naming the file) and the SAM3D -> geocorr conversion."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from geocorr.geometry.camera import Camera, look_at, save_camera
from geocorr.reconstruct.reconstructor import FileReconstructor, simulated_reconstructor
from geocorr.reconstruct.sam3d import (
    GLB_FROM_RAW,
    PYTORCH3D_TO_OPENCV,
    fit_intrinsics,
    quaternion_wxyz_to_matrix,
    sam3d_to_geocorr,
)


def _camera(W=160, H=120):
    R, t = look_at([4, -3, 2], [0, 0, 0])
    K = np.array([[150.0, 0, 81.5], [0, 140.0, 58.0], [0, 0, 1]])
    return Camera(K, R, t, W, H)


def test_file_import_roundtrip_and_errors(tmp_path):
    mesh = trimesh.creation.box([1, 2, 3])
    (tmp_path / "car").mkdir()
    mesh.export(tmp_path / "car" / "car_0001.ply")
    cam = _camera()
    save_camera(cam, tmp_path / "car" / "car_0001.json")
    rec = FileReconstructor(tmp_path).reconstruct(np.zeros((120, 160, 3), np.uint8),
                                                  np.zeros((120, 160), bool), "car", "car_0001")
    assert rec.vertices.shape == (8, 3) and rec.faces.shape == (12, 3)
    np.testing.assert_allclose(rec.camera.K, cam.K)
    with pytest.raises(FileNotFoundError, match="car_0002.ply"):
        FileReconstructor(tmp_path).load("car", "car_0002")
    mesh.export(tmp_path / "car" / "car_0003.obj")
    with pytest.raises(FileNotFoundError, match="car_0003.json"):
        FileReconstructor(tmp_path).load("car", "car_0003")
    (tmp_path / "car" / "car_0003.json").write_text("{not json")
    with pytest.raises(ValueError, match="car_0003.json"):
        FileReconstructor(tmp_path).load("car", "car_0003")
    (tmp_path / "car" / "car_0003.json").write_text(json.dumps({"K": [[1, 0, 0]]}))
    with pytest.raises(ValueError, match="car_0003.json.*missing"):
        FileReconstructor(tmp_path).load("car", "car_0003")
    with pytest.raises(ValueError, match="car_0001.json.*160x120.*but the image is 100x50"):
        FileReconstructor(tmp_path).reconstruct(np.zeros((50, 100, 3), np.uint8),
                                                np.zeros((50, 100), bool), "car", "car_0001")
    with pytest.raises(FileNotFoundError, match="Reconstructions"):
        simulated_reconstructor(tmp_path)


def test_quaternion_matches_scipy():
    q = np.array([0.3, -0.2, 0.8, 0.4])
    R = quaternion_wxyz_to_matrix(q)
    q = q / np.linalg.norm(q)
    np.testing.assert_allclose(R, Rotation.from_quat([q[1], q[2], q[3], q[0]]).as_matrix(),
                               atol=1e-12)


@pytest.mark.parametrize("factor", [1.0, 0.5, 0.25])
def test_sam3d_conversion_synthetic(factor):
    """Express a known mesh + OpenCV camera as SAM3D would; convert back."""
    rng = np.random.default_rng(0)
    W, H = 160, 120
    cam = _camera(W, H)
    ours = np.asarray(trimesh.creation.box([1.0, 0.6, 0.4]).vertices)  # Z up, our frame
    s = 1.7
    raw = ours / s
    glb = raw @ GLB_FROM_RAW
    Fm = PYTORCH3D_TO_OPENCV
    R_p3d = (Fm @ cam.R).T  # F R^T = R_cv  ->  R = (F R_cv)^T
    t_p3d = Fm @ cam.t
    xyzw = Rotation.from_matrix(R_p3d).as_quat()
    wxyz = np.array([xyzw[3], *xyzw[:3]])
    # sanity: SAM3D's own pose formula maps raw into the PyTorch3D camera frame
    p3d = s * raw @ quaternion_wxyz_to_matrix(wxyz) + t_p3d
    np.testing.assert_allclose(p3d @ Fm.T, cam.to_camera(ours), atol=1e-9)
    # pointmap: random depths along the rays of a downsampled pixel grid
    h, w = int(H * factor), int(W * factor)
    jj, ii = np.meshgrid(np.arange(w), np.arange(h))
    u = (jj + 0.5) / factor - 0.5
    v = (ii + 0.5) / factor - 0.5
    Z = rng.uniform(2, 6, size=(h, w))
    X = (u - cam.cx) / cam.fx * Z
    Y = (v - cam.cy) / cam.fy * Z
    pm_cv = np.stack([X, Y, Z], axis=-1)
    pm_cv[0, 0] = np.nan  # invalid entries are ignored
    pointmap = pm_cv @ Fm.T
    verts, cam2 = sam3d_to_geocorr(glb, np.zeros((0, 3), int), wxyz[None], t_p3d[None],
                                   np.full((1, 3), s), pointmap, W, H)
    np.testing.assert_allclose(verts, ours, atol=1e-9)
    np.testing.assert_allclose(cam2.K, cam.K, atol=1e-6)
    uv1, _ = cam.project(ours)
    uv2, _ = cam2.project(verts)
    np.testing.assert_allclose(uv2, uv1, atol=1e-6)
    # Z up preserved: the box's longest axis stays X, height axis Z
    np.testing.assert_allclose(np.ptp(verts, axis=0), [1.0, 0.6, 0.4], atol=1e-9)


def test_fit_intrinsics_errors():
    with pytest.raises(ValueError, match="shape"):
        fit_intrinsics(np.zeros((4, 4)), 4, 4)
    with pytest.raises(ValueError, match="valid"):
        fit_intrinsics(np.full((4, 4, 3), np.nan), 4, 4)
    with pytest.raises(ValueError, match="anisotropic"):
        sam3d_to_geocorr(np.zeros((3, 3)), np.zeros((0, 3), int), [1, 0, 0, 0], [0, 0, 1],
                         [1, 2, 3], np.ones((2, 2, 3)), 2, 2)

"""The object-frame check: camera up vs the mesh's +Z, and the documented glTF conversion."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from geocorr.geometry.camera import Camera, look_at
from geocorr.reconstruct.frame import camera_up_in_mesh, check_frame

K = np.array([[100.0, 0, 63.5], [0, 100.0, 47.5], [0, 0, 1]])


def _camera(elevation_deg, azimuth_deg=30.0, up=(0, 0, 1), up_axis=2):
    e, a = np.radians(elevation_deg), np.radians(azimuth_deg)
    eye = np.zeros(3)
    horiz = [i for i in range(3) if i != up_axis]
    eye[horiz[0]], eye[horiz[1]] = 5 * np.cos(e) * np.cos(a), 5 * np.cos(e) * np.sin(a)
    eye[up_axis] = 5 * np.sin(e)
    R, t = look_at(eye, np.zeros(3), up=np.asarray(up, float))
    return Camera(K, R, t, 128, 96)


@pytest.mark.parametrize("elevation", [0.0, 20.0, 45.0, 59.0])
def test_z_up_camera_passes(elevation):
    c = check_frame(_camera(elevation))
    assert c.ok and c.message("m.ply") == ""
    assert c.closest_axis == ("+Z" if elevation <= 45 else "-X")  # the camera is at +X, +Y
    assert c.angle_deg == pytest.approx(elevation, abs=1e-6)  # look_at: up tilts with elevation
    np.testing.assert_allclose(np.linalg.norm(camera_up_in_mesh(_camera(elevation))), 1.0)


def test_y_up_and_upside_down_meshes_warn():
    y_up = check_frame(_camera(15.0, up=(0, 1, 0), up_axis=1))
    assert not y_up.ok and y_up.closest_axis == "+Y" and y_up.angle_deg > 60
    msg = y_up.message("car/a.glb")
    assert msg.startswith("car/a.glb: ") and "Z-up" in msg and "V[:, [2, 0, 1]]" in msg
    down = check_frame(_camera(10.0, up=(0, 0, -1)))
    assert not down.ok and down.closest_axis == "-Z" and down.angle_deg > 170
    assert "V[:, [2, 0, 1]]" not in down.message("m.ply")
    # a view from high above a Z-up object also trips it (documented)
    assert not check_frame(_camera(70.0)).ok
    with pytest.raises(ValueError, match="max_angle_deg"):
        check_frame(_camera(0.0), max_angle_deg=0)


def test_documented_gltf_conversion():
    """glTF (+Y up, +Z front, +X left) -> geocorr (Z up, X front, Y left): V[:, [2, 0, 1]],
    R[:, [2, 0, 1]]; the image is unchanged and the check passes afterwards."""
    box = trimesh.creation.box(extents=(3.0, 1.0, 0.5))  # geocorr frame: long along X (front)
    v_geo = np.asarray(box.vertices)
    v_gltf = v_geo[:, [1, 2, 0]]  # the same object written Y-up, front +Z, left +X
    cam_gltf = _camera(20.0, up=(0, 1, 0), up_axis=1)
    assert not check_frame(cam_gltf).ok
    v = v_gltf[:, [2, 0, 1]]
    cam = Camera(cam_gltf.K, cam_gltf.R[:, [2, 0, 1]], cam_gltf.t, 128, 96)
    np.testing.assert_allclose(v, v_geo)
    np.testing.assert_allclose(cam.project(v)[0], cam_gltf.project(v_gltf)[0], atol=1e-9)
    assert check_frame(cam).ok and np.linalg.det(cam.R) == pytest.approx(1.0)

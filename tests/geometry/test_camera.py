import json

import numpy as np
import pytest

from geocorr.geometry import Camera, CameraError, load_camera, look_at, resize_and_pad, save_camera


def _cam(**kw):
    R, t = look_at([3.0, 1.0, 2.0], [0.0, 0.0, 0.0])
    args = dict(K=np.array([[500.0, 0, 160], [0, 480.0, 120], [0, 0, 1]]), R=R, t=t,
                width=320, height=240)
    args.update(kw)
    return Camera(**args)


def test_project_backproject_roundtrip():
    cam = _cam()
    pts = np.random.default_rng(0).normal(scale=0.5, size=(50, 3))
    uv, z = cam.project(pts)
    assert np.all(z > 0)
    np.testing.assert_allclose(cam.backproject(uv, z), pts, atol=1e-9)


def test_principal_point_and_rays():
    cam = _cam()
    # The target (origin) projects to the principal point of a look_at camera.
    uv, z = cam.project(np.zeros((1, 3)))
    np.testing.assert_allclose(uv[0], [cam.cx, cam.cy], atol=1e-9)
    np.testing.assert_allclose(z[0], np.sqrt(14.0))
    o, d = cam.pixel_rays(uv)
    np.testing.assert_allclose(o[0] + d[0] * z[0], [0, 0, 0], atol=1e-9)


def test_look_at_up_is_image_up():
    R, t = look_at([5.0, 0, 0], [0, 0, 0], up=[0, 0, 1])
    cam = Camera(np.diag([100.0, 100.0, 1.0]) + np.array([[0, 0, 50], [0, 0, 50], [0, 0, 0]]),
                 R, t, 100, 100)
    uv, _ = cam.project(np.array([[0.0, 0, 1.0], [0.0, 1.0, 0.0]]))
    assert uv[0, 1] < 50  # +z appears above the centre (image y down)
    assert uv[1, 0] > 50  # +y (the object's left) is on image-right when it faces us


def test_object_transform_equivalence():
    cam = _cam()
    pts = np.random.default_rng(1).normal(scale=0.3, size=(20, 3))
    s, T = 1.7, np.array([0.1, -0.2, 0.05])
    uv_a, _ = cam.project(s * pts + T)
    uv_b, _ = cam.with_object_transform(s, T).project(pts)
    np.testing.assert_allclose(uv_a, uv_b, atol=1e-9)


def test_scaled_and_padded():
    cam = _cam()
    pts = np.random.default_rng(2).normal(scale=0.3, size=(5, 3))
    uv, _ = cam.project(pts)
    uv2, _ = cam.scaled(2.0).project(pts)
    np.testing.assert_allclose(uv2, 2 * (uv + 0.5) - 0.5, atol=1e-9)
    uv3, _ = cam.padded(10, 20, 400, 400).project(pts)
    np.testing.assert_allclose(uv3, uv + [10, 20], atol=1e-9)


def test_json_roundtrip(tmp_path):
    cam = _cam()
    save_camera(cam, tmp_path / "c.json")
    cam2 = load_camera(tmp_path / "c.json")
    np.testing.assert_allclose(cam2.K, cam.K)
    np.testing.assert_allclose(cam2.R, cam.R)
    assert (cam2.width, cam2.height) == (320, 240)


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"K": [[float("nan"), 0, 1], [0, 1, 1], [0, 0, 1]]}, "NaN"),
        ({"K": [[-5.0, 0, 1], [0, 5, 1], [0, 0, 1]]}, "focal"),
        ({"R": [[1.0, 0, 0], [0, 2, 0], [0, 0, 1]]}, "orthonormal"),
        ({"R": [[1.0, 0, 0], [0, 1, 0], [0, 0, -1]]}, "reflection"),
        ({"t": [0.0, 1.0]}, "shape"),
        ({"width": 0}, "width"),
    ],
)
def test_bad_camera_json_names_file_and_field(tmp_path, patch, message):
    d = _cam().to_dict()
    d.update(patch)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(d))
    with pytest.raises(CameraError, match=message) as info:
        load_camera(p)
    assert "bad.json" in str(info.value)


def test_missing_and_malformed_camera_files(tmp_path):
    with pytest.raises(CameraError, match="not found"):
        load_camera(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(CameraError, match="x.json"):
        load_camera(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({"K": np.eye(3).tolist()}))
    with pytest.raises(CameraError, match="missing"):
        load_camera(tmp_path / "y.json")


def test_resize_and_pad_points():
    tr = resize_and_pad(width=400, height=200, size=840)
    assert tr.scale == pytest.approx(2.1)
    assert (tr.left, tr.top) == (0, 210)
    p = np.array([[10.0, 20.0], [399.0, 199.0]])
    np.testing.assert_allclose(tr.points_from_canvas(tr.points_to_canvas(p)), p)
    img = np.ones((200, 400, 3), np.uint8)
    out = tr.apply_image(img)
    assert out.shape == (840, 840, 3)
    assert out[:210].sum() == 0 and out[210:630].min() == 1

"""Render-and-compare refinement: recovery of a known scale/translation on an icosphere."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import trimesh

from geocorr.geometry.camera import Camera, look_at
from geocorr.geometry.rotation import rotvec_matrix
from geocorr.reconstruct import refine as refine_module
from geocorr.reconstruct.losses import mask_iou
from geocorr.reconstruct.refine import (
    POLISH_MAX_SWEEPS,
    Pose,
    RefineSettings,
    polish_hard_iou,
    refine_pose,
    render_mask,
)

FAST = RefineSettings(max_side=64, dt_steps=25, iou_steps=10, polish_side=128)


@pytest.fixture(scope="module")
def scene():
    m = trimesh.creation.icosphere(2)
    v, f = np.asarray(m.vertices), np.asarray(m.faces)
    R, t = look_at([0, -6, 1], [0, 0, 0])
    K = np.array([[300.0, 0, 120], [0, 300, 90], [0, 0, 1]])
    return v, f, Camera(K, R, t, 240, 180)


def _image_equivalent(res, truth_v, v, f, cam):
    """The refined render must coincide with the truth's (IoU at full resolution)."""
    return mask_iou(render_mask(res.apply(v), f, cam), render_mask(truth_v, f, cam))


def test_recovers_known_scale_translation(scene):
    v, f, cam = scene
    truth = 1.25 * v + np.array([0.3, 0.0, -0.2])  # same depth: the gauge-free answer
    mask = render_mask(truth, f, cam)
    res = refine_pose(v, f, cam, mask, FAST)
    assert res.iou_before < 0.75
    assert res.iou_after > 0.97 and not res.failed
    assert res.scale == pytest.approx(1.25, rel=0.03)
    np.testing.assert_allclose(res.translation, [0.3, 0.0, -0.2], atol=0.04)
    # the returned camera renders the original mesh like the refined mesh
    assert mask_iou(render_mask(v, f, res.camera), mask) == pytest.approx(res.iou_after)
    assert _image_equivalent(res, truth, v, f, cam) > 0.97


def test_disjoint_start_is_recovered(scene):
    v, f, cam = scene
    truth = 0.9 * v + np.array([-0.8, 0.0, 0.4])
    mask = render_mask(truth, f, cam)
    start = 0.5 * v + np.array([2.6, 0.0, -1.5])  # rendered away from the mask, partly off-image
    assert mask_iou(render_mask(start, f, cam), mask) == 0
    res = refine_pose(start, f, cam, mask, FAST)
    assert res.init == "moments"
    assert res.iou_after > 0.95 and not res.failed


def test_truncated_mask_at_border(scene):
    v, f, cam = scene
    truth = 1.2 * v + np.array([-2.3, 0.0, 0.0])  # sticks out of the left border
    mask = render_mask(truth, f, cam)
    assert mask[:, 0].any()
    res = refine_pose(1.1 * v + np.array([-1.9, 0, 0.1]), f, cam, mask, FAST)
    assert res.iou_after > 0.95


def test_failure_flag_and_errors(scene):
    v, f, cam = scene
    res = refine_pose(v, f, cam, np.zeros(cam.size, bool), FAST)
    assert res.failed and res.reason == "empty mask" and res.iou_after == 0
    # a cube mask that a sphere cannot match above the threshold
    mask = np.zeros(cam.size, bool)
    mask[10:20, 10:200] = True
    res = refine_pose(v, f, cam, mask, RefineSettings(max_side=64, dt_steps=10, iou_steps=0,
                                                      polish_side=0, fail_iou=0.9))
    assert res.failed and "fail_iou" in res.reason and np.isfinite(res.translation).all()
    with pytest.raises(ValueError, match="mask is"):
        refine_pose(v, f, cam, np.zeros((5, 5), bool))
    with pytest.raises(ValueError, match="init"):
        RefineSettings(init="bad")
    with pytest.raises(ValueError, match="engine"):
        RefineSettings(engine="gpu")


@pytest.mark.parametrize("engine", ["torch", "numba"])
def test_multicomponent_assembly_with_both_engines(engine):
    """Unmerged, overlapping parts (interior faces, cylinder slivers, fan caps) as in
    CAD or robot meshes: the known pose is recovered with either soft engine."""
    parts = [trimesh.creation.cylinder(0.5, 0.15, sections=96),
             trimesh.creation.capsule(1.2, 0.12, count=[16, 16]),
             trimesh.creation.icosphere(2, radius=0.2),
             trimesh.creation.box((0.9, 0.1, 0.1))]
    parts[1].apply_translation((0.0, 0.0, 0.7))
    parts[2].apply_translation((0.0, 0.0, 1.3))
    parts[3].apply_translation((0.4, 0.0, 1.3))
    off = np.cumsum([0] + [len(p.vertices) for p in parts])
    v = np.concatenate([p.vertices for p in parts]) - [0.0, 0.0, 0.7]
    f = np.concatenate([p.faces + o for p, o in zip(parts, off, strict=False)])
    R, t = look_at([-1.0, -6.0, 1.5], [0, 0, 0])
    cam = Camera(np.array([[300.0, 0, 120], [0, 300, 100], [0, 0, 1]]), R, t, 240, 200)
    truth = 1.15 * v + np.array([0.15, 0.0, -0.1])
    mask = render_mask(truth, f, cam)
    res = refine_pose(v, f, cam, mask, RefineSettings(max_side=64, dt_steps=25, iou_steps=10,
                                                      engine=engine))
    assert res.iou_before < 0.8
    assert res.iou_after > 0.98 and not res.failed
    assert res.scale == pytest.approx(1.15, rel=0.03)


def test_polish_renders_each_point_once_and_matches_the_plain_search(scene, monkeypatch):
    v, f, cam = scene
    mask = render_mask(1.1 * v + np.array([0.2, 0.0, -0.1]), f, cam)
    pose = Pose.of(v, cam)
    p0, steps = np.array([0.02, 0.05, -0.03]), (0.02, 0.01, 0.005)

    def plain(p):  # the pattern search without reuse: slow, obvious reference
        def score(q):
            return mask_iou(render_mask(pose.object_vertices(q), f, cam), mask)
        best = score(p)
        for h in steps:
            improved, sweeps = True, 0
            while improved and sweeps < POLISH_MAX_SWEEPS:
                improved, sweeps = False, sweeps + 1
                for i in range(3):
                    for sign in (1.0, -1.0):
                        q = p.copy()
                        q[i] += sign * h
                        if (sq := score(q)) > best:
                            p, best, improved = q, sq, True
                            break
        return p

    expected = plain(p0.copy())
    rendered = []

    def spy(vertices, faces, camera):
        rendered.append(np.round(vertices, 9).tobytes())
        return render_mask(vertices, faces, camera)

    monkeypatch.setattr(refine_module, "render_mask", spy)
    got = polish_hard_iou(pose, f, cam, mask, p0, steps)
    np.testing.assert_array_equal(got, expected)
    assert len(rendered) > 10 and len(set(rendered)) == len(rendered)


def test_adam_matches_torch_optim_adam():
    import torch

    target = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float32)
    for lr in (0.05, 0.003):
        a = torch.tensor([1.0, 0.5, -0.7], requires_grad=True)
        b = a.detach().clone().requires_grad_(True)
        ours, ref = refine_module._Adam(a, lr), torch.optim.Adam([b], lr=lr)
        for _ in range(40):
            for x, opt in ((a, ours), (b, ref)):
                x.grad = None
                ((x - target) ** 4).sum().backward()
                opt.step()
        assert torch.allclose(a, b, rtol=0, atol=1e-6)
        assert not torch.equal(a.detach(), torch.tensor([1.0, 0.5, -0.7]))


def test_refine_does_not_import_torch_dynamo():
    """torch.optim.Adam imports torch._dynamo on first use (1.3 s of CPU per process,
    paid by every one-image `geocorr refine`); refinement must not pull it in."""
    import subprocess
    import sys

    code = """
import sys
import numpy as np, trimesh
from geocorr.geometry.camera import Camera, look_at
from geocorr.reconstruct.refine import RefineSettings, refine_pose, render_mask
m = trimesh.creation.icosphere(1)
v, f = np.asarray(m.vertices), np.asarray(m.faces)
R, t = look_at([0, -6, 1], [0, 0, 0])
cam = Camera(np.array([[100.0, 0, 30], [0, 100, 20], [0, 0, 1]]), R, t, 60, 40)
res = refine_pose(v, f, cam, render_mask(1.2 * v, f, cam),
                  RefineSettings(dt_steps=2, iou_steps=2, polish_side=0, rotation=False))
assert res.history.size == 4, res.history
print(sorted(k for k in sys.modules if k.startswith("torch._dynamo")))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def _l_shape():
    """An asymmetric L of two boxes (no silhouette symmetry under small turns)."""
    a = trimesh.creation.box((1.6, 0.5, 0.4))
    b = trimesh.creation.box((0.4, 0.5, 1.2))
    b.apply_translation((0.6, 0.0, 0.6))
    m = trimesh.util.concatenate([a, b])
    return np.asarray(m.vertices) - [0.0, 0.0, 0.3], np.asarray(m.faces)


def _turned(cam, v, rotvec_deg):
    """``cam`` turned by ``E`` about the mesh's bounding-box centre (camera frame)."""
    E = rotvec_matrix(np.radians(rotvec_deg))
    c = 0.5 * (v.min(0) + v.max(0))
    return Camera(cam.K, E @ cam.R, cam.R @ c + cam.t - E @ cam.R @ c, cam.width, cam.height)


def _angle(R):
    return np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1)))


@pytest.fixture(scope="module")
def l_scene():
    v, f = _l_shape()
    R, t = look_at([2.0, -5.0, 2.0], [0, 0, 0])
    cam = Camera(np.array([[300.0, 0, 120], [0, 300, 100], [0, 0, 1]]), R, t, 240, 200)
    return v, f, cam, render_mask(v, f, cam)


@pytest.mark.parametrize("engine", ["torch", "numba"])
def test_recovers_a_known_rotation(l_scene, engine):
    """A camera-relative rotation error of 9 deg about the object's centre is undone
    (the answer is E^-1): the scale/translation-only fit cannot do it."""
    v, f, cam, mask = l_scene
    start = _turned(cam, v, [5.0, -6.0, 4.0])
    assert _angle(start.R @ cam.R.T) == pytest.approx(8.8, abs=0.1)
    settings = replace(FAST, polish_side=256, engine=engine)
    fixed = refine_pose(v, f, start, mask, replace(settings, rotation=False))
    res = refine_pose(v, f, start, mask, settings)
    assert fixed.rotation_status == "off" and _angle(fixed.camera.R @ cam.R.T) > 8.0
    assert res.rotation_status == "accepted"
    assert _angle(res.camera.R @ cam.R.T) < 2.5
    assert res.iou_after > 0.97 and res.iou_after > fixed.iou_after + 0.05
    assert res.iou_rotated >= res.iou_fixed + settings.rotation_margin
    # the record is consistent: apply() under the input camera == original under res.camera
    np.testing.assert_allclose(start.project(res.apply(v))[0], res.camera.project(v)[0],
                               atol=1e-6)
    assert mask_iou(render_mask(v, f, res.camera), mask) == pytest.approx(res.iou_after)
    assert _angle(res.rotation) == pytest.approx(res.rotation_deg, abs=1e-6)


def test_an_invisible_turn_is_not_accepted():
    """A turn about a cylinder's own axis leaves the silhouette unchanged: the rotated
    fit cannot beat the fixed one by the hard-IoU margin, so no rotation is returned."""
    m = trimesh.creation.cylinder(0.5, 1.5, sections=64)
    v, f = np.asarray(m.vertices), np.asarray(m.faces)
    R, t = look_at([0.0, -6.0, 1.0], [0, 0, 0])
    cam = Camera(np.array([[300.0, 0, 120], [0, 300, 100], [0, 0, 1]]), R, t, 240, 200)
    mask = render_mask(1.1 * v, f, cam)
    res = refine_pose(v, f, cam, mask, FAST)
    assert res.rotation_status == "rejected"
    np.testing.assert_array_equal(res.rotation, np.eye(3))
    assert res.rotation_deg == 0.0 and res.iou_after > 0.97


def test_rotation_is_capped(l_scene):
    """A 40 deg error is beyond ``max_rotation_deg``: the fit never turns further."""
    v, f, cam, mask = l_scene
    start = _turned(cam, v, [0.0, 0.0, 40.0])
    res = refine_pose(v, f, start, mask, replace(FAST, max_rotation_deg=12.0, rotation_margin=0))
    assert res.rotation_deg <= 12.0 + 1e-6
    assert res.rotation_status == "accepted"  # it helps, within the cap
    assert 28.0 - 1e-6 <= _angle(res.camera.R @ cam.R.T)


def test_fit_focal_is_carried_by_the_camera(l_scene):
    """With ``fit_focal`` the focal factor is a free parameter and the returned camera
    carries it (it is weakly observable: scale absorbs most of a 15 % error even on
    this close camera, see docs/reconstruct.md)."""
    v, f, cam, mask = l_scene
    R, t = look_at([1.2, -2.5, 1.0], [0, 0, 0])
    near = Camera(np.array([[150.0, 0, 120], [0, 150, 100], [0, 0, 1]]), R, t, 240, 200)
    mask = render_mask(v, f, near)
    K = near.K.copy()
    K[:2, :2] *= 1.15
    start = Camera(K, near.R, near.t, near.width, near.height)
    res = refine_pose(v, f, start, mask, replace(FAST, fit_focal=True, rotation_margin=0))
    assert res.camera.fx == pytest.approx(start.fx * res.focal_scale)
    assert mask_iou(render_mask(v, f, res.camera), mask) == pytest.approx(res.iou_after)
    assert res.iou_after > 0.95


def test_in_own_frame_keeps_the_mesh_axes(l_scene):
    """The rotation goes into the camera: the mesh is only scaled and shifted (its
    canonical axes untouched) and renders exactly as ``apply`` under the input camera."""
    v, f, cam, mask = l_scene
    start = _turned(cam, v, [5.0, -6.0, 4.0])
    res = refine_pose(v, f, start, mask, replace(FAST, polish_side=256))
    assert res.rotation_status == "accepted"
    v2, cam2 = res.in_own_frame(v, start)
    d = v2 - res.scale * v
    np.testing.assert_allclose(d, np.broadcast_to(d[0], d.shape), atol=1e-9)  # a pure shift
    np.testing.assert_allclose(cam2.project(v2)[0], start.project(res.apply(v))[0], atol=1e-6)
    assert _angle(cam2.R @ cam.R.T) < 2.5


def test_pose_is_public_and_typed(scene):
    """``polish_hard_iou`` takes a public :class:`Pose`: centre, radius and the
    camera-frame centre follow from the mesh's bounding box and the camera."""
    v, f, cam = scene
    pose = Pose.of(v, cam)
    lo, hi = v.min(0), v.max(0)
    np.testing.assert_allclose(pose.center, 0.5 * (lo + hi))
    assert pose.radius == pytest.approx(0.5 * np.linalg.norm(hi - lo))
    np.testing.assert_allclose(pose.camera_center, cam.R @ pose.center + cam.t)
    # sigma = log 2 doubles the mesh about its centre; a = 1 shifts it by one radius
    np.testing.assert_allclose(pose.object_vertices(np.array([np.log(2.0), 0.0, 0.0])),
                               pose.center + 2.0 * (v - pose.center), atol=1e-12)
    shifted = pose.object_vertices(np.array([0.0, 1.0, 0.0]))
    np.testing.assert_allclose(cam.R @ (shifted - v).mean(0), [pose.radius, 0.0, 0.0],
                               atol=1e-12)
    with pytest.raises(ValueError, match=r"\(V, 3\)"):
        Pose.of(v[:, :2], cam)


def test_polish_moves_each_coordinate_at_most_one_step_per_sweep(scene):
    """The mesh is far to the side of its mask (a = 0.5 radii): every sweep
    moves ``a`` by one step, so the sweep cap bounds the distance covered."""
    v, f, cam = scene
    pose = Pose.of(v, cam)
    mask = render_mask(pose.object_vertices(np.array([0.0, 0.5, 0.0])), f, cam)
    p0, steps = np.zeros(3), (0.02, 0.01)
    one = polish_hard_iou(pose, f, cam, mask, p0, steps, max_sweeps=1)
    assert one[1] == pytest.approx(0.03)
    capped = polish_hard_iou(pose, f, cam, mask, p0, steps)
    assert capped[1] == pytest.approx(POLISH_MAX_SWEEPS * sum(steps))

import numpy as np
import pytest
import trimesh
from synth_helpers import car, render, view

from geocorr.data.synth.render import keypoint_visibility, vertex_normals
from geocorr.data.synth.scene import orbit_camera
from geocorr.geometry.raster import rasterize


def test_vertex_normals_of_sphere_point_outward():
    s = trimesh.creation.icosphere(subdivisions=2)
    n = vertex_normals(s.vertices, s.faces)
    radial = s.vertices / np.linalg.norm(s.vertices, axis=1, keepdims=True)
    assert np.min(np.sum(n * radial, axis=1)) > 0.99


def test_render_maps_agree_with_rasterizer():
    shape = car()
    cam = view(shape, 40)
    r = render(shape, cam)
    frags = rasterize(shape.vertices, shape.faces, cam)
    np.testing.assert_array_equal(r.mask, frags.mask)
    assert (r.part[~r.mask] == -1).all() and (r.part[r.mask] >= 0).all()
    np.testing.assert_array_equal(r.part[r.mask], shape.face_part[frags.face_index[r.mask]])
    assert r.image.dtype == np.uint8 and r.image.shape == (cam.height, cam.width, 3)
    # background is the flat grey plus small noise
    assert abs(r.image[~r.mask].astype(float).mean() - 127.5) < 2
    assert np.abs(r.template[r.mask]).max() <= 1.0 + 1e-5


def test_mirror_parts_look_alike():
    """Seen from the front, the left and right headlights' colours agree (symmetric light)."""
    shape = car()
    cam = view(shape, 0.0, elevation=0.0)
    r = render(shape, cam)
    means = []
    for name in ("headlight_left", "headlight_right"):
        sel = r.part == shape.part_names.index(name)
        assert sel.sum() > 3
        means.append(r.image[sel].astype(float).mean(axis=0))
    assert np.abs(means[0] - means[1]).max() < 20


def _raycast_visible(shape, cam, points, tol):
    """Slow reference: first hit along the camera ray to the point is not in front of it."""
    mesh = trimesh.Trimesh(shape.vertices, shape.faces, process=False)
    origins = np.repeat(cam.center[None], len(points), 0)
    d = points - origins
    dist = np.linalg.norm(d, axis=1)
    locs, idx, _ = mesh.ray.intersects_location(origins, d / dist[:, None], multiple_hits=True)
    first = np.full(len(points), np.inf)
    for loc, i in zip(locs, idx, strict=True):
        first[i] = min(first[i], np.linalg.norm(loc - origins[i]))
    return first >= dist - tol


def test_visibility_agrees_with_raycast():
    shape = car()
    diag = float(np.linalg.norm(np.ptp(shape.vertices, axis=0)))
    agree, total, n_vis = 0, 0, 0
    for az in range(0, 360, 45):
        cam = view(shape, az, size=200)
        r = render(shape, cam)
        pts = shape.keypoints
        uv, z, vis = keypoint_visibility(pts, cam, r.depth, 0.02 * diag)
        ref = _raycast_visible(shape, cam, pts, 0.02 * diag * 1.5)
        agree += int((vis == ref).sum())
        total += len(vis)
        n_vis += int(vis.sum())
        # the z-buffer at each in-image keypoint's pixel decides: nothing in front <=> visible
        inside = ((uv[:, 0] >= -0.5) & (uv[:, 0] < cam.width - 0.5) & (uv[:, 1] >= -0.5)
                  & (uv[:, 1] < cam.height - 0.5))
        cols, rows = np.rint(uv[inside]).astype(int).T
        in_front = r.depth[rows, cols] < z[inside] - 0.02 * diag
        np.testing.assert_array_equal(vis[inside], ~in_front)
        assert not vis[~inside].any()
    assert 0.2 * total < n_vis < 0.8 * total
    assert agree / total > 0.93


def test_visibility_hand_cases():
    sphere = trimesh.creation.icosphere(subdivisions=3)
    K = np.array([[60, 0, 31.5], [0, 60, 31.5], [0, 0, 1.0]])
    cam = orbit_camera(np.zeros(3), 0, 0, 5.0, K, 64, 64)
    depth = rasterize(sphere.vertices, sphere.faces, cam).depth
    pts = np.array([[1.0, 0, 0], [-1.0, 0, 0], [0, 1.0, 0], [0.0, 0, 40.0]])
    uv, z, vis = keypoint_visibility(pts, cam, depth, 0.05)
    # near pole visible at the image centre; far pole hidden; the limb point is visible
    # (its nearest pixel is background or the limb); a point far above is outside the image
    np.testing.assert_allclose(uv[0], [31.5, 31.5], atol=1e-9)
    assert vis.tolist() == [True, False, True, False]
    with pytest.raises(ValueError, match="depth"):
        keypoint_visibility(pts, cam, depth[:10], 0.05)


def test_surface_template_uses_face_corners():
    from geocorr.data.synth.render import surface_template
    from geocorr.geometry.raster import interpolate

    shape = car()
    assert shape.face_template is not None
    cam = view(shape, 130, size=96)
    frags = rasterize(shape.vertices, shape.faces, cam)
    fast = surface_template(frags, shape)
    rows, cols = np.nonzero(frags.mask)
    for i, j in zip(rows[::37], cols[::37], strict=True):  # slow reference, pixel by pixel
        f = frags.face_index[i, j]
        want = sum(frags.bary[i, j, k] * shape.face_template[f, k] for k in range(3))
        np.testing.assert_allclose(fast[i, j], want, atol=1e-5)
    # away from seams it equals the per-vertex interpolation
    seam = (shape.vertex_part[shape.faces] != shape.face_part[:, None]).any(1)
    plain = frags.mask & ~seam[np.maximum(frags.face_index, 0)]
    by_vertex = interpolate(frags, shape.faces, shape.vertex_template)
    np.testing.assert_allclose(fast[plain], by_vertex[plain], atol=1e-4)
    assert (fast[~frags.mask] == 0).all()


def test_occluder_hides_pixels_and_keypoints():
    from geocorr.data.synth.render import occlude
    from geocorr.data.synth.scene import sample_occluder
    from geocorr.data.synth.writer import mask_bndbox

    shape = car()
    cam = view(shape, 90, size=128)
    r = render(shape, cam)
    box = mask_bndbox(r.mask)
    occ = sample_occluder(cam.height, cam.width, box, np.random.default_rng(1), (0.3, 0.3))
    area = (box[2] - box[0]) * (box[3] - box[1])
    assert 0.15 * area < occ.sum() < 0.45 * area
    tex = np.full((cam.height, cam.width, 3), 7, np.uint8)
    o = occlude(r, occ, tex)
    assert (o.image[occ] == 7).all() and not o.mask[occ].any() and (o.part[occ] == -1).all()
    np.testing.assert_array_equal(o.image[~occ], r.image[~occ])
    diag = float(np.linalg.norm(np.ptp(shape.vertices, axis=0)))
    uv, _, vis = keypoint_visibility(shape.keypoints, cam, o.depth, 0.02 * diag)
    _, _, vis0 = keypoint_visibility(shape.keypoints, cam, r.depth, 0.02 * diag)
    cols, rows = np.rint(uv[vis0]).astype(int).T
    under = occ[rows, cols]
    assert not vis[vis0][under].any() and vis[vis0][~under].all()

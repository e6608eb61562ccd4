import numpy as np
import pytest
from synth_helpers import car, groundtruth, part_pixels, view

from geocorr.data.synth.groundtruth import (
    SWAP_LEFT_RIGHT,
    SWAP_NONE,
    SWAP_REPEATED,
    check_correspondences,
    mirror_parts,
)
from geocorr.geometry.raster import rasterize


@pytest.fixture(scope="module")
def views():
    shape = car(0)
    return {az: groundtruth(shape, view(shape, az)) for az in (0, 60, 90, 270)}


def test_mirror_parts():
    names = ("body", "wheel_front_left", "wheel_front_right", "wheel_rear_left", "ear_l",
             "ear_r", "leftover")
    assert mirror_parts(names).tolist() == [-1, 2, 1, -1, 5, 4, -1]


def test_pixel_matched_to_itself_is_correct(views):
    gt = views[60]
    rows, cols = np.nonzero(gt.part_map >= 0)
    uv = np.stack([cols, rows], 1).astype(float)
    res = check_correspondences(gt, gt, uv, uv)
    assert res.correct.all() and res.possible.all() and (res.swap == SWAP_NONE).all()
    np.testing.assert_array_equal(res.template_dist, 0.0)
    # background pixels are never correct
    rows, cols = np.nonzero(gt.part_map < 0)
    bg = np.stack([cols, rows], 1).astype(float)[:50]
    res = check_correspondences(gt, gt, bg, bg)
    assert not res.correct.any() and not res.src_on_object.any()


def test_left_wheel_to_right_wheel_is_a_left_right_swap(views):
    left_view, right_view = views[90], views[270]  # camera on the car's left / right side
    src = part_pixels(left_view, "wheel_front_left")
    trg_right = part_pixels(right_view, "wheel_front_right")
    trg_rear = part_pixels(right_view, "wheel_rear_right")
    n = min(len(src), len(trg_right), len(trg_rear), 40)
    assert n >= 20
    res = check_correspondences(left_view, right_view, src[:n], trg_right[:n])
    assert not res.correct.any() and not res.same_part.any()
    assert (res.swap == SWAP_LEFT_RIGHT).all()
    assert np.isinf(res.template_dist).all()
    res = check_correspondences(left_view, right_view, src[:n], trg_rear[:n])
    assert (res.swap == SWAP_REPEATED).all() and not res.correct.any()
    # the front-left wheel is hidden from the right side: no correct match is possible
    assert not res.possible.any()


def test_same_point_across_views_is_correct(views):
    """Project front-left-wheel vertices into two views of the same car: correct matches."""
    a, b = views[60], views[90]
    p = a.part_names.index("wheel_front_left")
    verts = a.vertices[a.vertex_part == p]
    uv_a, z_a = a.camera.project(verts)
    uv_b, z_b = b.camera.project(verts)
    ca = np.rint(uv_a).astype(int)
    cb = np.rint(uv_b).astype(int)
    tol = 0.005 * np.linalg.norm(np.ptp(a.vertices, axis=0))  # the vertex is what the pixel shows
    depth_a = rasterize(a.vertices, a.faces, a.camera).depth[ca[:, 1], ca[:, 0]]
    depth_b = rasterize(b.vertices, b.faces, b.camera).depth[cb[:, 1], cb[:, 0]]
    on = ((a.part_map[ca[:, 1], ca[:, 0]] == p) & (b.part_map[cb[:, 1], cb[:, 0]] == p)
          & (np.abs(depth_a - z_a) < tol) & (np.abs(depth_b - z_b) < tol))
    assert on.sum() > 10
    res = check_correspondences(a, b, uv_a[on], uv_b[on])
    assert res.correct.mean() > 0.9 and res.possible.mean() > 0.9
    assert np.median(res.template_dist) < 0.2  # ~one pixel of a small wheel


def test_check_is_symmetric(views):
    a, b = views[0], views[60]
    rng = np.random.default_rng(0)
    on_a = np.stack(np.nonzero(a.part_map >= 0)[::-1], 1).astype(float)
    on_b = np.stack(np.nonzero(b.part_map >= 0)[::-1], 1).astype(float)
    uv_a = np.concatenate([on_a[rng.integers(len(on_a), size=2000)], [[0.0, 0.0]]])
    uv_b = np.concatenate([on_b[rng.integers(len(on_b), size=2000)], [[5.0, 3.0]]])
    ab = check_correspondences(a, b, uv_a, uv_b)
    ba = check_correspondences(b, a, uv_b, uv_a)
    np.testing.assert_array_equal(ab.correct, ba.correct)
    np.testing.assert_array_equal(ab.same_part, ba.same_part)
    np.testing.assert_array_equal(ab.swap, ba.swap)
    np.testing.assert_allclose(ab.template_dist, ba.template_dist)
    assert ab.same_part.any() and ab.correct.any() and (ab.swap == SWAP_REPEATED).any()


def test_bad_input(views):
    a = views[0]
    with pytest.raises(ValueError, match="uv_src"):
        check_correspondences(a, a, np.zeros((3, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="threshold"):
        check_correspondences(a, a, np.zeros((3, 2)), np.zeros((3, 2)), threshold=0)

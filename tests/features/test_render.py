"""Rendering per-vertex descriptors: exact values at vertex pixels, NN fill = mask, grid pooling."""

import numpy as np
import pytest

from geocorr.features.base import FeatureMap
from geocorr.features.render import (
    fill_fragments,
    render_descriptor_image,
    render_descriptors,
)
from geocorr.geometry.camera import Camera
from geocorr.geometry.image_transform import resize_and_pad
from geocorr.geometry.raster import rasterize

F_PX, Z = 100.0, 2.0


def _camera(W=60, H=40):
    K = np.array([[F_PX, 0, W / 2], [0, F_PX, H / 2], [0, 0, 1.0]])
    return Camera(K, np.eye(3), np.zeros(3), W, H)


def _plane(cam, us, vs):
    """A planar grid at depth Z whose vertices project exactly onto pixel centres (us, vs)."""
    uu, vv = np.meshgrid(np.asarray(us, float), np.asarray(vs, float))
    X = (uu - cam.cx) * Z / F_PX
    Y = (vv - cam.cy) * Z / F_PX
    verts = np.stack([X, Y, np.full_like(X, Z)], -1).reshape(-1, 3)
    nu = len(us)
    faces = []
    for i in range(len(vs) - 1):
        for j in range(nu - 1):
            a, b, c, d = i * nu + j, i * nu + j + 1, (i + 1) * nu + j, (i + 1) * nu + j + 1
            faces += [[a, b, d], [a, d, c]]
    return verts, np.array(faces), uu.reshape(-1).astype(int), vv.reshape(-1).astype(int)


def test_values_at_vertex_pixels_equal_vertex_descriptors():
    cam = _camera()
    v, f, pu, pv = _plane(cam, range(10, 51, 5), range(8, 33, 6))
    desc = np.random.default_rng(0).normal(size=(len(v), 5)).astype(np.float32)
    img = render_descriptor_image(v, f, desc, cam, np.ones((40, 60), bool))
    assert img.shape == (40, 60, 5)
    # Pixels exactly on the mesh's outer border may be owned by no face (the rasterizer's
    # edge rule); they are filled from a neighbour. Every covered vertex pixel is exact, and
    # every interior vertex pixel is covered.
    covered = rasterize(v, f, cam).mask[pv, pu]
    interior = (pu > 10) & (pu < 50) & (pv > 8) & (pv < 32)
    assert covered[interior].all()
    np.testing.assert_allclose(img[pv, pu][covered], desc[covered], atol=1e-5)


def test_nn_fill_covers_exactly_the_mask():
    cam = _camera()
    v, f, _, _ = _plane(cam, range(20, 41, 5), range(10, 31, 5))
    desc = 1.0 + np.random.default_rng(1).random((len(v), 3)).astype(np.float32)
    rr, cc = np.mgrid[:40, :60]
    mask = (rr - 20) ** 2 + (cc - 36) ** 2 <= 13 ** 2  # sticks out of the mesh to the right
    img = render_descriptor_image(v, f, desc, cam, mask)
    nonzero = np.all(img > 0, axis=-1)
    np.testing.assert_array_equal(nonzero, mask)
    assert np.all(img[~mask] == 0)
    # A filled pixel copies its nearest rendered pixel (brute force).
    frags = rasterize(v, f, cam)
    filled = fill_fragments(frags, mask)
    rendered = filled.rendered
    assert rendered.sum() < mask.sum()
    r0, c0 = 20, 48  # inside the mask, right of the mesh (mesh spans columns 20..40)
    assert mask[r0, c0] and not rendered[r0, c0]
    rr_r, cc_r = np.nonzero(rendered)
    d2 = (rr_r - r0) ** 2 + (cc_r - c0) ** 2
    best = d2 == d2.min()
    assert any(np.allclose(img[r0, c0], img[a, b]) for a, b in zip(rr_r[best], cc_r[best],
                                                                   strict=True))


def test_nothing_rendered_inside_the_mask_gives_zeros():
    cam = _camera()
    v, f, _, _ = _plane(cam, range(5, 16, 5), range(5, 16, 5))
    mask = np.zeros((40, 60), bool)
    mask[30:, 50:] = True
    img = render_descriptor_image(v, f, np.ones((len(v), 2)), cam, mask)
    assert not img.any()


def _reference_pool(img, mask, like):
    """Slow: per cell, mean of the descriptors of mask pixels whose canvas centre is in it."""
    h, w = like.grid_size
    tr = like.transform
    out = np.zeros((img.shape[2], h, w))
    acc = {}
    for r in range(img.shape[0]):
        for c in range(img.shape[1]):
            if not mask[r, c]:
                continue
            u, v = c * tr.scale + tr.left, r * tr.scale + tr.top
            j, i = int(np.floor((u + 0.5) * w / tr.size)), int(np.floor((v + 0.5) * h / tr.size))
            acc.setdefault((i, j), []).append(img[r, c])
    for (i, j), vals in acc.items():
        out[:, i, j] = np.mean(vals, axis=0)
    return out


def test_grid_pooling_matches_slow_reference():
    cam = _camera()
    v, f, _, _ = _plane(cam, range(12, 49, 4), range(6, 35, 4))
    desc = np.random.default_rng(2).normal(size=(len(v), 4))
    rr, cc = np.mgrid[:40, :60]
    mask = (rr - 20) ** 2 / 15 ** 2 + (cc - 30) ** 2 / 25 ** 2 <= 1
    like = FeatureMap(np.zeros((7, 12, 12), np.float32), resize_and_pad(60, 40, 48))
    fm = render_descriptors(v, f, desc, cam, mask, like, name="geometric")
    assert fm.features.shape == (4, 12, 12) and fm.name == "geometric"
    assert fm.transform is like.transform
    img = render_descriptor_image(v, f, desc, cam, mask)
    np.testing.assert_allclose(fm.features, _reference_pool(img, mask, like), atol=1e-5)
    assert not fm.features[:, 0, :].any()  # padding rows of the canvas stay zero


def test_cells_smaller_than_pixels_take_the_nearest_pixel():
    cam = _camera()
    v, f, _, _ = _plane(cam, range(12, 49, 4), range(6, 35, 4))
    desc = 1.0 + np.random.default_rng(3).random((len(v), 2))
    mask = np.zeros((40, 60), bool)
    mask[10:30, 15:45] = True
    like = FeatureMap(np.zeros((1, 60, 60), np.float32), resize_and_pad(60, 40, 240))
    fm = render_descriptors(v, f, desc, cam, mask, like)
    img = render_descriptor_image(v, f, desc, cam, mask)
    centres = like.cell_centers().reshape(-1, 2)
    pc, pr = np.rint(centres[:, 0]).astype(int), np.rint(centres[:, 1]).astype(int)
    ok = (pc >= 0) & (pc < 60) & (pr >= 0) & (pr < 40)
    got = fm.features.reshape(2, -1).T
    inside = ok.copy()
    inside[ok] = mask[pr[ok], pc[ok]]
    assert np.all(np.all(got[inside] > 0, axis=1))
    # Cells of 4x4 canvas px = 1 original px: each holds at most one pixel centre or none.
    np.testing.assert_allclose(got[inside], img[pr[inside], pc[inside]], atol=1e-5)


def test_shape_errors():
    cam = _camera()
    v, f, _, _ = _plane(cam, range(10, 21, 5), range(10, 21, 5))
    like = FeatureMap(np.zeros((1, 4, 4), np.float32), resize_and_pad(60, 40, 16))
    with pytest.raises(ValueError, match="mask"):
        render_descriptors(v, f, np.ones((len(v), 1)), cam, np.ones((10, 10), bool), like)
    bad = FeatureMap(np.zeros((1, 4, 4), np.float32), resize_and_pad(30, 40, 16))
    with pytest.raises(ValueError, match="30x40"):
        render_descriptors(v, f, np.ones((len(v), 1)), cam, np.ones((40, 60), bool), bad)
    with pytest.raises(ValueError, match="vertex_desc"):
        render_descriptors(v, f, np.ones((2, 1)), cam, np.ones((40, 60), bool), like)

import numpy as np
import pytest
import trimesh

from geocorr.geometry.camera import Camera, look_at
from geocorr.geometry.raster import Fragments, interpolate, rasterize


def _cam(f=100.0, size=128, c=None, eye=(0.0, -4.0, 0.0), target=(0.0, 0.0, 0.0)):
    c = (size - 1) / 2 if c is None else c
    R, t = look_at(eye, target)
    K = np.array([[f, 0, c], [0, f, c], [0, 0, 1.0]])
    return Camera(K, R, t, size, size)


def _axis_cam(f, W, H, cx, cy):
    """Camera frame == object frame (R = I, t = 0)."""
    K = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]])
    return Camera(K, np.eye(3), np.zeros(3), W, H)


def _quad(x0, x1, y0, y1, z):
    v = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], dtype=np.float64)
    f = np.array([[0, 1, 2], [0, 2, 3]])
    return v, f


def test_cube_face_ids_depth_and_exact_area():
    cube = trimesh.creation.box(extents=(2.0, 2.0, 2.0))
    cam = _cam(f=100.0, size=128, c=64.0)
    fr = rasterize(cube.vertices, cube.faces, cam)
    assert isinstance(fr, Fragments)
    assert fr.face_index.dtype == np.int64 and fr.bary.dtype == np.float32
    assert fr.depth.dtype == np.float32 and fr.mask.dtype == bool
    # Camera on -Y at distance 4: the visible face is the y = -1 plane at depth 3.
    f = fr.face_index[64, 64]
    np.testing.assert_allclose(cube.face_normals[f], [0.0, -1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(fr.depth[64, 64], 3.0, rtol=1e-6)
    np.testing.assert_allclose(fr.depth[fr.mask], 3.0, rtol=1e-6)
    assert np.all(np.isinf(fr.depth[~fr.mask]))
    assert np.all(fr.bary[~fr.mask] == 0)
    np.testing.assert_allclose(fr.bary[fr.mask].sum(-1), 1.0, atol=1e-5)
    # Face spans u in 64 +- 100/3 -> columns (rows) 31..97: 67 x 67 pixels exactly.
    assert fr.mask.sum() == 67 * 67
    rows, cols = np.nonzero(fr.mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (31, 97, 31, 97)


def test_sphere_silhouette_area_matches_perspective_formula():
    r, z, f = 1.0, 4.0, 200.0
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=r)
    cam = _cam(f=f, size=256, eye=(0.0, -z, 0.0))
    fr = rasterize(sphere.vertices, sphere.faces, cam)
    expected = np.pi * r**2 * f**2 / (z**2 - r**2)
    assert abs(fr.mask.sum() / expected - 1) < 0.01
    # Nearest surface: depth is at least z - r everywhere, about z - r at the centre.
    assert fr.depth[fr.mask].min() >= z - r - 1e-4
    assert abs(fr.depth[127:129, 127:129].mean() - (z - r)) < 0.01


@pytest.mark.parametrize("near_first", [True, False])
@pytest.mark.parametrize("engine", ["numba", "reference"])
def test_nearest_quad_wins(near_first, engine):
    vn, fn = _quad(-0.5, 0.5, -0.5, 0.5, 2.0)  # near, small
    vf, ff = _quad(-1.0, 1.0, -1.0, 1.0, 3.0)  # far, large
    if near_first:
        v, f, near_ids = np.vstack([vn, vf]), np.vstack([fn, ff + 4]), {0, 1}
    else:
        v, f, near_ids = np.vstack([vf, vn]), np.vstack([ff, fn + 4]), {2, 3}
    cam = _axis_cam(40.0, 64, 64, 31.5, 31.5)
    fr = rasterize(v, f, cam, engine=engine)
    # Near quad projects to 31.5 +- 10 -> pixels 22..41; the far one to 31.5 +- 13.3.
    inner = np.zeros((64, 64), bool)
    inner[22:42, 22:42] = True
    assert set(np.unique(fr.face_index[inner])) == near_ids
    np.testing.assert_allclose(fr.depth[inner], 2.0, rtol=1e-6)
    outer = fr.mask & ~inner
    assert outer.sum() > 0 and not (set(np.unique(fr.face_index[outer])) & near_ids)
    np.testing.assert_allclose(fr.depth[outer], 3.0, rtol=1e-6)


def _random_soup(rng, n):
    centres = rng.uniform([-1, -1, 2.5], [1, 1, 4.0], size=(n, 1, 3))
    v = (centres + rng.normal(scale=0.35, size=(n, 3, 3))).reshape(-1, 3)
    return v, np.arange(3 * n).reshape(n, 3)


@pytest.mark.parametrize("seed", [0, 1])
def test_fast_matches_reference_on_random_meshes(seed):
    rng = np.random.default_rng(seed)
    v, f = _random_soup(rng, 120)
    sph = trimesh.creation.icosphere(subdivisions=2, radius=0.7)
    sv = sph.vertices * rng.uniform(0.8, 1.2, size=(len(sph.vertices), 1)) + [0.2, -0.1, 3.0]
    v = np.vstack([v, sv])
    f = np.vstack([f, sph.faces + len(v) - len(sv)])
    cam = _axis_cam(55.0, 64, 48, 30.0, 22.0)
    a = rasterize(v, f, cam, engine="numba")
    b = rasterize(v, f, cam, engine="reference")
    same = a.face_index == b.face_index
    assert same.mean() >= 0.999
    assert a.mask.sum() > 0.25 * a.mask.size
    np.testing.assert_allclose(a.bary[same], b.bary[same], atol=1e-5)
    np.testing.assert_allclose(a.depth[same & a.mask], b.depth[same & a.mask], rtol=1e-6)


def test_shared_edges_cover_each_sample_exactly_once():
    # A 6x6-cell planar grid whose vertices (and so every edge) sit on pixel
    # centres, plus diagonals through pixel centres: the worst case for ties.
    cam = _axis_cam(10.0, 20, 20, 0.0, 0.0)
    n = 6
    g = np.arange(n + 1) * 3.0 + 1.0  # pixel coords 1, 4, ..., 19
    uu, vv = np.meshgrid(g, g)
    uv = np.stack([uu.ravel(), vv.ravel()], axis=1)
    v = cam.backproject(uv, np.full(len(uv), 2.0))
    faces = []
    for i in range(n):
        for j in range(n):
            a, b, c, d = i * (n + 1) + j, i * (n + 1) + j + 1, (i + 1) * (n + 1) + j + 1, (
                i + 1) * (n + 1) + j
            # Alternate diagonals and windings.
            if (i + j) % 2:
                faces += [[a, b, c], [a, d, c]]
            else:
                faces += [[b, a, d], [b, c, d]]
    faces = np.array(faces)
    count = np.zeros((20, 20), int)
    for f in faces:
        count += rasterize(v, f[None], cam).mask
    # Interior samples (including those on shared edges) once; outer-border
    # samples at most once (the owner rule keeps one side of the border).
    assert count.max() == 1
    assert count[2:19, 2:19].min() == 1
    full = rasterize(v, faces, cam)
    assert full.mask[2:19, 2:19].all()


def test_interpolate_xyz_is_backprojection_perspective_correct():
    # A strongly tilted quad: affine (screen-space) interpolation would be far off.
    v = np.array([[-1.0, -1.0, 1.5], [1.0, -1.0, 1.5], [1.0, 1.0, 6.0], [-1.0, 1.0, 6.0]])
    f = np.array([[0, 1, 2], [0, 2, 3]])
    R, t = look_at([0.3, -0.2, -2.0], [0.0, 0.0, 3.0], up=(0.0, -1.0, 0.0))
    cam = Camera(np.array([[60.0, 0, 32], [0, 60.0, 32], [0, 0, 1]]), R, t, 64, 64)
    fr = rasterize(v, f, cam)
    xyz = interpolate(fr, f, v)
    assert xyz.shape == (64, 64, 3) and xyz.dtype == np.float32
    m = fr.mask
    assert m.sum() > 500
    i, j = np.nonzero(m)
    back = cam.backproject(np.stack([j, i], 1).astype(float), fr.depth[m].astype(float))
    np.testing.assert_allclose(xyz[m], back, atol=2e-5 * 6)
    # The points lie on the quad's plane (y - (-1)) / 2 = (z - 1.5) / 4.5.
    p = xyz[m].astype(np.float64)
    np.testing.assert_allclose((p[:, 1] + 1) / 2, (p[:, 2] - 1.5) / 4.5, atol=1e-4)
    assert np.all(xyz[~m] == 0)


def test_interpolate_vertex_values_at_vertex_pixels():
    cam = _axis_cam(50.0, 40, 40, 19.0, 19.0)
    # A fan around an interior vertex 0, all vertices on pixel centres.
    uv = np.array([[18.0, 17.0], [5.0, 5.0], [33.0, 8.0], [30.0, 34.0], [8.0, 30.0]])
    depth = np.array([2.2, 2.0, 3.0, 4.0, 2.5])
    v = cam.backproject(uv, depth)
    f = np.array([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1]])
    fr = rasterize(v, f, cam)
    attr = np.random.default_rng(0).normal(size=(5, 512))
    img = interpolate(fr, f, attr)
    assert img.shape == (40, 40, 512) and img.dtype == np.float32
    for k, (u, vv) in enumerate(uv.astype(int)):
        if fr.mask[vv, u]:
            np.testing.assert_allclose(img[vv, u], attr[k], atol=1e-5)
            np.testing.assert_allclose(fr.depth[vv, u], depth[k], rtol=1e-6)
    assert fr.mask[17, 18]  # the interior vertex is always covered
    # 1-D attributes are treated as D = 1.
    assert interpolate(fr, f, depth).shape == (40, 40, 1)


def test_cull_backfaces():
    sphere = trimesh.creation.icosphere(subdivisions=3)
    cam = _cam(f=60.0, size=64)
    both = rasterize(sphere.vertices, sphere.faces, cam)
    culled = rasterize(sphere.vertices, sphere.faces, cam, cull_backfaces=True)
    np.testing.assert_array_equal(both.face_index, culled.face_index)
    # Reversed winding: only the inside of the far hemisphere survives culling.
    inside = rasterize(sphere.vertices, sphere.faces[:, ::-1], cam, cull_backfaces=True)
    assert inside.mask.sum() > 0.9 * both.mask.sum()
    # Points beyond the tangent circle have depth > z - r^2 / z = 3.75.
    assert np.all(inside.depth[inside.mask] > 3.75 - 1e-4)


@pytest.mark.parametrize("engine", ["numba", "reference"])
def test_empty_results(engine):
    cam = _axis_cam(30.0, 16, 12, 8.0, 6.0)
    empty = rasterize(np.zeros((0, 3)), np.zeros((0, 3), int), cam, engine=engine)
    assert empty.face_index.shape == (12, 16) and not empty.mask.any()
    assert np.all(np.isinf(empty.depth))
    assert interpolate(empty, np.zeros((0, 3), int), np.zeros((0, 4))).shape == (12, 16, 4)
    # Zero-area faces: collinear and repeated vertices.
    v = np.array([[0.0, 0, 2], [0.5, 0.5, 2], [1.0, 1.0, 2], [0.2, 0.1, 2]])
    assert not rasterize(v, np.array([[0, 1, 2], [3, 3, 1]]), cam, engine=engine).mask.any()
    # Behind the camera, and straddling the near plane (dropped whole).
    vq, fq = _quad(-1, 1, -1, 1, -2.0)
    assert not rasterize(vq, fq, cam, engine=engine).mask.any()
    vs = np.array([[-1.0, -1.0, 2.0], [1.0, -1.0, 2.0], [0.0, 1.0, -0.5]])
    assert not rasterize(vs, np.array([[0, 1, 2]]), cam, engine=engine).mask.any()


def test_invalid_input_raises():
    cam = _axis_cam(30.0, 16, 12, 8.0, 6.0)
    v, f = _quad(-1, 1, -1, 1, 2.0)
    with pytest.raises(ValueError, match="vertices"):
        rasterize(v[:, :2], f, cam)
    with pytest.raises(ValueError, match="faces"):
        rasterize(v, np.array([[0, 1, 2, 3]]), cam)
    with pytest.raises(ValueError, match="outside"):
        rasterize(v, np.array([[0, 1, 4]]), cam)
    with pytest.raises(ValueError, match="integer"):
        rasterize(v, f.astype(float), cam)
    with pytest.raises(ValueError, match="NaN"):
        rasterize(np.where(v == 1, np.nan, v), f, cam)
    with pytest.raises(ValueError, match="engine"):
        rasterize(v, f, cam, engine="opengl")
    with pytest.raises(ValueError, match="near"):
        rasterize(v, f, cam, near=0.0)
    fr = rasterize(v, f, cam)
    with pytest.raises(ValueError, match="attributes"):
        interpolate(fr, f, np.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match="attributes"):
        interpolate(fr, f, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="fragments reference face"):
        interpolate(fr, f[:1], np.zeros((4, 2)))

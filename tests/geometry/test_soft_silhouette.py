import numpy as np
import pytest
import torch
import trimesh
from scipy import ndimage

from geocorr.geometry.camera import Camera, look_at
from geocorr.geometry.raster import rasterize
from geocorr.geometry.soft_silhouette import (
    SoftRasterSettings,
    soft_silhouette,
    soft_silhouette_dense,
)

ENGINES = pytest.mark.parametrize("engine", ["torch", "numba"])


def _axis_cam(f, W, H, cx, cy):
    """Camera frame == object frame: object +x is image right."""
    K = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]])
    return Camera(K, np.eye(3), np.zeros(3), W, H)


def _sphere(subdivisions, dtype=torch.float64, centre=(0.0, 0.0, 4.0)):
    s = trimesh.creation.icosphere(subdivisions=subdivisions)
    v = torch.tensor(s.vertices + np.asarray(centre), dtype=dtype)
    return v, torch.tensor(s.faces, dtype=torch.int64)


def _reference_dense(vertices, faces, cam, sigma):
    """Slowest, most literal SoftRas: explicit sigmoid, product over faces, no culling."""
    uv = []
    for p in vertices.detach().numpy():
        pc = cam.R @ p + cam.t
        uv.append([cam.fx * pc[0] / pc[2] + cam.cx, cam.fy * pc[1] / pc[2] + cam.cy])
    uv = np.array(uv)
    H, W = cam.height, cam.width
    S = np.zeros((H, W))
    for i in range(H):
        for j in range(W):
            p = np.array([j, i], float)
            keep = 1.0
            for f in faces.numpy():
                a, b, c = uv[f]
                d2 = min(_seg_d2(p, a, b), _seg_d2(p, b, c), _seg_d2(p, c, a))
                crosses = [_cross(b - a, p - a), _cross(c - b, p - b), _cross(a - c, p - c)]
                inside = all(x > 0 for x in crosses) or all(x < 0 for x in crosses)
                D = 1 / (1 + np.exp(-(1 if inside else -1) * d2 / sigma))
                keep *= 1 - D
            S[i, j] = 1 - keep
    return S


def _cross(e, d):
    return e[0] * d[1] - e[1] * d[0]


def _seg_d2(p, a, b):
    e = b - a
    t = np.clip(np.dot(p - a, e) / np.dot(e, e), 0, 1)
    q = p - a - t * e
    return float(q @ q)


@ENGINES
def test_matches_literal_formula_on_two_triangles(engine):
    cam = _axis_cam(20.0, 14, 12, 6.5, 5.5)
    v = torch.tensor([[-0.8, -0.6, 3.0], [0.9, -0.5, 3.5], [0.1, 0.8, 2.5], [1.2, 0.9, 4.0]],
                     dtype=torch.float64)
    f = torch.tensor([[0, 1, 2], [1, 3, 2]])
    st = SoftRasterSettings(sigma=3.0, eps=1e-9, engine=engine)
    S = soft_silhouette(v, f, cam, st)
    ref = _reference_dense(v, f, cam, 3.0)
    np.testing.assert_allclose(S.numpy(), ref, atol=1e-8)
    np.testing.assert_allclose(soft_silhouette_dense(v, f, cam, st).numpy(), ref, atol=1e-10)


@ENGINES
def test_gradcheck_float64(engine):
    cam = _axis_cam(12.0, 10, 9, 4.3, 4.1)
    v = torch.tensor([[-0.7, -0.5, 3.0], [0.8, -0.4, 3.4], [0.05, 0.7, 2.7], [0.9, 0.8, 3.8]],
                     dtype=torch.float64, requires_grad=True)
    f = torch.tensor([[0, 1, 2], [1, 3, 2]])
    st = SoftRasterSettings(sigma=2.0, eps=1e-9, engine=engine)
    assert torch.autograd.gradcheck(lambda x: soft_silhouette(x, f, cam, st), (v,),
                                    eps=1e-6, atol=1e-6)
    assert torch.autograd.gradcheck(lambda x: soft_silhouette_dense(x, f, cam, st), (v,),
                                    eps=1e-6, atol=1e-6)


@ENGINES
def test_close_to_hard_mask_away_from_edges(engine):
    v, f = _sphere(3)
    cam = _axis_cam(60.0, 64, 64, 31.5, 31.5)
    st = SoftRasterSettings(sigma=2.0, engine=engine)
    S = soft_silhouette(v, f, cam, st).numpy()
    hard = rasterize(v.numpy(), f.numpy(), cam).mask
    far_in = ndimage.distance_transform_edt(hard) > 3
    far_out = ndimage.distance_transform_edt(~hard) > st.margin + 1
    assert far_in.sum() > 300 and far_out.sum() > 1000
    assert np.abs(S[far_in] - 1).max() < 1e-3
    # Beyond the margin each face adds at most eps (box culling is not a disc).
    assert S[far_out].max() < 10 * st.eps
    assert S.min() >= 0 and S.max() <= 1
    # The soft band widens the silhouette by a few pixels (the rim stacks many
    # faces, front and back, each with a soft tail).
    perimeter = (hard ^ ndimage.binary_erosion(hard)).sum()
    assert hard.sum() < S.sum() < hard.sum() + 4 * perimeter


@ENGINES
def test_culled_equals_dense_reference(engine):
    v, f = _sphere(1, centre=(0.1, -0.2, 3.5))
    v = v.clone().requires_grad_(True)
    cam = _axis_cam(14.0, 24, 20, 11.5, 9.5)
    tight = SoftRasterSettings(sigma=2.0, eps=1e-7, engine=engine)
    a = soft_silhouette(v, f, cam, tight)
    b = soft_silhouette_dense(v, f, cam, tight)
    assert torch.allclose(a, b, atol=1e-4)
    w = torch.linspace(0, 1, a.numel(), dtype=a.dtype).reshape(a.shape)
    ga, = torch.autograd.grad((a * w).sum(), v)
    gb, = torch.autograd.grad((b * w).sum(), v)
    assert torch.allclose(ga, gb, atol=1e-4 * gb.abs().max())
    # Default eps: each skipped pair changes S by at most eps * (1 - S).
    d = SoftRasterSettings(sigma=2.0, engine=engine)
    diff = (soft_silhouette(v, f, cam, d) - soft_silhouette_dense(v, f, cam, d)).abs()
    assert diff.max() <= d.eps * f.shape[0]


def test_chunking_does_not_change_the_result():
    v, f = _sphere(2, dtype=torch.float32)
    cam = _axis_cam(30.0, 32, 32, 15.5, 15.5)
    big = soft_silhouette(v, f, cam, SoftRasterSettings(engine="torch"))
    small = soft_silhouette(v, f, cam, SoftRasterSettings(chunk_pairs=997, engine="torch"))
    assert torch.allclose(big, small, atol=1e-6)
    assert big.dtype == torch.float32 and big.shape == (32, 32)


@ENGINES
def test_translation_plus_x_grows_the_right_edge(engine):
    v, f = _sphere(2)
    cam = _axis_cam(30.0, 32, 32, 15.5, 15.5)
    st = SoftRasterSettings(engine=engine)
    right = torch.zeros(32, 32, dtype=torch.float64)
    right[:, 16:] = 1
    tx = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    shift = torch.cat([tx, tx.new_zeros(2)])
    loss = (soft_silhouette(v + shift, f, cam, st) * right).sum()
    loss.backward()
    assert tx.grad.item() > 0
    moved = (soft_silhouette(v + torch.tensor([0.1, 0, 0], dtype=v.dtype), f, cam, st) * right)
    assert moved.sum() > loss.detach()
    # Finite-difference check of that gradient.
    h = 1e-5
    lp = (soft_silhouette(v + torch.tensor([h, 0, 0], dtype=v.dtype), f, cam, st) * right).sum()
    lm = (soft_silhouette(v - torch.tensor([h, 0, 0], dtype=v.dtype), f, cam, st) * right).sum()
    assert abs((lp - lm).item() / (2 * h) - tx.grad.item()) < 1e-4 * abs(tx.grad.item())


@ENGINES
def test_cull_backfaces_matches_on_closed_mesh_interior(engine):
    v, f = _sphere(2)
    cam = _axis_cam(30.0, 32, 32, 15.5, 15.5)
    full = soft_silhouette(v, f, cam, SoftRasterSettings(engine=engine))
    front = soft_silhouette(v, f, cam, SoftRasterSettings(cull_backfaces=True, engine=engine))
    hard = rasterize(v.numpy(), f.numpy(), cam).mask
    inner = ndimage.distance_transform_edt(hard) > 3
    # Without the back faces, interior pixels near front-face edges are less
    # saturated (the known SoftRas dip along edges), but only slightly.
    assert torch.allclose(full[inner], front[inner], atol=2e-2)
    assert (front[inner] > 0.97).all()
    assert (front <= full + 1e-12).all()


@ENGINES
def test_empty_and_behind_camera(engine):
    cam = _axis_cam(10.0, 8, 6, 3.5, 2.5)
    st = SoftRasterSettings(engine=engine)
    v = torch.zeros(0, 3, requires_grad=True)
    S = soft_silhouette(v, torch.zeros(0, 3, dtype=torch.int64), cam, st)
    assert S.shape == (6, 8) and (S == 0).all()
    vb, fb = _sphere(1, centre=(0.0, 0.0, -4.0))
    vb.requires_grad_(True)
    S = soft_silhouette(vb, fb, cam, st)
    assert (S == 0).all()
    S.sum().backward()
    assert (vb.grad == 0).all()
    # Zero-area faces (repeated vertex) contribute nothing.
    v0 = torch.tensor([[0.0, 0, 3], [0.1, 0.1, 3], [0.2, 0.3, 3]])
    assert (soft_silhouette(v0, torch.tensor([[0, 1, 1], [2, 2, 2]]), cam, st) == 0).all()


def test_invalid_input_raises():
    cam = _axis_cam(10.0, 8, 6, 3.5, 2.5)
    v, f = _sphere(0)
    with pytest.raises(ValueError, match="vertices"):
        soft_silhouette(v[:, :2], f, cam)
    with pytest.raises(ValueError, match="vertices"):
        soft_silhouette(v.numpy(), f, cam)
    with pytest.raises(ValueError, match="faces"):
        soft_silhouette(v, f.double(), cam)
    with pytest.raises(ValueError, match="outside"):
        soft_silhouette(v, f + 100, cam)
    with pytest.raises(ValueError, match="camera"):
        soft_silhouette(v, f, "cam")
    with pytest.raises(ValueError, match="sigma"):
        SoftRasterSettings(sigma=0.0)
    with pytest.raises(ValueError, match="eps"):
        SoftRasterSettings(eps=0.7)
    with pytest.raises(ValueError, match="engine"):
        SoftRasterSettings(engine="cuda")


def test_margin_formula():
    st = SoftRasterSettings(sigma=2.0, eps=1e-4)
    assert abs(st.margin - np.sqrt(2.0 * np.log(9999.0))) < 1e-12
    # Beyond the margin a single face contributes at most eps.
    assert 1 / (1 + np.exp(st.margin**2 / st.sigma)) <= st.eps * (1 + 1e-9)


@ENGINES
def test_look_at_camera_and_float32(engine):
    R, t = look_at([0.0, -4.0, 0.0], [0.0, 0.0, 0.0])
    cam = Camera(np.array([[40.0, 0, 15.5], [0, 40.0, 15.5], [0, 0, 1]]), R, t, 32, 32)
    s = trimesh.creation.icosphere(subdivisions=2)
    v = torch.tensor(s.vertices, dtype=torch.float32, requires_grad=True)
    S = soft_silhouette(v, torch.tensor(s.faces), cam, SoftRasterSettings(engine=engine))
    S.sum().backward()
    assert S.dtype == torch.float32 and torch.isfinite(v.grad).all()
    # Growing the sphere grows the silhouette: d(sum S)/d(scale) > 0 = sum(v . grad) > 0.
    assert (v.detach() * v.grad).sum() > 0


def _assembly(dtype=torch.float64):
    """Three overlapping, unmerged components (sphere, long box, capsule): interior faces,
    long thin triangles and different tessellations, like a part-built CAD mesh."""
    parts = [trimesh.creation.icosphere(2, radius=0.5),
             trimesh.creation.box((1.6, 0.3, 0.3)),
             trimesh.creation.capsule(1.2, 0.2, count=[12, 12])]
    parts[2].apply_translation((0.6, 0.3, 0.0))
    v = np.concatenate([p.vertices for p in parts]) + np.array([0.1, -0.1, 4.0])
    off = np.cumsum([0] + [len(p.vertices) for p in parts])
    f = np.concatenate([p.faces + o for p, o in zip(parts, off, strict=False)])
    return torch.tensor(v, dtype=dtype), torch.tensor(f)


def test_numba_engine_matches_torch_engine_on_a_multicomponent_mesh():
    v, f = _assembly()
    v.requires_grad_(True)
    cam = _axis_cam(20.0, 48, 40, 23.0, 19.5)
    st = {e: SoftRasterSettings(sigma=1.0, engine=e) for e in ("torch", "numba")}
    a, b = (soft_silhouette(v, f, cam, st[e]) for e in ("torch", "numba"))
    # The numba engine skips the box pairs beyond the margin (D <= eps each);
    # the torch engine keeps them: at most eps per face.
    assert (a - b).abs().max() <= st["torch"].eps * f.shape[0]
    assert torch.equal(a > 0.5, b > 0.5)
    # Gradients agree once the skipped tails are negligible (tight eps).
    tight = {e: SoftRasterSettings(sigma=1.0, eps=1e-9, engine=e) for e in ("torch", "numba")}
    a, b = (soft_silhouette(v, f, cam, tight[e]) for e in ("torch", "numba"))
    assert torch.allclose(a, b, atol=1e-7)
    w = torch.linspace(-1, 1, a.numel(), dtype=a.dtype).reshape(a.shape)
    ga, = torch.autograd.grad((a * w).sum(), v)
    gb, = torch.autograd.grad((b * w).sum(), v)
    assert torch.allclose(ga, gb, atol=1e-6 * ga.abs().max())
    # "auto" picks numba for CPU tensors
    auto = soft_silhouette(v, f, cam, SoftRasterSettings(sigma=1.0, eps=1e-9))
    assert torch.equal(auto, b)

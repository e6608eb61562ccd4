"""The CPU geometric part descriptor: coordinates, Laplacian, HKS invariances, mirror claim."""

import numpy as np
import pytest
import trimesh

from geocorr.features.geometric import (
    GeometricDescriptor,
    GeometricSettings,
    canonical_coordinates,
    cluster_vertices,
    cotangent_laplacian,
    heat_kernel_signature,
)


def test_canonical_coordinates_of_a_box_keep_signs():
    m = trimesh.creation.box(extents=(4.0, 2.0, 1.0))
    v = np.asarray(m.vertices) + [10.0, -3.0, 2.0]
    c = canonical_coordinates(v)
    np.testing.assert_allclose(np.abs(c), 1.0)
    # +Y (object's left) stays positive: left != right.
    np.testing.assert_array_equal(np.sign(c), np.sign(np.asarray(m.vertices)))
    flat = canonical_coordinates(np.array([[0.0, 0, 1], [1, 0, 1]]))
    np.testing.assert_allclose(flat, [[-1, 0, 0], [1, 0, 0]])


def test_cotangent_laplacian_properties():
    m = trimesh.creation.icosphere(subdivisions=2)
    L, mass = cotangent_laplacian(m.vertices, m.faces)
    Ld = L.toarray()
    np.testing.assert_allclose(Ld, Ld.T, atol=1e-12)
    np.testing.assert_allclose(Ld.sum(1), 0.0, atol=1e-10)
    assert np.linalg.eigvalsh(Ld).min() > -1e-9
    np.testing.assert_allclose(mass.sum(), m.area, rtol=1e-12)


def test_laplacian_kills_linear_functions_on_a_flat_grid():
    # Interior vertices of a planar mesh: the cotangent Laplacian of x is exactly 0.
    g = trimesh.creation.box(extents=(1, 1, 1)).subdivide().subdivide()
    top = np.asarray(g.vertices)
    L, _ = cotangent_laplacian(top, g.faces)
    lx = L @ top[:, 0]
    # On a closed box, only vertices on the two faces x = const-free (top/bottom) interior
    # are flat neighbourhoods; pick those strictly inside the z = +0.5 face.
    inner = (np.abs(top[:, 2] - 0.5) < 1e-9) & (np.abs(top[:, :2]).max(1) < 0.49)
    assert inner.sum() > 0
    np.testing.assert_allclose(lx[inner], 0.0, atol=1e-10)


def test_hks_constant_on_sphere_and_invariant_to_scale_and_rotation():
    m = trimesh.creation.icosphere(subdivisions=3)  # 642 vertices: sparse eigsh path
    times = (0.01, 0.05)
    # 36 = complete spherical-harmonic bands l <= 5 (a cut inside a band is basis-dependent).
    h = heat_kernel_signature(m.vertices, m.faces, times, n_eigen=36)
    assert h.shape == (642, 2)
    assert (np.std(h, 0) / np.mean(h, 0)).max() < 0.01  # symmetry, up to meshing
    R = trimesh.transformations.random_rotation_matrix(np.random.default_rng(1).random(3))[:3, :3]
    h2 = heat_kernel_signature(3.7 * m.vertices @ R.T, m.faces, times, n_eigen=36)
    np.testing.assert_allclose(h2, h, rtol=1e-6)
    # Dense path (small mesh) and heat trace identity: sum_x m(x) h(x,t) = sum_i exp(-l_i t).
    s = trimesh.creation.icosphere(subdivisions=1)
    hs = heat_kernel_signature(s.vertices, s.faces, (0.02,), n_eigen=41)
    _, mass = cotangent_laplacian(s.vertices, s.faces)
    trace = (mass / mass.sum() * hs[:, 0]).sum()
    assert 0.0 < trace <= 41 and np.isfinite(trace)


def test_mirror_parts_share_hks_but_not_coordinates():
    # An asymmetric shape (a box with a bump on its left, +Y, rear corner) and its mirror image
    # in Y: vertex i of the mirror is the "right-side twin" of vertex i. HKS is intrinsic, so it
    # cannot tell them apart; the signed canonical coordinates can.
    body = trimesh.creation.box(extents=(2.0, 1.0, 0.6)).subdivide().subdivide()
    v = np.asarray(body.vertices).copy()
    bump = (v[:, 0] < -0.9) & (v[:, 1] > 0.4)
    v[bump, 2] += 0.3
    f = np.asarray(body.faces)
    mv, mf = v * [1, -1, 1], f[:, ::-1]
    desc = GeometricDescriptor(GeometricSettings(hks_times=(0.01, 0.04), n_eigen=24))
    a, b = desc.describe(v, f), desc.describe(mv, mf)
    assert a.shape == (len(v), desc.dim) == (len(v), 5)
    np.testing.assert_allclose(a[:, 3:], b[:, 3:], atol=1e-4)  # HKS: mirror twins identical
    np.testing.assert_allclose(a[:, 1], -b[:, 1], atol=1e-6)   # Y coordinate: sign flips
    assert np.abs(a[:, 3:]).max() > 0.1  # the bump makes HKS non-trivial


def test_large_meshes_are_clustered_before_the_eigensolve():
    m = trimesh.creation.icosphere(subdivisions=3)  # 642 vertices
    cv, cf, labels = cluster_vertices(m.vertices, m.faces, 150)
    assert len(cv) <= 150 and labels.shape == (len(m.vertices),) and labels.max() == len(cv) - 1
    assert cf.max() < len(cv) and np.all(cf[:, 0] != cf[:, 1])
    s = GeometricSettings(max_eigen_vertices=150, n_eigen=16, hks_times=(0.02,))
    out = GeometricDescriptor(s).describe(m.vertices, m.faces)
    assert out.shape == (len(m.vertices), 4) and np.all(np.isfinite(out))


def test_settings_validation_and_cache_key():
    with pytest.raises(ValueError, match="hks_weight"):
        GeometricSettings(hks_weight=-1)
    with pytest.raises(ValueError, match="at least one"):
        GeometricSettings(coords_weight=0, hks_weight=0)
    a = GeometricDescriptor(GeometricSettings(hks_weight=0.5)).cache_key()
    b = GeometricDescriptor(GeometricSettings(hks_weight=0.7)).cache_key()
    assert a != b
    with pytest.raises(ValueError, match="GeometricDescriptor"):
        GeometricDescriptor().describe(np.zeros((0, 3)), np.zeros((0, 3), int))


def test_hks_sparse_path_is_deterministic():
    # The sparse eigensolver used to start from ARPACK's random vector: two calls could differ
    # in the last digits, enough to break byte-identical caches and the rtol=1e-6 checks above.
    m = trimesh.creation.icosphere(subdivisions=3)
    runs = [heat_kernel_signature(m.vertices, m.faces, (0.01, 0.05), n_eigen=36) for _ in range(4)]
    for h in runs[1:]:
        np.testing.assert_array_equal(h, runs[0])

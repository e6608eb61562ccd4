"""Rodrigues rotations against hand-computed matrices."""

import math

import numpy as np
import pytest
import trimesh

from geocorr.geometry.rotation import rotvec_matrix


def test_quarter_turn_about_z_maps_x_to_y():
    R = rotvec_matrix([0.0, 0.0, math.pi / 2])
    np.testing.assert_allclose(R, [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-15)


def test_zero_vector_is_the_identity_exactly():
    assert np.array_equal(rotvec_matrix(np.zeros(3)), np.eye(3))


@pytest.mark.parametrize("seed", range(4))
def test_matches_axis_angle_of_trimesh(seed):
    rng = np.random.default_rng(seed)
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = rng.uniform(-math.pi, math.pi)
    R = rotvec_matrix(angle * axis)
    expected = trimesh.transformations.rotation_matrix(angle, axis)[:3, :3]
    np.testing.assert_allclose(R, expected, atol=1e-12)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    np.testing.assert_allclose(R @ axis, axis, atol=1e-12)  # the axis stays put

"""Face -> vertex averaging and mesh-array validation of the part-descriptor helpers."""

import numpy as np
import pytest

from geocorr.features.part_descriptor import PartDescriptor, face_to_vertex_features
from geocorr.geometry.mesh_arrays import check_mesh_arrays


def _two_triangles():
    # Triangle 0 has area 0.5, triangle 1 has area 2 (scaled by 2 in both axes).
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [2, 2, 0], [-2, 0, 0]], float)
    f = np.array([[0, 1, 2], [0, 3, 4]])
    return v, f


def test_area_weighted_average_by_hand():
    v, f = _two_triangles()
    a0 = 0.5
    a1 = 0.5 * abs(np.cross(v[3] - v[0], v[4] - v[0])[2])
    x = np.array([[1.0, 0.0], [0.0, 3.0]])
    out = face_to_vertex_features(v, f, x)
    assert out.dtype == np.float32 and out.shape == (5, 2)
    # Vertex 0 is shared: weights a0 and a1.
    np.testing.assert_allclose(out[0], (a0 * x[0] + a1 * x[1]) / (a0 + a1), rtol=1e-6)
    np.testing.assert_allclose(out[1], x[0])
    np.testing.assert_allclose(out[3], x[1])


def test_unreferenced_vertex_gets_zero_and_degenerate_faces_use_mean():
    v = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [5, 5, 5]], float)  # collinear face
    f = np.array([[0, 1, 2]])
    out = face_to_vertex_features(v, f, np.array([[4.0]]))
    np.testing.assert_allclose(out[:3, 0], 4.0)
    assert out[3, 0] == 0.0


def test_constant_face_field_stays_constant():
    import trimesh

    m = trimesh.creation.icosphere(subdivisions=2)
    x = np.tile(np.array([[0.3, -2.0, 7.0]]), (len(m.faces), 1))
    out = face_to_vertex_features(m.vertices, m.faces, x)
    np.testing.assert_allclose(out, np.tile(x[:1], (len(m.vertices), 1)), rtol=1e-6)


def test_errors_name_the_problem():
    v, f = _two_triangles()
    with pytest.raises(ValueError, match="face_features"):
        face_to_vertex_features(v, f, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="outside"):
        check_mesh_arrays(v, np.array([[0, 1, 9]]))
    with pytest.raises(ValueError, match="NaN"):
        check_mesh_arrays(np.full((3, 3), np.nan), np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match=r"\(V, 3\)"):
        check_mesh_arrays(np.zeros((3, 2)), np.array([[0, 1, 2]]))


def test_protocol_is_runtime_checkable():
    from geocorr.features.geometric import GeometricDescriptor

    assert isinstance(GeometricDescriptor(), PartDescriptor)

"""One validator of raw mesh arrays for the rasterizer and the part descriptors."""

import numpy as np
import pytest

from geocorr.geometry.mesh_arrays import check_mesh_arrays

V = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
F = np.array([[0, 1, 2]], dtype=np.int32)


def test_converts_without_copying_what_is_already_right():
    v, f = check_mesh_arrays(V, F)
    assert v is V and v.dtype == np.float64
    assert f.dtype == np.int64 and f.tolist() == [[0, 1, 2]]
    v2, f2 = check_mesh_arrays(V, np.zeros(0))
    assert f2.shape == (0, 3) and f2.dtype == np.int64


@pytest.mark.parametrize("vertices, faces, message", [
    (V[:, :2], F, r"here: vertices must have shape \(V, 3\)"),
    (np.where(V == 1, np.nan, V), F, "here: vertices contain NaN"),
    (V, np.array([[0, 1, 2, 0]]), r"here: faces must have shape \(F, 3\)"),
    (V, F.astype(float), "here: faces must be integer"),
    (V, np.array([[0, 1, 3]]), r"here: faces index vertices outside \[0, 3\): min 0, max 3"),
])
def test_errors_name_the_caller_and_the_problem(vertices, faces, message):
    with pytest.raises(ValueError, match=message):
        check_mesh_arrays(vertices, faces, where="here")

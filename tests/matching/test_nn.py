"""Blocked exact cosine NN equals a brute-force full-matrix argmax, both directions."""

import numpy as np
import pytest

from geocorr.matching.nn import (
    block_rows_for,
    mutual_nearest,
    nearest_neighbors,
    normalize_rows,
)


def _brute(a, b):
    an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-8)
    bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-8)
    s = an @ bn.T
    return s.argmax(1), s.max(1), s.argmax(0), s.max(0)


@pytest.mark.parametrize("block_bytes", [4 * 7, 4 * 50 * 3, 2**26])  # 1 row, 3 rows, one block
def test_blocked_equals_brute_force(block_bytes):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(37, 16)), rng.normal(size=(50, 16))
    fi, fs, bi, bs = _brute(a, b)
    r = mutual_nearest(a, b, block_bytes=block_bytes)
    np.testing.assert_array_equal(r.ab.index, fi)
    np.testing.assert_allclose(r.ab.similarity, fs, rtol=1e-5)
    np.testing.assert_array_equal(r.ba.index, bi)
    np.testing.assert_allclose(r.ba.similarity, bs, rtol=1e-5)
    nn = nearest_neighbors(a, b, block_bytes=block_bytes)
    np.testing.assert_array_equal(nn.index, fi)


def test_ties_go_to_the_lowest_index_like_argmax():
    a = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    b = np.array([[1.0, 0.0], [2.0, 0.0]])  # both b rows are the same direction
    r = mutual_nearest(a, b, block_bytes=4 * 2)  # one row per block
    np.testing.assert_array_equal(r.ab.index, [0, 0, 0])
    np.testing.assert_array_equal(r.ba.index, [0, 0])


def test_zero_vectors_and_empty_inputs():
    a = np.array([[0.0, 0.0], [1.0, 1.0]])
    b = np.array([[1.0, 1.0]])
    r = nearest_neighbors(a, b)
    np.testing.assert_allclose(r.similarity, [0.0, 1.0], atol=1e-6)
    assert normalize_rows(a)[0].tolist() == [0.0, 0.0]
    e = nearest_neighbors(a, np.zeros((0, 2)))
    assert e.index.tolist() == [-1, -1]
    m = mutual_nearest(np.zeros((0, 2)), b)
    assert m.ab.index.shape == (0,) and m.ba.index.tolist() == [-1]
    with pytest.raises(ValueError, match="lengths differ"):
        nearest_neighbors(np.ones((2, 3)), np.ones((2, 4)))
    assert block_rows_for(1000, 4000 * 3) == 3


def test_faiss_engine_is_optional():
    try:
        import faiss  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="faiss-cpu"):
            nearest_neighbors(np.ones((2, 3)), np.ones((2, 3)), engine="faiss")
    else:
        rng = np.random.default_rng(1)
        a, b = rng.normal(size=(20, 8)), rng.normal(size=(30, 8))
        r = nearest_neighbors(a, b, engine="faiss")
        np.testing.assert_array_equal(r.index, _brute(a, b)[0])

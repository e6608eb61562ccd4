from pathlib import Path

import numpy as np
import pytest

from geocorr.data.pairs import KeypointPair
from geocorr.evaluation.predict import (
    PredictSettings,
    feature_predictor,
    image_cells,
    predict_keypoints,
    similarity_to_cells,
)
from geocorr.features.base import FeatureMap
from geocorr.geometry import resize_and_pad


def fmap(features, w, h, size):
    return FeatureMap(np.asarray(features, np.float32), resize_and_pad(w, h, size))


def angle_map(theta):
    """(2, h, w) unit vectors at angle theta per cell: cosine sim to (1, 0) is cos(theta)."""
    return np.stack([np.cos(theta), np.sin(theta)])


def test_image_cells_excludes_padding():
    # 8x4 image on an 8x8 canvas, 8x8 grid: cell (i, j) sits at pixel (j, i - 2)
    f = fmap(np.zeros((1, 8, 8)), 8, 4, 8)
    valid = image_cells(f)
    np.testing.assert_array_equal(valid.any(axis=1), [0, 0, 1, 1, 1, 1, 0, 0])
    assert valid[2:6].all()


def test_nn_on_identical_maps_returns_the_keypoints():
    rng = np.random.default_rng(0)
    f = fmap(rng.normal(size=(16, 8, 8)), 8, 4, 8)
    kps = np.array([[0, 0], [7, 3], [3, 1], [5, 2]], float)  # pixel centres = cell centres
    pred = predict_keypoints(f, f, kps)
    np.testing.assert_allclose(pred.trg_kps, kps)
    np.testing.assert_array_equal(pred.cells, [[2, 0], [5, 7], [3, 3], [4, 5]])
    np.testing.assert_allclose(pred.similarity, 1.0, atol=1e-5)


def test_nn_never_lands_in_padding():
    theta = np.full((8, 8), np.pi / 2)
    theta[0, 4] = 0.0  # perfect match, but in the top padding
    theta[3, 6] = 0.3  # best match on the image
    trg = fmap(angle_map(theta), 8, 4, 8)
    src = fmap(angle_map(np.zeros((8, 8))), 8, 4, 8)
    pred = predict_keypoints(src, trg, np.array([[1.0, 1.0]]))
    np.testing.assert_allclose(pred.trg_kps, [[6, 1]])
    free = predict_keypoints(src, trg, np.array([[1.0, 1.0]]),
                             PredictSettings(restrict_to_image=False))
    np.testing.assert_allclose(free.trg_kps, [[4, -2]])


def test_coarse_grid_maps_back_to_original_pixels():
    # 20x10 image, S = 40 (scale 2, top pad 10), 4x4 grid: cell (i, j) centre on canvas
    # ((j + .5) * 10 - .5, (i + .5) * 10 - .5) -> original ((10j + 4.5) / 2, (10i - 5.5) / 2)
    theta = np.full((4, 4), np.pi / 2)
    theta[2, 3] = 0.0
    trg = fmap(angle_map(theta), 20, 10, 40)
    src = fmap(angle_map(np.zeros((4, 4))), 20, 10, 40)
    pred = predict_keypoints(src, trg, np.array([[3.0, 3.0]]))
    np.testing.assert_allclose(pred.trg_kps, [[17.25, 7.25]])


def test_soft_argmax_between_two_equal_cells():
    theta = np.full((8, 8), np.pi / 2)
    theta[3, 3] = theta[3, 4] = 0.1
    trg = fmap(angle_map(theta), 8, 4, 8)
    src = fmap(angle_map(np.zeros((8, 8))), 8, 4, 8)
    s = PredictSettings(method="soft_argmax", window=15, temperature=0.02)
    pred = predict_keypoints(src, trg, np.array([[1.0, 1.0]]), s)
    np.testing.assert_allclose(pred.trg_kps, [[3.5, 1.0]], atol=1e-9)
    nn = predict_keypoints(src, trg, np.array([[1.0, 1.0]]))
    np.testing.assert_allclose(nn.trg_kps, [[3.0, 1.0]])


def test_window_limits_the_soft_argmax():
    theta = np.full((8, 8), np.pi / 2)
    theta[2, 0] = 0.0
    theta[5, 7] = 0.0  # just as good, far away
    trg = fmap(angle_map(theta), 8, 4, 8)
    src = fmap(angle_map(np.zeros((8, 8))), 8, 4, 8)
    small = predict_keypoints(src, trg, np.array([[0.0, 0.0]]),
                              PredictSettings(method="soft_argmax", window=3))
    np.testing.assert_allclose(small.trg_kps, [[0, 0]], atol=1e-9)
    big = predict_keypoints(src, trg, np.array([[0.0, 0.0]]),
                            PredictSettings(method="soft_argmax", window=15))
    np.testing.assert_allclose(big.trg_kps, [[3.5, 1.5]], atol=1e-9)


def _slow_soft_argmax(src, trg, kps, window, temperature):
    sim = similarity_to_cells(src, trg, kps)
    valid = image_cells(trg)
    centers = trg.cell_centers()
    h, w = valid.shape
    out = []
    for k in range(len(kps)):
        best, bi, bj = -np.inf, 0, 0
        for i in range(h):
            for j in range(w):
                if valid[i, j] and sim[k, i, j] > best:
                    best, bi, bj = sim[k, i, j], i, j
        r = window // 2
        num, den = np.zeros(2), 0.0
        for i in range(bi - r, bi + r + 1):
            for j in range(bj - r, bj + r + 1):
                if 0 <= i < h and 0 <= j < w and valid[i, j]:
                    e = np.exp((sim[k, i, j] - best) / temperature)
                    num += e * centers[i, j]
                    den += e
        out.append(num / den)
    return np.array(out)


@pytest.mark.parametrize("window,temperature", [(3, 0.1), (5, 0.05), (15, 0.02)])
def test_soft_argmax_matches_slow_reference(window, temperature):
    rng = np.random.default_rng(window)
    src = fmap(rng.normal(size=(8, 12, 12)), 30, 17, 36)
    trg = fmap(rng.normal(size=(8, 12, 12)), 13, 29, 36)
    kps = rng.uniform(0, [30, 17], size=(7, 2))
    s = PredictSettings(method="soft_argmax", window=window, temperature=temperature)
    fast = predict_keypoints(src, trg, kps, s).trg_kps
    np.testing.assert_allclose(fast, _slow_soft_argmax(src, trg, kps, window, temperature),
                               atol=1e-6)


def test_settings_and_shape_errors():
    with pytest.raises(ValueError, match="odd"):
        PredictSettings(window=4)
    with pytest.raises(ValueError, match="temperature"):
        PredictSettings(temperature=0)
    with pytest.raises(ValueError, match="method"):
        PredictSettings(method="argmax")
    f = fmap(np.zeros((2, 4, 4)), 4, 4, 4)
    g = fmap(np.zeros((3, 4, 4)), 4, 4, 4)
    with pytest.raises(ValueError, match="channels"):
        predict_keypoints(f, g, np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        predict_keypoints(f, f, np.zeros((3,)))


def test_feature_predictor_wraps_a_feature_source():
    rng = np.random.default_rng(1)
    maps = {Path("a.jpg"): fmap(rng.normal(size=(4, 8, 8)), 8, 8, 8)}
    maps[Path("b.jpg")] = maps[Path("a.jpg")]
    pair = KeypointPair("p", "cat", Path("a.jpg"), Path("b.jpg"), np.array([[2.0, 5.0]]),
                        np.array([[0.0, 0.0]]), np.array([0]), None, None, (8, 8), (8, 8))
    np.testing.assert_allclose(feature_predictor(maps.__getitem__)(pair), [[2, 5]])


def test_flow_of_identical_maps_is_zero():
    from geocorr.evaluation.predict import predict_flow

    rng = np.random.default_rng(3)
    f = fmap(rng.normal(size=(16, 8, 8)), 8, 4, 8)  # cell = pixel, rows 2..5 on the image
    flow = predict_flow(f, f)
    assert flow.shape == (4, 8, 2) and flow.dtype == np.float32
    np.testing.assert_allclose(flow, 0, atol=1e-9)


def test_flow_of_a_shifted_map():
    from geocorr.evaluation.predict import predict_flow

    rng = np.random.default_rng(4)
    t = rng.normal(size=(16, 16, 16))
    s = np.roll(t, 3, axis=2)  # target column j is source column j + 3
    for method in ("nn", "soft_argmax"):
        flow = predict_flow(fmap(s, 16, 16, 16), fmap(t, 16, 16, 16),
                            PredictSettings(method=method, window=3, temperature=0.01))
        np.testing.assert_allclose(flow[:, :13, 0], 3, atol=1e-3)
        np.testing.assert_allclose(flow[:, :13, 1], 0, atol=1e-3)


def test_flow_interpolates_between_coarse_cells_and_clamps_at_borders():
    from geocorr.evaluation.predict import predict_flow

    rng = np.random.default_rng(5)
    f = fmap(rng.normal(size=(16, 4, 4)), 16, 16, 16)  # cell centres at 1.5, 5.5, 9.5, 13.5
    flow = predict_flow(f, f)
    np.testing.assert_allclose(flow[2:14, 2:14], 0, atol=1e-5)
    np.testing.assert_allclose(flow[5, [0, 1, 14, 15], 0], [1.5, 0.5, -0.5, -1.5], atol=1e-5)
    np.testing.assert_allclose(flow[[0, 15], 7, 1], [1.5, -1.5], atol=1e-5)

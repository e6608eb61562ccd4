"""The PCK-style criterion of check_correspondences on hand-made ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from geocorr.data.synth.groundtruth import GroundTruth, check_correspondences
from geocorr.geometry.camera import Camera


def _gt(part_map: np.ndarray, stem: str) -> GroundTruth:
    H, W = part_map.shape
    ys, xs = np.mgrid[0:H, 0:W]
    tmpl = np.stack([xs / 10.0, ys / 10.0, np.zeros_like(xs, float)], axis=-1)
    K = np.array([[10.0, 0, W / 2], [0, 10.0, H / 2], [0, 0, 1]])
    return GroundTruth(
        category="box", stem=stem, vertices=np.zeros((3, 3)), faces=np.array([[0, 1, 2]]),
        face_part=np.zeros(1, np.int32), vertex_part=np.zeros(3, np.int32),
        vertex_template=np.zeros((3, 3)), part_names=("body", "lid"),
        part_material=("a", "b"), keypoint_vertices=np.zeros(0, np.int64),
        camera=Camera(K, np.eye(3), np.array([0, 0, 5.0]), W, H),
        part_map=part_map.astype(np.int16), template_map=tmpl.astype(np.float32),
        azimuth_deg=0.0, elevation_deg=0.0, sim_true_k=0, sim_yaw_error_k=0,
        sim_true_scale=1.0, sim_true_translation=np.zeros(3), sim_gt_scale=1.0,
        sim_gt_offset=np.zeros(3))


def test_pixel_error_hand_computed():
    pm = np.full((12, 12), -1)
    pm[2:8, 1:9] = 0            # body: bbox 6 rows x 8 cols -> max side 8 px
    src = _gt(pm, "a")
    pm_t = pm.copy()
    pm_t[2:4, 1:9] = 1          # the target shows the lid where the source shows body rows 2-3
    trg = _gt(pm_t, "b")
    uv_s = np.array([[3.0, 4.0], [3.0, 4.0], [3.0, 2.0], [0.0, 0.0]])
    uv_t = np.array([[3.0, 4.0], [5.0, 4.0], [3.0, 2.0], [3.0, 4.0]])
    chk = check_correspondences(src, trg, uv_s, uv_t)
    # 1: itself -> error 0; 2: two pixels off on an 8-pixel object -> 0.25
    np.testing.assert_allclose(chk.true_uv[:2], [[3.0, 4.0], [3.0, 4.0]])
    np.testing.assert_allclose(chk.pixel_error[:2], [0.0, 0.25])
    # 3: the source body point at row 2 is nearest (template) to body row 4 of the target:
    #    0.2 template units away < 0.25 -> possible, true pixel (3, 4), error 2/8
    np.testing.assert_allclose(chk.true_uv[2], [3.0, 4.0])
    np.testing.assert_allclose(chk.pixel_error[2], 0.25)
    # 4: background source pixel: no counterpart
    assert np.isinf(chk.pixel_error[3]) and np.isnan(chk.true_uv[3]).all()
    assert chk.correct_pck(0.1).tolist() == [True, False, False, False]
    assert chk.correct_pck(0.3).tolist() == [True, True, True, False]
    # the template rule is unchanged: the 2-pixel miss is 0.2 template units -> correct
    assert chk.correct.tolist() == [True, True, False, False]


def test_correct_pck_bad_alpha():
    pm = np.zeros((4, 4), int)
    g = _gt(pm, "a")
    chk = check_correspondences(g, g, np.ones((1, 2)), np.ones((1, 2)))
    with pytest.raises(ValueError, match="alpha"):
        chk.correct_pck(0.0)


def test_label_vertices_undoes_depth_scale():
    from dataclasses import replace

    from geocorr.data.synth.groundtruth import label_vertices

    rng = np.random.default_rng(0)
    v = rng.uniform(-1, 1, size=(200, 3))
    g = _gt(np.zeros((8, 8), int), "a")
    g = replace(g, vertices=v, vertex_part=(v[:, 0] > 0).astype(np.int32),
                vertex_template=v * 0.5)
    # a reconstruction twice as large, twice as far: same image, different depth scale
    cam2 = Camera(g.camera.K, g.camera.R, 2 * g.camera.t, g.camera.width, g.camera.height)
    lab = label_vertices(g, 2 * v, cam2)
    np.testing.assert_array_equal(lab.part, g.vertex_part)
    np.testing.assert_allclose(lab.template, v * 0.5)
    np.testing.assert_allclose(lab.distance, 0.0, atol=1e-9)

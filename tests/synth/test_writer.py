import io
import zipfile

import numpy as np
import pytest

from geocorr.data.synth.writer import (
    ImageRecord,
    image_annotation,
    mask_bndbox,
    pair_annotation,
    pair_stem,
    save_npz,
    scale_variation,
    viewpoint_variation,
)


def _record(stem, visible, az=0.0, box=(10, 10, 49, 29), truncated=0):
    k = len(visible)
    return ImageRecord(stem=stem, category="car", instance_id=0, width=64, height=48,
                       bndbox=np.array(box), kps=np.arange(2 * k).reshape(k, 2),
                       visible=np.array(visible), azimuth_deg=az, azimuth_id=0, pose="Frontal",
                       truncated=truncated, occluded=0, flipped=False)


def test_save_npz_is_deterministic_and_loadable(tmp_path):
    arrays = {"a": np.arange(5, dtype=np.int16), "b": np.eye(3), "s": np.array(["x", "yz"])}
    save_npz(tmp_path / "1.npz", arrays)
    save_npz(tmp_path / "2.npz", arrays)
    assert (tmp_path / "1.npz").read_bytes() == (tmp_path / "2.npz").read_bytes()
    with np.load(tmp_path / "1.npz") as d:
        for k, v in arrays.items():
            np.testing.assert_array_equal(d[k], v)
    with zipfile.ZipFile(io.BytesIO((tmp_path / "1.npz").read_bytes())) as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize("a, b, want", [(0, 44, 0), (0, 46, 1), (350, 20, 0), (10, 100, 2),
                                        (0, 180, 2), (300, 220, 1)])
def test_viewpoint_variation(a, b, want):
    assert viewpoint_variation(a, b) == want


def test_scale_variation():
    box = np.array([0, 0, 9, 9])  # 10 x 10
    assert scale_variation(box, np.array([0, 0, 13, 13])) == 0  # ratio 1.4
    assert scale_variation(box, np.array([0, 0, 19, 19])) == 1  # ratio 2
    assert scale_variation(np.array([0, 0, 29, 29]), box) == 2  # ratio 3


def test_mask_bndbox():
    m = np.zeros((6, 8), bool)
    m[2:4, 3:7] = True
    assert mask_bndbox(m).tolist() == [3, 2, 6, 3]
    assert mask_bndbox(np.zeros((3, 3), bool)).tolist() == [0, 0, 0, 0]


def test_image_annotation_fields():
    ann = image_annotation(_record("car_0001", [True, False, True]))
    assert ann["kps"] == {"0": [0, 1], "1": None, "2": [4, 5]}
    assert ann["filename"] == "car_0001.jpg" and ann["bndbox"] == [10, 10, 49, 29]
    assert (ann["image_width"], ann["image_height"]) == (64, 48)


def test_pair_keeps_keypoints_visible_in_both():
    src = _record("car_0001", [True, False, True, True], az=0, truncated=1)
    trg = _record("car_0002", [True, True, False, True], az=170, box=(0, 0, 63, 47))
    ann = pair_annotation(7, src, trg)
    assert ann["kps_ids"] == [0, 3]
    assert ann["src_kps"] == [[0, 1], [6, 7]] and ann["trg_kps"] == [[0, 1], [6, 7]]
    assert ann["viewpoint_variation"] == 2 and ann["truncation"] == 1 and ann["occlusion"] == 0
    assert ann["src_imsize"] == [64, 48, 3]
    assert pair_stem(7, "car_0001", "car_0002", "car") == "000007-car_0001-car_0002:car"

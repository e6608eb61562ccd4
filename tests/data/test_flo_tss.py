import struct

import numpy as np
import pytest
from PIL import Image
from spair_fixture import write_image

from geocorr.data.flo import flow_known, read_flo, write_flo
from geocorr.data.tss import TSSDataset
from geocorr.evaluation.flow_pck import flow_directory_predictor, flow_pck, score_tss_flow


def test_flo_roundtrip_and_exact_bytes(tmp_path):
    flow = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    p = tmp_path / "f.flo"
    write_flo(p, flow)
    raw = p.read_bytes()
    assert raw[:4] == b"PIEH"
    assert struct.unpack("<ii", raw[4:12]) == (3, 2)  # width, height
    assert struct.unpack("<4f", raw[12:28]) == (0.0, 1.0, 2.0, 3.0)  # (u, v) interleaved
    np.testing.assert_array_equal(read_flo(p), flow)
    assert not list(tmp_path.glob(".*.tmp"))


def test_flo_errors(tmp_path):
    p = tmp_path / "bad.flo"
    p.write_bytes(struct.pack("<fii", 1.0, 2, 2) + b"\0" * 32)
    with pytest.raises(ValueError, match="bad.flo: bad .flo magic"):
        read_flo(p)
    p.write_bytes(struct.pack("<fii", 202021.25, 2, 2) + b"\0" * 8)
    with pytest.raises(ValueError, match="truncated"):
        read_flo(p)
    p.write_bytes(b"PIE")
    with pytest.raises(ValueError, match="too short"):
        read_flo(p)
    with pytest.raises(FileNotFoundError):
        read_flo(tmp_path / "none.flo")
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        write_flo(p, np.zeros((2, 2)))


def test_flow_known():
    f = np.array([[[0, 0], [1e10, 0], [np.nan, 1], [-5, 1e9]]], np.float32)
    np.testing.assert_array_equal(flow_known(f), [[True, False, False, True]])


def write_pair(folder, size1, size2, flow1, flow2, mask1, mask2, flip="0"):
    folder.mkdir(parents=True)
    write_image(folder / "image1.png", *size1)
    write_image(folder / "image2.png", *size2)
    write_flo(folder / "flow1.flo", flow1)
    write_flo(folder / "flow2.flo", flow2)
    Image.fromarray(mask1.astype(np.uint8) * 255).save(folder / "mask1.png")
    Image.fromarray(mask2.astype(np.uint8) * 255).save(folder / "mask2.png")
    (folder / "flip_gt.txt").write_text(flip + "\n")


def build(root):
    # image1 20x10 (W x H), image2 8x6
    flow2 = np.full((6, 8, 2), 3.0, np.float32)
    flow2[0, 0] = 1e10  # unknown
    mask2 = np.zeros((6, 8), bool)
    mask2[0, 0] = mask2[1, 1] = mask2[2, 2] = mask2[3, 3] = True
    flow1 = np.full((10, 20, 2), -2.0, np.float32)
    mask1 = np.zeros((10, 20), bool)
    mask1[4, 5] = mask1[6, 7] = True
    write_pair(root / "FG3DCar" / "pair01", (20, 10), (8, 6), flow1, flow2, mask1, mask2)
    write_pair(root / "JODS" / "pairA", (8, 8), (8, 8), np.zeros((8, 8, 2), np.float32),
               np.zeros((8, 8, 2), np.float32), np.ones((8, 8), bool), np.ones((8, 8), bool),
               flip="1")
    return root


def test_tss_reader(tmp_path):
    ds = TSSDataset(build(tmp_path))
    assert ds.subsets() == ("FG3DCar", "JODS")
    a, b = ds.pairs()
    assert a.pair_id == "FG3DCar/pair01" and a.flipped is False and b.flipped is True
    d12, d21 = a.directions()
    assert d12.key == "FG3DCar/pair01:1->2"
    assert d12.gt_flow().shape == (6, 8, 2) and d12.mask().sum() == 4
    assert d12.source_size() == (20, 10)
    assert len(list(ds.directions())) == 4
    with pytest.raises(ValueError, match="unknown TSS subset"):
        ds.pairs("KITTI")
    (tmp_path / "JODS" / "pairA" / "mask2.png").unlink()
    with pytest.raises(FileNotFoundError, match="missing mask2.png"):
        ds.pairs()
    with pytest.raises(FileNotFoundError, match="none of the subset folders"):
        TSSDataset(tmp_path / "FG3DCar")


def test_flow_pck_by_hand(tmp_path):
    ds = TSSDataset(build(tmp_path))
    pred_root = tmp_path / "pred"
    # 1 -> 2: L = max(10, 20) = 20, 0.05 L = 1 px; mask pixels (1,1) err 0, (2,2) err 1 (<=,
    # right), (3,3) err 1.5 (wrong); (0,0) has unknown gt and is skipped -> 2/3
    p2 = np.full((6, 8, 2), 3.0, np.float32)
    p2[2, 2, 0] += 1.0
    p2[3, 3, 1] += 1.5
    # 2 -> 1: L = max(6, 8) = 8, 0.05 L = 0.4; errors 0.25 (right), 0.5 (wrong) -> 1/2
    p1 = np.full((10, 20, 2), -2.0, np.float32)
    p1[4, 5, 0] += 0.25
    p1[6, 7, 0] += 0.5
    (pred_root / "FG3DCar" / "pair01").mkdir(parents=True)
    write_flo(pred_root / "FG3DCar" / "pair01" / "flow2.flo", p2)
    write_flo(pred_root / "FG3DCar" / "pair01" / "flow1.flo", p1)
    (pred_root / "JODS" / "pairA").mkdir(parents=True)
    for k in (1, 2):
        write_flo(pred_root / "JODS" / "pairA" / f"flow{k}.flo", np.zeros((8, 8, 2)))
    res = score_tss_flow(ds.directions(), flow_directory_predictor(pred_root))
    scores = {s.key: s for s in res.scores}
    assert scores["FG3DCar/pair01:1->2"].pck == pytest.approx(2 / 3)
    assert scores["FG3DCar/pair01:1->2"].num_pixels == 3
    assert scores["FG3DCar/pair01:2->1"].pck == pytest.approx(0.5)
    assert res.per_subset == pytest.approx({"FG3DCar": (2 / 3 + 0.5) / 2, "JODS": 1.0})
    assert res.mean == pytest.approx((2 / 3 + 0.5 + 1 + 1) / 4)
    assert res.subset_mean == pytest.approx(((2 / 3 + 0.5) / 2 + 1) / 2)
    assert res.to_dict()["num_directions"] == 4


def test_flow_pck_errors():
    gt = np.zeros((2, 2, 2))
    with pytest.raises(ValueError, match="must match"):
        flow_pck(np.zeros((2, 3, 2)), gt, np.ones((2, 2), bool), 10)
    with pytest.raises(ValueError, match="mask"):
        flow_pck(gt, gt, np.ones((3, 2), bool), 10)
    assert np.isnan(flow_pck(gt, gt, np.zeros((2, 2), bool), 10))
    bad = gt.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        flow_pck(bad, gt, np.ones((2, 2), bool), 10)


def test_missing_prediction_named(tmp_path):
    ds = TSSDataset(build(tmp_path))
    (tmp_path / "pred").mkdir()
    with pytest.raises(FileNotFoundError, match="FG3DCar/pair01:1->2: missing prediction"):
        score_tss_flow(ds.directions(), flow_directory_predictor(tmp_path / "pred"))


def test_cli_scores_tss_flow_directory(tmp_path):
    import json

    from typer.testing import CliRunner

    from geocorr.cli import app

    root = build(tmp_path / "tss")
    pred = tmp_path / "pred"
    for pair in TSSDataset(root).pairs():
        (pred / pair.pair_id).mkdir(parents=True)
        for k in (1, 2):
            write_flo(pred / pair.pair_id / f"flow{k}.flo", read_flo(pair.flow_path(k)))
    out = tmp_path / "tss.json"
    r = CliRunner().invoke(app, ["score", "--dataset", "tss", "--root", str(root),
                                 "--predictions", str(pred), "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "FG3DCar" in r.output and "100.0" in r.output
    d = json.loads(out.read_text())
    assert d["results"][0]["subset_mean"] == 1.0
    r = CliRunner().invoke(app, ["score", "--dataset", "tss", "--root", str(root),
                                 "--predictions", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "does not exist" in " ".join(r.output.split())

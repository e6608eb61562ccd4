"""Every loader refuses names that lead outside its root: '..', absolute paths, symlinks.

Each case plants a real readable file outside the root, so a loader that
followed the name would succeed silently (as ``eval`` did before: exit 0).
"""

import json
import os

import numpy as np
import pytest
from spair_fixture import spair_pair, write_image, write_spair

from geocorr.data.ap10k import AP10KDataset
from geocorr.data.pairs import DatasetFormatError
from geocorr.data.pfpascal import PFPascalDataset
from geocorr.data.pfwillow import PFWillowDataset
from geocorr.data.spair import SPairDataset
from geocorr.data.synth.groundtruth import groundtruth_path
from geocorr.data.tss import TSSDataset


@pytest.fixture
def secret(tmp_path):
    """A readable image outside every dataset root of these tests."""
    p = tmp_path / "outside" / "secret.jpg"
    write_image(p, 64, 48)
    return p


# ------------------------------------------------------------------------------------ SPair
def spair(root, src="c1.jpg", trg="c2.jpg", cat="car", stem=None):
    pair = spair_pair(1, cat, src, trg, [(1, 1)], [(2, 2)], [0], trg_bbox=(0, 0, 10, 10))
    if stem is not None:
        pair["stem"] = stem
    images = {("car", "c1.jpg"): {"size": (64, 48), "kps": {"0": [1, 1]}},
              ("car", "c2.jpg"): {"size": (64, 48), "kps": {"0": [2, 2]}}}
    return SPairDataset(write_spair(root, [pair], images))


def test_spair_accepts_names_that_stay_inside(tmp_path):
    (p,) = spair(tmp_path / "spair", src="../car/c1.jpg").pairs("test")
    assert p.src_image.is_file()


@pytest.mark.parametrize("field", ["src", "trg"])
def test_spair_image_traversal(tmp_path, secret, field):
    root = tmp_path / "spair"
    rel = os.path.relpath(secret, root / "JPEGImages" / "car")
    assert (root / "JPEGImages" / "car" / rel).resolve() == secret.resolve()
    ds = spair(root, **{field: rel})
    with pytest.raises(DatasetFormatError) as e:
        ds.pairs("test")
    assert "000001-c1-c2:car.json" in str(e.value) or "PairAnnotation" in str(e.value)
    assert rel in str(e.value)


def test_spair_absolute_image_name(tmp_path, secret):
    ds = spair(tmp_path / "spair", trg=str(secret))
    with pytest.raises(DatasetFormatError, match="absolute path") as e:
        ds.pairs("test")
    assert str(secret) in str(e.value) and ".json" in str(e.value)


def test_spair_symlinked_image(tmp_path, secret):
    ds = spair(tmp_path / "spair", src="link.jpg")
    (ds.root / "JPEGImages" / "car" / "link.jpg").symlink_to(secret)
    with pytest.raises(DatasetFormatError, match="symbolic link"):
        ds.pairs("test")


def test_spair_category_traversal(tmp_path, secret):
    # category '../../outside' + 'secret.jpg' -> ROOT/../outside/secret.jpg
    root = tmp_path / "spair"
    ds = spair(root, cat="../../outside", src="secret.jpg", trg="secret.jpg",
               stem="000001-secret-secret:x")
    with pytest.raises(DatasetFormatError, match=r"\.\./\.\./outside"):
        ds.pairs("test")


def test_spair_layout_stem_traversal(tmp_path):
    root = tmp_path / "spair"
    ds = spair(root)
    (tmp_path / "evil.json").write_text(json.dumps({"category": "car"}))
    (root / "Layout" / "large" / "test.txt").write_text("../../../evil\n")
    with pytest.raises(DatasetFormatError) as e:
        ds.pairs("test")
    assert "test.txt" in str(e.value) and "../../../evil" in str(e.value)


def test_spair_symlinked_root_is_fine(tmp_path):
    ds = spair(tmp_path / "spair")
    (tmp_path / "alias").symlink_to(ds.root, target_is_directory=True)
    (p,) = SPairDataset(tmp_path / "alias").pairs("test")
    assert p.src_image == tmp_path / "alias" / "JPEGImages" / "car" / "c1.jpg"


# -------------------------------------------------------------------------------- PF-PASCAL
PF_HEADER = "source_image,target_image,class,XA,YA,XB,YB\n"


def pfpascal(root, src, trg="JPEGImages/b.jpg"):
    write_image(root / "JPEGImages" / "a.jpg", 64, 48)
    write_image(root / "JPEGImages" / "b.jpg", 64, 48)
    (root / "test_pairs.csv").write_text(PF_HEADER + f"{src},{trg},7,1,2,3,4\n")
    return PFPascalDataset(root)


def test_pfpascal_root_named_prefix_still_resolves(tmp_path):
    # 'PF-dataset-PASCAL/JPEGImages/a.jpg' against ROOT's parent lands inside ROOT
    ds = pfpascal(tmp_path / "PF-dataset-PASCAL", "PF-dataset-PASCAL/JPEGImages/a.jpg")
    (p,) = ds.pairs("test")
    assert p.src_image.resolve() == (ds.root / "JPEGImages" / "a.jpg").resolve()


def test_pfpascal_traversal(tmp_path, secret):
    rel = os.path.relpath(secret, tmp_path / "pf")
    ds = pfpascal(tmp_path / "pf", rel)
    with pytest.raises(DatasetFormatError) as e:
        ds.pairs("test")
    assert "test_pairs.csv:2" in str(e.value) and rel in str(e.value)


def test_pfpascal_parent_fallback_cannot_leave_the_root(tmp_path, secret):
    # before: ROOT/../outside/secret.jpg was tried (and opened) as the "parent" candidate
    ds = pfpascal(tmp_path / "pf", "outside/secret.jpg")
    with pytest.raises(FileNotFoundError) as e:
        ds.pairs("test")
    assert str(secret) not in str(e.value)


def test_pfpascal_absolute(tmp_path, secret):
    ds = pfpascal(tmp_path / "pf", "JPEGImages/a.jpg", trg=str(secret))
    with pytest.raises(DatasetFormatError, match="test_pairs.csv:2: image .* absolute path"):
        ds.pairs("test")


def test_pfpascal_symlink(tmp_path, secret):
    ds = pfpascal(tmp_path / "pf", "JPEGImages/link.jpg")
    (ds.root / "JPEGImages" / "link.jpg").symlink_to(secret)
    with pytest.raises(DatasetFormatError, match="symbolic link"):
        ds.pairs("test")


# -------------------------------------------------------------------------------- PF-WILLOW
def pfwillow(root, src, trg="PF-dataset/car(G)/b.png"):
    write_image(root / "PF-dataset" / "car(G)" / "a.png", 64, 48)
    write_image(root / "PF-dataset" / "car(G)" / "b.png", 64, 48)
    coords = ",".join(["1"] * 40)
    (root / "test_pairs_pf.csv").write_text(f"{src},{trg},{coords}\n")
    return PFWillowDataset(root)


def test_pfwillow_valid(tmp_path):
    (p,) = pfwillow(tmp_path / "PF-WILLOW", "PF-WILLOW/PF-dataset/car(G)/a.png").pairs()
    assert p.category == "car(G)" and p.src_image.is_file()


def test_pfwillow_traversal(tmp_path, secret):
    rel = os.path.relpath(secret, tmp_path / "pw")
    ds = pfwillow(tmp_path / "pw", rel)
    with pytest.raises(DatasetFormatError) as e:
        ds.pairs()
    assert "test_pairs_pf.csv:1" in str(e.value) and rel in str(e.value)


def test_pfwillow_absolute(tmp_path, secret):
    ds = pfwillow(tmp_path / "pw", str(secret))
    with pytest.raises(DatasetFormatError, match="absolute path"):
        ds.pairs()


def test_pfwillow_symlink(tmp_path, secret):
    ds = pfwillow(tmp_path / "pw", "PF-dataset/car(G)/link.png")
    (ds.root / "PF-dataset" / "car(G)" / "link.png").symlink_to(secret)
    with pytest.raises(DatasetFormatError, match="symbolic link"):
        ds.pairs()


# ------------------------------------------------------------------------------------ TSS
def tss_pair(folder):
    from geocorr.data.flo import write_flo

    folder.mkdir(parents=True)
    for k in (1, 2):
        write_image(folder / f"image{k}.png", 8, 6)
        write_image(folder / f"mask{k}.png", 8, 6)
        write_flo(folder / f"flow{k}.flo", np.zeros((6, 8, 2), np.float32))


def test_tss_symlinked_pair_folder(tmp_path):
    root = tmp_path / "tss"
    tss_pair(root / "PASCAL" / "ok")
    assert [p.pair_id for p in TSSDataset(root).pairs()] == ["PASCAL/ok"]
    tss_pair(tmp_path / "elsewhere" / "pair")
    (root / "PASCAL" / "evil").symlink_to(tmp_path / "elsewhere" / "pair",
                                          target_is_directory=True)
    with pytest.raises(DatasetFormatError, match="symbolic link") as e:
        TSSDataset(root).pairs()
    assert "evil" in str(e.value)


def test_tss_symlinked_file(tmp_path, secret):
    root = tmp_path / "tss"
    tss_pair(root / "JODS" / "p")
    (root / "JODS" / "p" / "image1.png").unlink()
    (root / "JODS" / "p" / "image1.png").symlink_to(secret)
    with pytest.raises(DatasetFormatError, match="image1.png"):
        TSSDataset(root).pairs()


# ---------------------------------------------------------------------------------- AP-10K
def ap10k(root, src_ref, trg_ref="ImageAnnotation/dog/2.json", **image_extra):
    for stem in ("1", "2"):
        p = root / "ImageAnnotation" / "dog" / f"{stem}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps({"bbox": [0, 0, 10, 10], "keypoints": [[1, 1, 2]] * 17,
                                 "width": 64, "height": 48, **image_extra}))
    pa = root / "PairAnnotation" / "test"
    pa.mkdir(parents=True)
    (pa / "p.json").write_text(json.dumps({"src_json_path": src_ref, "trg_json_path": trg_ref}))
    return AP10KDataset(root)


def test_ap10k_traversal_in_pair_json(tmp_path):
    outside = tmp_path / "outside" / "1.json"
    outside.parent.mkdir()
    outside.write_text("{}")
    rel = os.path.relpath(outside, tmp_path / "ap")
    ds = ap10k(tmp_path / "ap", rel)
    with pytest.raises(DatasetFormatError) as e:
        ds.pairs("test")
    assert "p.json" in str(e.value) and "src_json_path" in str(e.value) and rel in str(e.value)


def test_ap10k_absolute_in_pair_json(tmp_path):
    ds = ap10k(tmp_path / "ap", "ImageAnnotation/dog/1.json", str(tmp_path / "x.json"))
    with pytest.raises(DatasetFormatError, match="trg_json_path.*absolute path"):
        ds.pairs("test")


def test_ap10k_image_path_traversal_and_absolute(tmp_path, secret):
    ds = ap10k(tmp_path / "ap", "ImageAnnotation/dog/1.json",
               img_path=os.path.relpath(secret, tmp_path / "ap"))
    with pytest.raises(DatasetFormatError, match="1.json: field 'img_path'"):
        ds.pairs("test")
    ds = ap10k(tmp_path / "ap2", "ImageAnnotation/dog/1.json", file_name=str(secret))
    with pytest.raises(DatasetFormatError, match="field 'file_name'.*absolute"):
        ds.pairs("test")


def test_ap10k_symlinked_annotation_found_by_stem(tmp_path):
    root = tmp_path / "ap"
    ds = ap10k(root, "3.json")  # resolved by stem under ImageAnnotation/
    outside = tmp_path / "outside" / "3.json"
    outside.parent.mkdir()
    outside.write_text((root / "ImageAnnotation" / "dog" / "1.json").read_text())
    (root / "ImageAnnotation" / "dog" / "3.json").symlink_to(outside)
    with pytest.raises(DatasetFormatError, match="symbolic link"):
        ds.pairs("test")


def test_ap10k_valid(tmp_path):
    (p,) = ap10k(tmp_path / "ap", "ImageAnnotation/dog/1.json", img_path="dog/1.jpg").pairs(
        "test")
    assert p.src_image == tmp_path / "ap" / "dog" / "1.jpg"


# ------------------------------------------------------------------------- synth ground truth
def test_synth_groundtruth_path(tmp_path):
    assert groundtruth_path(tmp_path, "car", "a") == tmp_path / "GroundTruth" / "car" / "a.npz"
    with pytest.raises(DatasetFormatError, match=r"\.\./\.\./\.\./x"):
        groundtruth_path(tmp_path, "../../../x", "a")
    with pytest.raises(DatasetFormatError, match="absolute"):
        groundtruth_path(tmp_path, "car", "/etc/passwd")
    root = tmp_path / "synth"
    (root / "GroundTruth" / "car").mkdir(parents=True)
    (tmp_path / "elsewhere.npz").write_bytes(b"")
    (root / "GroundTruth" / "car" / "b.npz").symlink_to(tmp_path / "elsewhere.npz")
    with pytest.raises(DatasetFormatError, match="symbolic link"):
        groundtruth_path(root, "car", "b")

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from geocorr.adapter.checkpoint import from_pretrained
from geocorr.adapter.dataset import labeled_pairs_from_store, spair_image_path
from geocorr.cli import app

store_mod = pytest.importorskip("geocorr.labels.store")


def _dataset(root, n=3):
    rng = np.random.default_rng(0)
    (root / "JPEGImages" / "toy").mkdir(parents=True)
    for k in range(n):
        img = np.kron(rng.integers(0, 255, (8, 10, 3), dtype=np.uint8),
                      np.ones((6, 6, 1), np.uint8))
        Image.fromarray(img).save(root / "JPEGImages" / "toy" / f"toy_{k}.jpg")


def _store(path, n=3):
    rng = np.random.default_rng(1)
    with store_mod.LabelStore(path, settings={"filter": "test"}) as st:
        for a in range(n):
            for b in range(n):
                if a == b:
                    continue
                uv = rng.uniform(2, 46, size=(8, 2))
                st.write(store_mod.PairLabels(f"toy:toy_{a}:toy_{b}", "toy", f"toy_{a}",
                                              f"toy_{b}", uv, uv + 1.0, np.ones(8), np.zeros(8),
                                              20, 0))
        st.write(store_mod.PairLabels("toy:toy_0:toy_0", "toy", "toy_0", "toy_0",
                                      np.zeros((1, 2)), np.zeros((1, 2)), np.ones(1),
                                      np.zeros(1), 5, 0))


def test_pairs_from_store(tmp_path):
    _dataset(tmp_path / "ds")
    _store(tmp_path / "labels.sqlite")
    with store_mod.LabelStore(tmp_path / "labels.sqlite") as st:
        pairs = labeled_pairs_from_store(st, spair_image_path(tmp_path / "ds"), min_labels=2)
    assert len(pairs) == 6  # the 1-label pair is skipped
    p = pairs[0]
    assert p.src_image == tmp_path / "ds" / "JPEGImages" / "toy" / "toy_0.jpg"
    np.testing.assert_allclose(p.trg_uv, p.src_uv + 1.0)
    with pytest.raises(ValueError, match="JPEGImages"):
        spair_image_path(tmp_path)


def test_geocorr_train_cli_and_resume(tmp_path):
    _dataset(tmp_path / "ds")
    _store(tmp_path / "labels.sqlite")
    args = ["train", "--store", str(tmp_path / "labels.sqlite"), "--cache", str(tmp_path / "c"),
            "--dataset", str(tmp_path / "ds"), "--out", str(tmp_path / "run"),
            "--backbone", "classical", "--grid-size", "16", "--steps", "6", "--out-dim", "16",
            "--val-every", "3", "--quiet"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "step 6/6" in res.output
    adapter = from_pretrained(tmp_path / "run")
    assert adapter.source_names == ["classical"]
    # a local CPU backbone gets the measured context defaults
    assert (adapter.settings.context_blocks, adapter.settings.global_pool) == (4, True)
    res = CliRunner().invoke(app, args[:-5] + ["--lr", "0.1", "--quiet"])
    assert res.exit_code == 2 and "other settings" in res.output
    res = CliRunner().invoke(app, [*args[:2], str(tmp_path / "missing.sqlite"), *args[3:]])
    # the whole message on one line, whatever the terminal width or temp path length
    assert res.exit_code == 2
    assert (f"error: label store {tmp_path / 'missing.sqlite'} does not exist"
            in res.stderr.splitlines())
    wide = [*args[:8], str(tmp_path / "wide"), *args[9:], "--context-blocks", "2", "--global-pool"]
    res = CliRunner().invoke(app, wide)
    assert res.exit_code == 0, res.output
    settings = from_pretrained(tmp_path / "wide").settings
    assert (settings.context_blocks, settings.global_pool) == (2, True)

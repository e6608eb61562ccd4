"""Every user-caused or environment failure of the CLI: one line naming the file or argument,
exit 2, nothing half-written; independent of terminal width and path length."""

import errno
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent / "data"))
from spair_fixture import STANDARD_PREDICTIONS, standard_fixture  # noqa: E402

from geocorr.cli import app  # noqa: E402
from geocorr.cli._common import check_device  # noqa: E402


def _preds(path: Path) -> Path:
    path.write_text("".join(json.dumps({"pair": k, "trg_kps": [list(p) for p in v]}) + "\n"
                            for k, v in STANDARD_PREDICTIONS.items()))
    return path


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _cli(args, columns: int, tmp: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(columns), "TMPDIR": str(tmp), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", "from geocorr.cli import main; main()", *args],
                          env=env, capture_output=True, text=True, timeout=120)


def test_messages_are_one_line_in_a_narrow_terminal_with_a_long_path(tmp_path):
    deep = tmp_path / ("d" * 90) / ("e" * 90)
    deep.mkdir(parents=True)
    preds = _preds(deep / "p.jsonl")
    missing = deep / "no such root"
    res = _cli(["score", "--dataset", "spair", "--root", str(missing), "--predictions",
                str(preds)], 40, deep)
    assert res.returncode == 2, res.stderr
    assert _error_lines(res.stderr) == [f"error: SPair-71k root: directory {missing} "
                                        "does not exist"]
    # a usage error (click's) is one line naming the option too, not a re-wrapped box
    res = _cli(["score", "--dataset", "spair", "--root", str(missing)], 40, deep)
    assert res.returncode == 2
    assert "Error: Missing option '--predictions'." in res.stderr.splitlines()


def test_markup_like_text_in_a_message_is_printed_as_is(tmp_path):
    root = tmp_path / "[red]x[/red] :smile:"
    r = CliRunner().invoke(app, ["score", "--dataset", "spair", "--root", str(root),
                                 "--predictions", str(_preds(tmp_path / "p.jsonl"))])
    assert r.exit_code == 2
    assert _error_lines(r.stderr) == [f"error: SPair-71k root: directory {root} does not exist"]


# ---------------------------------------------------------------------------------------------
# full disk, permission denied, read-only file system


class _FullDisk(io.BufferedWriter):
    """A file whose first write stores half its bytes and then fails like a full disk."""

    errno_ = errno.ENOSPC

    def write(self, b):
        data = bytes(b)
        super().write(data[: len(data) // 2])
        super().flush()
        raise OSError(self.errno_, os.strerror(self.errno_))


@pytest.fixture()
def full_disk(monkeypatch):
    """Make every ``os.fdopen(fd, 'w...')`` (how geocorr's atomic writers open their temp file)
    return a file that fails part-way; yields a setter for the errno."""
    real = os.fdopen

    def fdopen(fd, mode="r", *args, **kwargs):
        if "w" not in mode:
            return real(fd, mode, *args, **kwargs)
        f = _FullDisk(io.FileIO(fd, "wb"))
        return f if "b" in mode else io.TextIOWrapper(f, encoding=kwargs.get("encoding"))

    monkeypatch.setattr(os, "fdopen", fdopen)
    return lambda code: setattr(_FullDisk, "errno_", code)


def _write_cache_entry(path):
    from geocorr.features.base import FeatureMap
    from geocorr.features.cache import FeatureCache
    from geocorr.geometry.image_transform import ResizePad

    fmap = FeatureMap(np.zeros((4, 4, 8), np.float32), ResizePad(1.0, 0, 0, 4, 4, 4), "x")
    FeatureCache(path.parent).save(path, "key", fmap)


def _write_checkpoint(path):
    from geocorr.adapter.checkpoint import save_checkpoint
    from geocorr.adapter.network import Adapter, AdapterSettings

    save_checkpoint(path, Adapter(AdapterSettings(sources=(("x", 8),), out_dim=4)))


def _write_predictions(path):
    from geocorr.evaluation.scorer import write_predictions

    write_predictions(path, {"p": np.zeros((3, 2))})


def _write_flo(path):
    from geocorr.data.flo import write_flo

    write_flo(path, np.zeros((4, 5, 2), np.float32))


def _write_bytes(path):
    from geocorr.atomic import write_bytes_atomic

    write_bytes_atomic(path, b"new" * 100)


@pytest.mark.parametrize("write", [_write_bytes, _write_cache_entry, _write_checkpoint,
                                   _write_predictions, _write_flo],
                         ids=lambda f: f.__name__)
def test_writers_on_a_full_disk_name_the_file_and_leave_the_old_one(tmp_path, full_disk, write):
    path = tmp_path / "out" / "file.bin"
    path.parent.mkdir()
    path.write_bytes(b"old")
    with pytest.raises(OSError) as info:
        write(path)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.bin"]  # no temp file left
    assert path.read_bytes() == b"old"


@pytest.mark.parametrize("code,hint", [
    (errno.ENOSPC, "free some disk space or write somewhere else"),
    (errno.EACCES, "check its permissions or choose another path"),
    (errno.EROFS, "choose a path on a writable file system")])
def test_cli_turns_a_failed_write_into_one_line_exit_2(tmp_path, full_disk, code, hint):
    root = standard_fixture(tmp_path / "spair")
    preds = _preds(tmp_path / "p.jsonl")
    out = tmp_path / "res" / "score.json"
    full_disk(code)
    r = CliRunner().invoke(app, ["score", "--dataset", "spair", "--root", str(root),
                                 "--predictions", str(preds), "--json", str(out)])
    assert r.exit_code == 2, r.output
    assert _error_lines(r.stderr) == [f"error: {out}: {os.strerror(code)} ({hint})"]
    assert list(out.parent.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# unreadable images, --device, misleading messages


def test_match_names_an_unreadable_or_oversized_image(tmp_path, monkeypatch):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(good)
    text = tmp_path / "text.png"
    text.write_text("not an image")
    out = tmp_path / "m.png"
    r = CliRunner().invoke(app, ["match", str(text), str(good), "--out", str(out)])
    assert r.exit_code == 2 and _error_lines(r.stderr)[0].startswith(f"error: {text}: not a ")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1600 > 2x: a decompression bomb
    r = CliRunner().invoke(app, ["match", str(good), str(good), "--out", str(out)])
    assert r.exit_code == 2, r.output
    [line] = _error_lines(r.stderr)
    assert line.startswith(f"error: {good}: ") and "exceeds limit" in line
    assert not out.exists()


def test_dataset_image_size_names_an_oversized_image(tmp_path, monkeypatch):
    from geocorr.data.pairs import DatasetFormatError, image_size

    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(DatasetFormatError, match="big.png: cannot read image"):
        image_size(path)


def test_a_decompression_bomb_anywhere_in_a_command_is_one_line():
    import typer

    from geocorr.cli._common import user_errors

    with pytest.raises(typer.Exit) as info, user_errors():
        raise Image.DecompressionBombError("Image size (9 pixels) exceeds limit")
    assert info.value.exit_code == 2


def test_device_is_checked_up_front(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"--device cuda: no CUDA GPU is available"):
        check_device("cuda")
    with pytest.raises(ValueError, match=r"--device 'gpu0': not a torch device"):
        check_device("gpu0")
    check_device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    check_device("cuda:0")
    with pytest.raises(ValueError, match=r"--device cuda:1: only 1 CUDA device"):
        check_device("cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    root = standard_fixture(tmp_path / "spair")
    r = CliRunner().invoke(app, ["features", "--dataset", str(root), "--cache",
                                 str(tmp_path / "c"), "--device", "cuda", "--quiet"])
    assert r.exit_code == 2, r.output
    [line] = _error_lines(r.stderr)
    assert line.startswith("error: --device cuda: no CUDA GPU") and "--device cpu" in line
    assert not (tmp_path / "c").exists()


def test_messages_say_file_or_directory_as_it_is(tmp_path):
    root = standard_fixture(tmp_path / "spair")
    preds = _preds(tmp_path / "p.jsonl")

    def score(*args):
        return CliRunner().invoke(app, ["score", *args])

    r = score("--dataset", "spair", "--root", str(preds), "--predictions", str(preds))
    assert r.exit_code == 2
    assert _error_lines(r.stderr) == [f"error: SPair-71k root: {preds} is a file, "
                                      "not a directory"]
    r = score("--dataset", "spair", "--root", str(root), "--predictions", str(tmp_path))
    assert r.exit_code == 2
    assert _error_lines(r.stderr)[0].startswith(f"error: predictions file {tmp_path} is a "
                                                "directory; expected a JSON Lines file")
    binary = tmp_path / "p.bin"
    binary.write_bytes(b'{"pair": "x", "trg_kps": []}\n\x89PNG\r\n\x1a\n\xff\xfe')
    r = score("--dataset", "spair", "--root", str(root), "--predictions", str(binary))
    assert r.exit_code == 2
    assert _error_lines(r.stderr)[0].startswith(f"error: {binary}:2: not UTF-8 text")
    tss = tmp_path / "tss"
    (tss / "FG3DCar").mkdir(parents=True)
    r = score("--dataset", "tss", "--root", str(tss), "--predictions", str(preds))
    assert r.exit_code == 2
    assert f"TSS predictions {preds} is a file; expected a directory" in r.stderr


def test_directory_and_file_mixups_in_other_commands(tmp_path):
    from geocorr.atomic import write_bytes_atomic
    from geocorr.geometry.mesh import MeshError, load_mesh
    from geocorr.reconstruct.pipeline import dataset_images

    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    with pytest.raises(NotADirectoryError, match=r"dataset: .*f\.txt is a file, not a directory"):
        dataset_images(a_file, "test")
    with pytest.raises(MeshError, match="is a directory; give a .ply"):
        load_mesh(tmp_path)
    # renaming onto a directory: the error names the destination, not the (removed) temp file
    (tmp_path / "d").mkdir()
    with pytest.raises(OSError) as info:
        write_bytes_atomic(tmp_path / "d", b"x")
    assert info.value.filename == str(tmp_path / "d") and info.value.filename2 is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "f.txt"]
    # --json naming a directory is refused before scoring
    r = CliRunner().invoke(app, ["score", "--dataset", "spair", "--root", str(tmp_path / "no"),
                                 "--predictions", str(a_file), "--json", str(tmp_path)])
    assert r.exit_code == 2
    assert _error_lines(r.stderr) == [f"error: --json {tmp_path} is a directory; give a file path"]


def test_a_missing_optional_dependency_is_one_line_but_a_broken_geocorr_import_is_not():
    import typer

    from geocorr.cli._common import user_errors

    with pytest.raises(typer.Exit) as info, user_errors():
        raise ImportError("SD features need diffusers and transformers: pip install "
                          "'geocorr[models]'")
    assert info.value.exit_code == 2
    with pytest.raises(typer.Exit), user_errors():
        raise ModuleNotFoundError("No module named 'diffusers'", name="diffusers")
    with pytest.raises(ImportError, match="cannot import name"), user_errors():
        raise ImportError("cannot import name 'x' from 'geocorr.features'",
                          name="geocorr.features")

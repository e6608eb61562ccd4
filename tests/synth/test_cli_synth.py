import json

from typer.testing import CliRunner

from geocorr.cli import app


def test_synth_command_writes_and_refuses_non_empty(tmp_path):
    out = tmp_path / "ds"
    args = ["synth", "--out", str(out), "--seed", "2", "--categories", "car",
            "--images-per-category", "3", "--pairs-per-split", "2,1,1", "--size", "64",
            "--sim-flip-prob-elongated", "1.0", "--occluder-prob", "0", "--quiet"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "wrote 3 images" in res.output and "100% of reconstructions yaw-flipped" in res.output
    settings = json.loads((out / "Meta/settings.json").read_text())
    assert settings["seed"] == 2 and settings["pairs_per_split"] == [2, 1, 1]
    assert settings["scene"]["size"] == 64 and settings["categories"] == ["car"]
    assert len(list((out / "JPEGImages/car").glob("*.jpg"))) == 3
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "not empty" in res.output
    res = CliRunner().invoke(app, args[:-1] + ["--pairs-per-split", "1,2", "--overwrite"])
    assert res.exit_code == 2 and "pairs-per-split" in res.output

"""Defaults once: CLI options default to ``None`` and the settings dataclasses own the values.

Every option whose value a settings dataclass has a default for is declared
with ``None`` ("not given"), and its help text states the dataclass's value,
which these tests read from the dataclass itself (so a changed default that
the help does not follow fails here).
"""

from __future__ import annotations

import inspect
import math

import click
import pytest
import typer

from geocorr.adapter.settings import TrainSettings
from geocorr.cli import app
from geocorr.cli._common import canvas_size, given
from geocorr.cli._engine import engine_settings
from geocorr.engine import EngineSettings
from geocorr.evaluation.canvas import DEFAULT_CANVAS
from geocorr.evaluation.pck import DEFAULT_CANVAS as PCK_CANVAS
from geocorr.evaluation.predict import PredictSettings
from geocorr.features.registry import DEFAULT_BACKBONE

COMMANDS = typer.main.get_command(app).commands

# options whose number is the command's own, not a settings default
CLI_ONLY = {("eval", "max_pairs"): 0}


def _param(command: str, flag: str) -> click.Parameter:
    for p in COMMANDS[command].params:
        if flag in p.opts:
            return p
    raise AssertionError(f"{command} has no {flag}")


def _onoff(v: bool) -> str:
    return "on" if v else "off"


def _expected() -> list[tuple[str, str, str]]:
    from geocorr.data.synth.generate import SynthSettings, generate_dataset
    from geocorr.data.synth.scene import SceneSettings
    from geocorr.demo import DemoSettings
    from geocorr.features.classical import ClassicalSettings
    from geocorr.features.part_fusion import PartFusionSettings
    from geocorr.features.sd import SDSettings
    from geocorr.features.xfeat import XFeatSettings
    from geocorr.labels.runner import LabelSettings
    from geocorr.matching.images import ImageInputSettings
    from geocorr.matching.pair import MatchSettings
    from geocorr.reconstruct.pipeline import Stage1Settings
    from geocorr.reconstruct.refine import RefineSettings
    from geocorr.reconstruct.segmenter import Sam3Settings
    from geocorr.viewer.files import FilePairSettings

    t, e, lab = TrainSettings(), EngineSettings(), LabelSettings()
    r, st1, syn, scene, demo = (RefineSettings(), Stage1Settings(), SynthSettings(),
                                SceneSettings(), DemoSettings())
    assert XFeatSettings().grid_size == ClassicalSettings().grid_size
    assert len(set(syn.pairs_per_split)) == 1
    return [
        ("train", "--epochs", str(t.epochs)), ("train", "--lr", f"{t.lr:g}"),
        ("train", "--out-dim", str(t.out_dim)), ("train", "--max-points", str(t.max_points)),
        ("train", "--val-fraction", f"{t.val_fraction:g}"), ("train", "--seed", str(t.seed)),
        ("train", "--backbone", DEFAULT_BACKBONE),
        ("eval", "--size", str(DEFAULT_CANVAS)), ("eval", "--backbone", DEFAULT_BACKBONE),
        ("eval", "--predict", PredictSettings().method),
        ("eval", "--num-cpus-per-worker", f"{e.num_cpus_per_worker:g}"),
        ("eval", "--num-gpus-per-worker", f"{e.num_gpus_per_worker:g}"),
        ("score", "--size", str(DEFAULT_CANVAS)),
        ("features", "--backbone", DEFAULT_BACKBONE),
        ("features", "--grid-size", str(XFeatSettings().grid_size)),
        ("features", "--timestep", str(SDSettings().timestep)),
        ("match", "--backbone", DEFAULT_BACKBONE),
        ("match", "--max-side", str(ImageInputSettings().max_side)),
        ("view", "--backbone", ",".join(FilePairSettings().backbones)),
        ("view", "--max-side", str(ImageInputSettings().max_side)),
        ("match", "--tau", f"{MatchSettings().tau:g}"),
        *[(c, "--part-weight", f"{PartFusionSettings().part_weight:g}")
          for c in ("match", "eval", "pseudolabel", "demo", "view")],
        ("pseudolabel", "--filter", lab.filter), ("pseudolabel", "--backbone", lab.backbone),
        ("pseudolabel", "--split", lab.split),
        ("pseudolabel", "--pairs-per-category", str(lab.pairs.pairs_per_category)),
        ("pseudolabel", "--seed", str(lab.pairs.seed)),
        ("pseudolabel", "--delta", f"{lab.verify.delta:g}"),
        ("pseudolabel", "--theta", f"{lab.sphere.theta / math.pi:g} pi"),
        ("pseudolabel", "--stride", str(lab.match.stride)),
        ("reconstruct", "--sam3-model", Sam3Settings().model),
        ("reconstruct", "--reference-pool", st1.reference_pool),
        ("reconstruct", "--reference-max", str(st1.reference_max)),
        ("reconstruct", "--max-side", str(st1.refine.max_side)),
        ("refine", "--max-side", str(r.max_side)), ("refine", "--dt-steps", str(r.dt_steps)),
        ("refine", "--iou-steps", str(r.iou_steps)), ("refine", "--rotation", _onoff(r.rotation)),
        ("refine", "--fit-focal", _onoff(r.fit_focal)),
        ("synth", "--seed", str(syn.seed)),
        ("synth", "--images-per-category", str(syn.images_per_category)),
        ("synth", "--pairs-per-split", str(syn.pairs_per_split[0])),
        ("synth", "--views-per-instance", str(syn.views_per_instance)),
        ("synth", "--size", str(scene.size)),
        ("synth", "--occluder-prob", f"{scene.occluder_prob:g}"),
        ("synth", "--workers",
         str(inspect.signature(generate_dataset).parameters["workers"].default)),
        ("demo", "--seed", str(demo.seed)), ("demo", "--categories", ",".join(demo.categories)),
        ("demo", "--images-per-category", str(demo.images_per_category)),
        ("demo", "--test-pairs", str(demo.test_pairs)),
        ("demo", "--label-pairs", str(demo.labels.pairs.pairs_per_category)),
        ("demo", "--train-steps", str(demo.train.steps)),
        ("demo", "--sim-errors", demo.sim_errors), ("demo", "--sim-scale", f"{demo.sim_scale:g}"),
        ("demo", "--oracle-row", _onoff(demo.oracle_row)),
        ("demo", "--adapter-context", _onoff(demo.adapter_context)),
    ]


def test_help_states_the_settings_defaults():
    wrong = []
    for command, flag, value in _expected():
        p = _param(command, flag)
        if p.default is not None:
            wrong.append(f"{command} {flag}: default {p.default!r}, not None")
        if f"default {value}" not in " ".join((p.help or "").split()):
            wrong.append(f"{command} {flag}: help {p.help!r} does not say 'default {value}'")
    assert not wrong, "\n".join(wrong)


def test_no_command_restates_a_number():
    """Numeric options default to None (the settings' value), bar the command's own sentinels."""
    restated = [f"{name} {p.opts[0]}={p.default!r}"
                for name, cmd in COMMANDS.items() for p in cmd.params
                if isinstance(p.default, (int, float)) and not isinstance(p.default, bool)
                and CLI_ONLY.get((name, p.name)) != p.default]
    assert not restated, restated


def test_canvas_defined_once():
    assert PCK_CANVAS is DEFAULT_CANVAS == 840
    assert canvas_size(None) == DEFAULT_CANVAS
    assert canvas_size(0) is None and canvas_size(512) == 512
    with pytest.raises(ValueError, match="--size must be >= 0"):
        canvas_size(-1)


def test_not_given_means_the_settings_default():
    assert given(a=None, b=0, c=False, d="x") == {"b": 0, "c": False, "d": "x"}
    assert engine_settings("local", None, None, None, None, None) == EngineSettings()
    assert engine_settings("ray", None, 2, 0.5, None, None) == EngineSettings(
        engine="ray", workers=2, num_cpus_per_worker=0.5)
    with pytest.raises(ValueError, match="--num-gpus-per-worker must be >= 0"):
        engine_settings("ray", None, None, None, -1.0, None)


def test_cli_import_stays_light():
    """`geocorr --help` imports no numpy: the defaults it shows come from numpy-free modules."""
    import subprocess
    import sys

    code = "import sys, geocorr.cli; print('numpy' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "False"]

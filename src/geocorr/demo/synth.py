"""Demo step 1: the procedural benchmark (:func:`synth_step` -> :class:`DemoData`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from geocorr.data.synth.generate import SynthSettings, generate_dataset, with_error_level
from geocorr.demo.settings import DemoSettings

__all__ = ["DemoData", "synth_step", "ALL_PAIRS"]

ALL_PAIRS = 1_000_000
"""trn pair budget of the generated layout: every pair, so every trn image is listed."""


@dataclass(frozen=True)
class DemoData:
    """The benchmark the demo runs on.

    Attributes:
        root: the dataset folder (SPair layout + ``GroundTruth/``, docs/synth.md).
        level: simulated SAM3D / SAM3 error level it was generated at.
        scale: factor on that level's magnitudes.
        synth: the generator settings before the error level was applied
            (the oracle step regenerates the same images from them).
    """

    root: Path
    level: str
    scale: float
    synth: SynthSettings


def synth_step(out: str | Path, settings: DemoSettings, progress: bool = True,
               log: Callable[[str], None] = print) -> DemoData:
    """Generate the benchmark into ``out/data`` at the settings' error level.

    Every trn pair is listed (:data:`ALL_PAIRS`), so the layout names every
    trn image; ``settings.test_pairs`` test pairs per category.

    Args:
        out: the demo's output folder.
        settings: :class:`~geocorr.demo.settings.DemoSettings`.
        progress: rich progress bars.
        log: one-line status messages.

    Returns:
        :class:`DemoData`.
    """
    s = settings
    data = Path(out) / "data"
    log(f"[1/5] generating the procedural benchmark in {data}")
    synth = SynthSettings(seed=s.seed, categories=tuple(s.categories),
                          images_per_category=s.images_per_category,
                          pairs_per_split=(ALL_PAIRS, 0, s.test_pairs), preview=True)
    generate_dataset(data, with_error_level(synth, s.sim_errors, s.sim_scale),
                     progress=progress)
    return DemoData(root=data, level=s.sim_errors, scale=s.sim_scale, synth=synth)

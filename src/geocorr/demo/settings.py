"""What ``geocorr demo`` runs: :class:`DemoSettings`."""

from __future__ import annotations

from dataclasses import dataclass, field

from geocorr.adapter.train import TrainSettings
from geocorr.data.synth.errors import error_preset
from geocorr.evaluation.filter_study import default_label_settings, default_train_settings
from geocorr.features.part_fusion import PartFusionSettings
from geocorr.labels.runner import LabelSettings

__all__ = ["DemoSettings"]


@dataclass(frozen=True)
class DemoSettings:
    """What ``geocorr demo`` runs.

    Attributes:
        seed: dataset and sampling seed.
        categories: procedural categories (car: left/right + front/rear wheels;
            chair: four alike legs; dog: head vs tail, four legs).
        images_per_category: images per category (split by instance 60/15/25 %).
        test_pairs: test pairs per category (capped by what the split allows).
        fusion: how the rendered part descriptor is fused with XFeat and with
            the adapters (:class:`~geocorr.features.part_fusion.PartFusionSettings`
            defaults); the pseudo-labels use the same (it replaces ``labels.fusion``).
        alphas: PCK levels reported.
        figures: pair figures written into the report.
        labels: pseudo-label settings on the trn split (runner defaults, 40
            pairs per category; the pair-sampling seed is replaced by ``seed``).
            Its ``filter`` is ignored: every filter sees the same candidates.
        train: adapter training, the same for every filter (one seed, one
            budget): 300 steps, 128-d output, four dilated context blocks +
            the image-mean branch (``geocorr train``'s measured default for
            XFeat), DIY-SC's recipe otherwise.
        adapter_context: train the adapters on XFeat + image-wide context
            instead of XFeat (``FilterStudySettings.adapter_context``) and add
            the zero-shot row of that input. Off: at this data size it scored
            lower (``benchmarks/RESULTS.md``).
        adapter_fused_rows: also score each adapter fused with the rendered
            part descriptor (``fusion``).
        sim_errors: error level of the simulated SAM3D meshes and SAM3 masks
            (``oracle`` | ``realistic`` | ``hard``, docs/synth.md).
        sim_scale: factor on that level's magnitudes.
        oracle_row: above the ``oracle`` level, add the upper-bound row "3D only,
            oracle reconstruction" (the benchmark regenerated at ``oracle`` into
            ``OUT/oracle/``, stage 1 on its test images; costs one more synth
            and a stage 1 of the test images).
        sweep_figure: a PNG of PCK against error level
            (``benchmarks/error_sweep.py``) to copy into the report, or
            ``None``; a path that does not exist is noted in the report, not
            an error (the sweep is a separate, longer benchmark).
    """

    seed: int = 0
    categories: tuple[str, ...] = ("car", "chair", "dog")
    images_per_category: int = 24
    test_pairs: int = 40
    fusion: PartFusionSettings = field(default_factory=PartFusionSettings)
    alphas: tuple[float, ...] = (0.05, 0.10)
    figures: int = 3
    labels: LabelSettings = field(default_factory=default_label_settings)
    train: TrainSettings = field(default_factory=default_train_settings)
    adapter_fused_rows: bool = True
    adapter_context: bool = False
    sim_errors: str = "realistic"
    sim_scale: float = 1.0
    oracle_row: bool = True
    sweep_figure: str | None = None

    def __post_init__(self) -> None:
        if self.labels.backbone != "xfeat":
            raise ValueError(f"DemoSettings.labels.backbone must be 'xfeat' (the demo's 2D "
                             f"source and the adapters' input), got {self.labels.backbone!r}")
        if self.fusion.part_weight == 0:
            raise ValueError("DemoSettings.fusion.part_weight must be > 0: the demo compares "
                             "2D with 2D+3D rows")
        if self.figures < 0:
            raise ValueError(f"DemoSettings.figures must be >= 0, got {self.figures}")
        error_preset(self.sim_errors, self.sim_scale)  # names the bad level or scale

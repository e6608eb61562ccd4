"""Demo steps 2 and 2b: stage 1, and stage 1 at the oracle level (the upper-bound row).

:func:`stage1_step` runs stage 1 on every image of the test pairs and of the
trn split; :func:`oracle_step` regenerates the same images at the ``oracle``
error level and runs stage 1 on its test images. Both return a
:class:`Stage1Run`: the cache, its records and the records scored against
the benchmark's ground truth (:func:`score_stage1`, evaluation only: the
pipeline never reads ``GroundTruth/``). A user with their own stage-1 cache of
the demo's images builds a :class:`Stage1Run` with :func:`score_stage1` and
passes it to the later steps instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from geocorr.data.synth.generate import generate_dataset, with_error_level
from geocorr.demo.settings import DemoSettings
from geocorr.demo.synth import DemoData
from geocorr.evaluation.stage1_truth import Stage1Errors, stage1_errors
from geocorr.reconstruct.pipeline import dataset_images, run_stage1
from geocorr.reconstruct.reconstructor import simulated_reconstructor
from geocorr.reconstruct.segmenter import default_segmenter

__all__ = ["Stage1Run", "score_stage1", "stage1_summary", "stage1_line", "stage1_step",
           "oracle_step"]


@dataclass(frozen=True)
class Stage1Run:
    """Stage 1 on one benchmark, scored against its ground truth.

    Attributes:
        data: the benchmark root it ran on.
        cache: the stage-1 cache root (``<cat>/<stem>/`` with the mesh, camera,
            mask and ``record.json``).
        records: one ``record.json`` dict per image, in run order.
        errors: the records scored against ``data``'s ground truth.
    """

    data: Path
    cache: Path
    records: tuple[dict, ...]
    errors: Stage1Errors


def score_stage1(data: str | Path, cache: str | Path, records: Sequence[dict]) -> Stage1Run:
    """A :class:`Stage1Run` of an existing stage-1 cache (scored with ``stage1_errors``).

    Raises:
        ValueError: (from ``stage1_errors``) no record that is not an error.
    """
    data, cache = Path(data), Path(cache)
    return Stage1Run(data=data, cache=cache, records=tuple(records),
                     errors=stage1_errors(data, cache, records))


def stage1_summary(errors: Stage1Errors) -> dict[str, float | int]:
    """The ``stage1`` entry of ``results.json`` (and the report's stage-1 table).

    ``median_iou_before`` / ``median_iou_after``: the render of the mesh vs the
    mask stage 1 used; ``mask_iou_predicted_vs_true``: that mask vs the true one.
    """
    e = errors
    return {"images": e.images, "median_iou_before": e.render_iou_before,
            "median_iou_after": e.render_iou_after, "failed": e.failed,
            "yaw_accuracy": e.yaw_accuracy, "yaw_consistency": e.yaw_consistency,
            "rotation_before_deg": e.rotation_before_deg,
            "rotation_after_deg": e.rotation_after_deg,
            "canonical_frame_deg": e.canonical_frame_deg,
            "canonical_frame_mean_deg": e.canonical_frame_mean_deg,
            "mask_iou_predicted_vs_true": e.mask_iou_used_vs_true}


def stage1_line(errors: Stage1Errors) -> str:
    """One line of the stage-1 errors, as the demo prints it."""
    e = errors
    return (f"median render IoU {e.render_iou_before:.3f} -> {e.render_iou_after:.3f}; "
            f"rotation error (mod 90°k) {e.rotation_before_deg:.1f}° -> "
            f"{e.rotation_after_deg:.1f}°; canonical frame {e.canonical_frame_deg:.1f}° "
            f"median, {e.canonical_frame_mean_deg:.1f}° mean; yaw correct "
            f"{e.yaw_accuracy:.0%}, consistent within category {e.yaw_consistency:.0%}; "
            f"mask IoU predicted vs true {e.mask_iou_used_vs_true:.3f}")


def _stage1(data: Path, images: Sequence[tuple[str, str]], cache: Path,
            progress: bool) -> Stage1Run:
    records = run_stage1(data, images, default_segmenter(data), simulated_reconstructor(data),
                         cache, progress=progress)
    return score_stage1(data, cache, records)


def stage1_step(out: str | Path, data: DemoData, progress: bool = True,
                log: Callable[[str], None] = print) -> Stage1Run:
    """Stage 1 (dataset masks, simulated reconstructions, refinement, yaw vote) into ``out/stage1``.

    Runs on every image of the test pairs and of the trn split.

    Returns:
        :class:`Stage1Run`.
    """
    cache = Path(out) / "stage1"
    images = sorted(set(dataset_images(data.root, "test")) | set(dataset_images(data.root, "trn")))
    log(f"[2/5] stage 1 (refine + yaw vote) on {len(images)} images (test + trn)")
    return _stage1(data.root, images, cache, progress)


def oracle_step(out: str | Path, data: DemoData, settings: DemoSettings, progress: bool = True,
                log: Callable[[str], None] = print) -> Stage1Run | None:
    """The upper bound: the images again at ``oracle`` in ``out/oracle/``, stage 1 of the test ones.

    Returns:
        :class:`Stage1Run` of ``out/oracle/data`` (cache ``out/oracle/stage1``),
        or ``None`` when ``settings.oracle_row`` is off or ``data`` already is
        at ``oracle`` x1 (its own 3D-only row is the upper bound).
    """
    if not settings.oracle_row or (data.level, data.scale) == ("oracle", 1.0):
        return None
    root = Path(out) / "oracle"
    oracle_data, cache = root / "data", root / "stage1"
    log(f"[2/5] oracle reconstructions of the test images (upper-bound row) in {root}")
    generate_dataset(oracle_data, with_error_level(replace(data.synth, preview=False), "oracle"),
                     progress=progress)
    return _stage1(oracle_data, dataset_images(oracle_data, "test"), cache, progress)

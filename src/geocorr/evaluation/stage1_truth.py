"""Stage 1 scored against the procedural benchmark's ground truth (EVALUATION ONLY).

What stage 1 gets wrong on ``geocorr synth`` data, measured from its cache and
``GroundTruth/`` (the pipeline never reads the latter; only scorers such as
``geocorr demo``'s do):

* **rotation before**: the reconstructor's camera (``predicted_camera.json``,
  the simulated SAM 3D pose) against the true camera, modulo the 90°·k yaw
  flips (the part of the error the yaw vote is meant to fix is left out);
* **rotation after**: the final camera (``camera.json``) the same way: what
  stage 1's refinement leaves of the continuous rotation error (a
  scale/translation refinement leaves all of it);
* **canonical frame**: the final camera against the true one *without* the
  modulo: the canonicalized mesh's frame error, yaw flips included (a wrong
  quarter turn scores 90° or 180°);
* **yaw**: the chosen ``k`` equals the simulator's true ``k`` (absolute) or
  the category's most common residual (consistent within category: matching
  needs the meshes of a category to agree, not to match our axes);
* **mask IoU**: the mask stage 1 used (``mask.png``: ``PredictedMasks/`` by
  default) against the true mask (``Segmentation/``), and the render of the
  mesh against the mask used, before and after refinement (``record.json``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Stage1Errors", "stage1_errors"]


@dataclass(frozen=True)
class Stage1Errors:
    """Stage-1 errors against the ground truth, over ``images`` images.

    Angles in degrees, medians over images unless named otherwise.

    Attributes:
        images: images scored.
        rotation_before_deg: predicted camera vs true, modulo 90°·k yaw.
        rotation_after_deg: final camera vs true, modulo 90°·k yaw.
        canonical_frame_deg: final camera vs true, no modulo (yaw flips count).
        canonical_frame_mean_deg: the same, mean over images (flips weigh in).
        yaw_accuracy: fraction of images whose chosen ``k`` is the true one.
        yaw_consistency: fraction whose residual ``(true k - k) mod 4`` is their
            category's most common residual.
        mask_iou_used_vs_true: IoU of the mask stage 1 used vs the true mask.
        render_iou_before: IoU of the predicted mesh's render vs the mask used.
        render_iou_after: the same after refinement.
        failed: images whose refinement was flagged as failed, or whose input
            was bad (``run_stage1`` records them with ``"error"`` and caches
            nothing; they are not in the other figures).
    """

    images: int
    rotation_before_deg: float
    rotation_after_deg: float
    canonical_frame_deg: float
    canonical_frame_mean_deg: float
    yaw_accuracy: float
    yaw_consistency: float
    mask_iou_used_vs_true: float
    render_iou_before: float
    render_iou_after: float
    failed: int


def stage1_errors(data: str | Path, cache: str | Path, records: Sequence[dict]) -> Stage1Errors:
    """Score stage-1 ``records`` (``run_stage1``'s) of ``cache`` against ``data``'s ground truth.

    Args:
        data: the procedural benchmark (with ``GroundTruth/`` and ``Segmentation/``).
        cache: the stage-1 cache the records were written to.
        records: one ``record.json`` dict per image (``category``, ``stem``, ``k``,
            ``refine``), at least one that is not an ``"error"`` record.

    Raises:
        ValueError: no records.
        FileNotFoundError: a ground-truth, mask or camera file is missing (named).
    """
    from geocorr.data.images import read_mask
    from geocorr.data.paths import inside
    from geocorr.data.synth.groundtruth import load_groundtruth
    from geocorr.data.synth.mask_errors import mask_iou
    from geocorr.data.synth.simulator import rotation_error_deg
    from geocorr.geometry.camera import load_camera

    bad = sum("error" in r for r in records)
    records = [r for r in records if "error" not in r]
    if not records:
        raise ValueError("stage1_errors: no finished stage-1 records to score")
    data, cache = Path(data), Path(cache)
    before, after, frame, ious = [], [], [], []
    residual: dict[str, list[int]] = {}
    for r in records:
        cat, stem = r["category"], r["stem"]
        where = f"stage-1 record {cat}/{stem}"
        gt = load_groundtruth(data, cat, stem)
        # the cache layout of geocorr.reconstruct.pipeline (read directly: evaluation does not
        # import the stage-1 package)
        predicted, final = (load_camera(inside(cache, cat, stem, name, source=where,
                                               what="camera"))
                            for name in ("predicted_camera.json", "camera.json"))
        used_mask = read_mask(inside(cache, cat, stem, "mask.png", source=where, what="mask"))
        before.append(rotation_error_deg(gt.camera.R, predicted.R))
        after.append(rotation_error_deg(gt.camera.R, final.R))
        frame.append(rotation_error_deg(gt.camera.R, final.R, modulo_yaw=False))
        true_mask = read_mask(inside(data, "Segmentation", cat, f"{stem}.png", source=where,
                                     what="true mask"))
        ious.append(mask_iou(np.asarray(used_mask, bool), true_mask))
        residual.setdefault(cat, []).append((gt.sim_true_k - int(r["k"])) % 4)
    flat = [x for v in residual.values() for x in v]
    consistent = sum(Counter(v).most_common(1)[0][1] for v in residual.values())
    return Stage1Errors(
        images=len(records),
        rotation_before_deg=float(np.median(before)),
        rotation_after_deg=float(np.median(after)),
        canonical_frame_deg=float(np.median(frame)),
        canonical_frame_mean_deg=float(np.mean(frame)),
        yaw_accuracy=float(np.mean([x == 0 for x in flat])),
        yaw_consistency=consistent / len(flat),
        mask_iou_used_vs_true=float(np.median(ious)),
        render_iou_before=float(np.median([r["refine"]["iou_before"] for r in records])),
        render_iou_after=float(np.median([r["refine"]["iou_after"] for r in records])),
        failed=bad + int(sum(bool(r.get("failed")) for r in records)))

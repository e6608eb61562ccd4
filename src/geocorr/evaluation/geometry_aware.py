"""The geometry-aware subset of a keypoint benchmark: left/right and repeated parts.

Keypoints come in groups of the same part (left/right eye, the four wheels).
For a pair and a group ``G``: ``V_both`` = members visible in both images,
``V_trg`` = members visible in the target. If ``|V_trg| >= 2`` and
``|V_both| >= 1``, every keypoint of ``V_both`` is *geometry-aware*: a 2D
matcher could land on its twin. PCK on the subset is per-image PCK over those
keypoints only, averaged over the pairs that have at least one.

The group tables are data of the datasets: :mod:`geocorr.data.keypoint_groups`
(``SPAIR_GROUPS``, ``AP10K_GROUPS``), attached to each category by the readers.
"""

from __future__ import annotations

import numpy as np

from geocorr.data.keypoint_groups import Groups

__all__ = ["geometry_aware_mask"]


def geometry_aware_mask(kps_ids: np.ndarray, trg_visible_ids: np.ndarray | None,
                        groups: Groups) -> np.ndarray:
    """Which keypoints of a pair belong to the geometry-aware subset.

    Args:
        kps_ids: ``(N,)`` ids of the pair's keypoints (visible in both images).
        trg_visible_ids: ``(M,)`` ids visible in the target image; ``None`` uses
            ``kps_ids`` instead (a subset of the true set, so fewer keypoints qualify).
        groups: same-part groups of the category.

    Returns:
        ``(N,)`` bool, True for keypoints in a group with ``|V_trg| >= 2`` and
        ``|V_both| >= 1`` (the second holds for any member of the pair).
    """
    ids = np.asarray(kps_ids, dtype=np.int64).reshape(-1)
    trg = set(int(i) for i in (ids if trg_visible_ids is None else
                                np.asarray(trg_visible_ids).reshape(-1)))
    trg.update(int(i) for i in ids)  # visible in both implies visible in the target
    aware: set[int] = set()
    for g in groups:
        if sum(1 for i in g if i in trg) >= 2:
            aware.update(g)
    return np.array([int(i) in aware for i in ids], dtype=bool)

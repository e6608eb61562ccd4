"""The geometry-aware subset of a keypoint benchmark: left/right and repeated parts.

Keypoints come in groups of the same part (left/right eye, the four wheels).
For a pair and a group ``G``: ``V_both`` = members visible in both images,
``V_trg`` = members visible in the target. If ``|V_trg| >= 2`` and
``|V_both| >= 1``, every keypoint of ``V_both`` is *geometry-aware*: a 2D
matcher could land on its twin. PCK on the subset is per-image PCK over those
keypoints only, averaged over the pairs that have at least one.

The group tables are public facts (SPair-71k's keypoint numbering 0..29,
AP-10K's 0..16), written here as data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

__all__ = ["SPAIR_GROUPS", "AP10K_GROUPS", "geometry_aware_mask", "normalize_groups",
           "GROUPS_FROM_META", "GROUPS_SPAIR", "GROUPS_AP10K", "GROUPS_NONE"]

Groups = tuple[tuple[int, ...], ...]

_CAT_DOG: Groups = ((2, 3), (9, 10, 11, 12))
_COW_SHEEP: Groups = ((2, 3), (9, 10, 11, 12), (15, 16, 17, 18), (19, 20))

SPAIR_GROUPS: Mapping[str, Groups] = {
    "aeroplane": ((4, 5), (6, 7), (8, 9), (10, 11), (12, 13), (14, 15), (16, 17), (18, 19),
                  (20, 21)),
    "bicycle": ((2, 3), (6, 7), (9, 10)),
    "bird": ((1, 2), (10, 11), (12, 13), (14, 15)),
    "boat": ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12)),
    "bottle": ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9)),
    "bus": ((0, 1), (2, 3, 5, 6), (4, 7), (10, 13, 20, 23), (11, 14, 21, 24), (12, 15, 22, 25),
            (16, 17, 26, 27), (18, 19, 28, 29)),
    "car": ((0, 1), (2, 3, 6, 7), (4, 8), (5, 9), (10, 13, 20, 23), (11, 14, 21, 24),
            (12, 15, 22, 25), (16, 17, 26, 27), (18, 19, 28, 29)),
    "cat": _CAT_DOG,
    "dog": _CAT_DOG,
    "chair": ((0, 1), (2, 3), (4, 5, 6, 7), (8, 9), (10, 11), (12, 13)),
    "cow": _COW_SHEEP,
    "sheep": _COW_SHEEP,
    "horse": ((2, 3), (10, 11, 12, 13), (16, 17, 18, 19)),
    "motorbike": ((0, 1), (2, 3)),
    "person": ((8, 9), (10, 11), (12, 13), (14, 15), (16, 17), (18, 19)),
    "pottedplant": ((0, 1, 2, 3), (4, 5), (6, 8)),
    "train": ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11), (12, 13), (14, 15), (16, 17)),
    "tvmonitor": ((0, 2, 4, 6), (1, 3, 5, 7), (8, 10, 12, 14), (9, 11, 13, 15)),
}
"""SPair-71k's same-part groups per category (original keypoint ids 0..29)."""

AP10K_GROUPS: Groups = ((5, 8), (6, 9, 12, 15), (7, 10, 13, 16), (11, 14))
"""AP-10K's same-part groups (shoulders, elbows/knees, paws, hips; ids 0..16), every species."""

# Where a category's group table came from (reported per category by eval and score).
GROUPS_FROM_META = "Meta/categories.json"
GROUPS_SPAIR = "SPair-71k built-in"
GROUPS_AP10K = "AP-10K built-in"
GROUPS_NONE = "none"


def normalize_groups(groups: Iterable[Iterable[int]], where: str = "groups") -> Groups:
    """Validate groups as tuples of distinct non-negative ints; ``where`` names the source."""
    out = []
    for g in groups:
        try:
            members = tuple(int(i) for i in g)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: a group must be a list of integer ids, got {g!r}") from None
        if any(i < 0 for i in members) or len(set(members)) != len(members):
            raise ValueError(f"{where}: group {list(members)} has negative or repeated ids")
        out.append(members)
    return tuple(out)


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

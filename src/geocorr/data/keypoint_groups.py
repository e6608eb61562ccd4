"""Same-part keypoint groups of the keypoint benchmarks, written as data.

Keypoints come in groups of the same part (left/right eye, the four wheels);
:mod:`geocorr.evaluation.geometry_aware` uses them to pick the keypoints a 2D
matcher could confuse with a twin. The tables are public facts (SPair-71k's
keypoint numbering 0..29, AP-10K's 0..16); the dataset readers attach them to
each category, and a dataset's own ``Meta/categories.json`` may override them
(validated by :func:`normalize_groups`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["Groups", "SPAIR_GROUPS", "AP10K_GROUPS", "normalize_groups",
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

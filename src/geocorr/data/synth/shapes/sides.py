"""Mirrored left/right pairs of parts and keypoints (left = +Y, listed first).

Right parts are mirrored copies of the left ones (``PartSpec.mirror``), so a
category lists each pair once through these helpers.
"""

from __future__ import annotations

from geocorr.data.synth.shapes.assemble import KeypointSpec

__all__ = ["SIDES", "lr_keypoints", "lr_parts"]

#: the two sides of a mirrored pair, in the order parts and keypoints are listed.
SIDES = ("left", "right")


def lr_keypoints(name: str, part: str, template: tuple[float, float, float]) -> list[KeypointSpec]:
    """``name_left`` on ``part_left`` and ``name_right`` on ``part_right``, same template point.

    Right parts are mirrored copies of the left ones, so one template point
    names the mirror-image spot on both.
    """
    return [KeypointSpec(f"{name}_{s}", f"{part}_{s}", template) for s in SIDES]


def lr_parts(name: str, material: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """The ``PARTS`` entries ``(name_left, material)`` and ``(name_right, material)``."""
    return (f"{name}_left", material), (f"{name}_right", material)

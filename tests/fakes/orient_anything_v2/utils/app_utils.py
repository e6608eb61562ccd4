"""Stand-in for Orient Anything V2's ``utils/app_utils.py`` (current layout).

In the repository's current release this module holds the app helpers
(background removal, rotation conversions) but *not* ``inf_single_case``,
which lives in the top-level ``inference.py``.
"""

from __future__ import annotations

__all__ = ["background_preprocess"]


def background_preprocess(input_image, do_remove_background):
    """The repository removes the background with rembg; the stand-in's inputs are on white."""
    if do_remove_background:
        raise ValueError("the stand-in has no rembg; pass images on white")
    return input_image

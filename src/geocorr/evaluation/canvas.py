"""The scoring canvas: one constant, free of numpy so that ``geocorr --help`` can read it.

:mod:`geocorr.evaluation.pck` (which re-exports it), the scorers and the
``--size`` options of ``geocorr eval`` / ``geocorr score`` default to it.
"""

from __future__ import annotations

__all__ = ["DEFAULT_CANVAS"]

DEFAULT_CANVAS = 840
"""Side ``S`` of the resize-and-pad scoring canvas, in pixels.

840 = 60 patches of DINOv2's 14 px: the canvas the published SPair-71k /
PF-PASCAL / AP-10K numbers of DINOv2-based methods were scored on, so scores
here compare with theirs. The resize is isotropic, so the choice moves PCK
only by float rounding; ``size=None`` scores in original pixels instead.
Every scorer and command (``geocorr eval`` / ``score --size``) defaults to it.
"""

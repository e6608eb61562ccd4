"""Orientation estimators: image of one object -> its apparent azimuth.

The interface (:class:`OrientationEstimator`) is what the yaw vote needs: given
an ``(H, W, 3)`` uint8 image of an object on a white background, return the
azimuth under which the camera sees it (our convention, Orient Anything's:
0 = the object faces the camera, growing as the camera orbits
counter-clockwise seen from above, towards the object's left), optionally a
confidence and a symmetry order.

Implementations:

* :class:`OrientAnythingV2` — the paper's estimator, imported from a local
  clone of SpatialVision/Orient-Anything-V2 on first use.
* :class:`~geocorr.reconstruct.template.TemplateOrientationEstimator` — a CPU
  estimator comparing the image against renders of a category reference mesh.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from geocorr.repo_module import load_module_file

__all__ = ["OrientationEstimate", "OrientationEstimator", "OrientAnythingV2"]


@dataclass(frozen=True)
class OrientationEstimate:
    """One estimator answer.

    Attributes:
        azimuth_deg: apparent azimuth in degrees, ``[0, 360)``.
        confidence: optional score, larger = surer (estimator-specific scale).
        symmetry: optional symmetry order: 1 clear front; 0 no front (azimuth
            meaningless); 2 or 4 azimuth ambiguous modulo 180 or 90 degrees.
    """

    azimuth_deg: float
    confidence: float | None = None
    symmetry: int | None = None


@runtime_checkable
class OrientationEstimator(Protocol):
    """Image of one object on white -> :class:`OrientationEstimate`."""

    name: str

    def estimate(self, image: np.ndarray) -> OrientationEstimate:
        """Estimate the azimuth of the object in an ``(H, W, 3)`` uint8 image."""
        ...


_OA_INSTALL = (
    "Orient Anything V2 is not importable. Clone "
    "https://github.com/SpatialVision/Orient-Anything-V2, install its requirements.txt in "
    "this environment, download Viglong/OriAnyV2_ckpt demo_ckpts/rotmod_realrotaug_best.pt "
    "and pass repo_path=<clone> and checkpoint=<.pt>."
)


class OrientAnythingV2:
    """Adapter for Orient Anything V2 (lazy import, local checkpoint only).

    The model answers with whole-degree azimuth bins and a symmetry order
    ``alpha`` in {0, 1, 2, 4}; it returns no confidence, so
    :attr:`OrientationEstimate.confidence` is ``None``. Its object frame (X
    front, Y left, Z up) and azimuth convention are ours, so no conversion is
    applied. Input: the render on white (the package resizes to 518 px and
    pads with white itself).

    Args:
        repo_path: local clone of SpatialVision/Orient-Anything-V2.
        checkpoint: path to ``rotmod_realrotaug_best.pt`` (a state dict).
        device: torch device for the model.
    """

    name = "orient_anything_v2"

    def __init__(self, repo_path: str | Path, checkpoint: str | Path,
                 device: str = "cpu") -> None:
        self.repo_path = Path(repo_path)
        self.checkpoint = Path(checkpoint)
        self.device = device
        self._model = None
        self._infer = None

    def _load(self) -> None:
        import torch

        if not (self.repo_path / "vision_tower.py").is_file():
            raise FileNotFoundError(f"{self.repo_path}: no vision_tower.py here. {_OA_INSTALL}")
        if not self.checkpoint.is_file():
            raise FileNotFoundError(f"{self.checkpoint}: checkpoint not found. {_OA_INSTALL}")
        root = self.repo_path.resolve()
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        try:
            from vision_tower import VGGT_OriAny_Ref
        except ImportError as exc:
            raise ImportError(f"{_OA_INSTALL} ({exc})") from exc
        # inf_single_case lives in the repository's top-level inference.py (older
        # releases: utils/app_utils.py). That file is loaded under a private name:
        # SAM 3D Objects' notebook/inference.py is also a top-level `inference`.
        infer = None
        try:
            if (root / "inference.py").is_file():
                infer = getattr(load_module_file(root / "inference.py", root, "oa_inference"),
                                "inf_single_case", None)
            if infer is None:
                from utils.app_utils import inf_single_case as infer
        except ImportError as exc:
            raise ImportError(f"{_OA_INSTALL} ({exc})") from exc
        dtype = torch.bfloat16 if self.device != "cpu" else torch.float32
        model = VGGT_OriAny_Ref(out_dim=900, dtype=dtype, nopretrain=True)
        state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        self._model = model.eval().to(self.device)
        self._infer = infer

    def estimate(self, image: np.ndarray) -> OrientationEstimate:
        """Azimuth and symmetry order of the object in an ``(H, W, 3)`` uint8 image."""
        from PIL import Image

        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8, got {img.shape} {img.dtype}")
        if self._model is None:
            self._load()
        out = self._infer(self._model, Image.fromarray(img), None)
        az = _scalar(out["ref_az_pred"]) % 360.0
        alpha = int(round(_scalar(out["ref_alpha_pred"])))
        return OrientationEstimate(azimuth_deg=az, confidence=None, symmetry=alpha)


def _scalar(value) -> float:
    """First element of a tensor/array/number as a Python float."""
    import torch

    return float(torch.as_tensor(value).reshape(-1)[0].detach().cpu())

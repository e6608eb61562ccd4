"""Segmenters: image -> object mask (method.md step 1).

The interface is :class:`Segmenter`. Implementations:

* :class:`DatasetMasks` — the dataset's own masks, ``DIR/Segmentation/<cat>/<stem>.png``
  (SPair-71k's annotations; the procedural benchmark's true masks): any
  non-zero pixel (grey level or palette index) is object.
* :class:`PredictedMasks` — the procedural benchmark's simulated SAM 3 masks,
  ``DIR/PredictedMasks/<cat>/<stem>.png`` (errors like SAM 3's, written
  beside the true masks, which are for scoring only).
* :func:`default_segmenter` — :class:`PredictedMasks` where the dataset has
  them (the procedural benchmark), else :class:`DatasetMasks` (SPair-71k).
* :class:`Sam3Segmenter` — SAM3 through transformers (``Sam3Model`` /
  ``Sam3Processor``) prompted with the category name; one instance is chosen
  per image by :func:`select_instance` (highest score, or best overlap with a
  given box).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from geocorr.data.images import read_mask
from geocorr.data.paths import inside

__all__ = ["Segmenter", "DatasetMasks", "PredictedMasks", "default_segmenter", "Sam3Settings",
           "Sam3Segmenter", "select_instance", "box_iou"]


@runtime_checkable
class Segmenter(Protocol):
    """Image -> ``(H, W)`` bool mask of the category's object."""

    name: str

    def segment(self, image: np.ndarray, category: str, stem: str,
                bbox: tuple[float, float, float, float] | None = None) -> np.ndarray:
        """Mask ``(H, W)`` bool of the object in ``image`` (``(H, W, 3)`` uint8).

        ``bbox`` (x1, y1, x2, y2) pixels, when known, picks the instance.
        """
        ...


class DatasetMasks:
    """Masks shipped with the dataset: ``<root>/Segmentation/<category>/<stem>.png``.

    Args:
        dataset_root: the dataset folder (holding ``Segmentation/``).
    """

    name = "dataset"
    folder = "Segmentation"

    def __init__(self, dataset_root: str | Path) -> None:
        self.dataset_root = Path(dataset_root)
        self.root = self.dataset_root / self.folder

    def path(self, category: str, stem: str) -> Path:
        """``<root>/<folder>/<category>/<stem>.png``; a ``ValueError`` if it leads outside."""
        return inside(self.dataset_root, self.folder, category, f"{stem}.png",
                      source=f"image {category}/{stem}", what="mask")

    def segment(self, image: np.ndarray, category: str, stem: str,
                bbox: tuple[float, float, float, float] | None = None) -> np.ndarray:
        """Read the mask PNG (rule: :func:`geocorr.data.images.read_mask`); errors name the file."""
        p = self.path(category, stem)
        mask = read_mask(p)
        H, W = np.asarray(image).shape[:2]
        if mask.shape != (H, W):
            raise ValueError(f"{p}: mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                             f"{W}x{H}")
        return mask


class PredictedMasks(DatasetMasks):
    """The procedural benchmark's simulated SAM 3 masks: ``<root>/PredictedMasks/<cat>/<stem>.png``.

    Args:
        dataset_root: the dataset folder (holding ``PredictedMasks/``).
    """

    name = "predicted"
    folder = "PredictedMasks"


def default_segmenter(dataset_root: str | Path) -> DatasetMasks:
    """The pipeline's default mask source for a dataset folder.

    :class:`PredictedMasks` when ``dataset_root/PredictedMasks/`` exists (the
    procedural benchmark: masks with SAM 3-like errors; its true masks in
    ``Segmentation/`` are for scoring), otherwise :class:`DatasetMasks`
    (SPair-71k's own masks).
    """
    if (Path(dataset_root) / PredictedMasks.folder).is_dir():
        return PredictedMasks(dataset_root)
    return DatasetMasks(dataset_root)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes ``a (N, 4)`` with one box ``b (4,)``, all ``(x1, y1, x2, y2)``; ``(N,)``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(4)
    ix = np.clip(np.minimum(a[:, 2], b[2]) - np.maximum(a[:, 0], b[0]), 0, None)
    iy = np.clip(np.minimum(a[:, 3], b[3]) - np.maximum(a[:, 1], b[1]), 0, None)
    inter = ix * iy
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = max(b[2] - b[0], 0) * max(b[3] - b[1], 0)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def select_instance(scores: np.ndarray, boxes: np.ndarray, masks: np.ndarray,
                    bbox: tuple[float, float, float, float] | None = None) -> int | None:
    """Pick one instance among SAM3's detections.

    Args:
        scores: ``(N,)`` detection scores.
        boxes: ``(N, 4)`` xyxy pixel boxes.
        masks: ``(N, H, W)`` binary masks (empty masks are never chosen).
        bbox: optional dataset box: choose the best box IoU (ties by score).

    Returns:
        Index of the chosen instance, or ``None`` when there is none with a
        non-empty mask (or, with ``bbox``, none overlapping it).
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    n = len(scores)
    if n == 0:
        return None
    masks = np.asarray(masks).reshape(n, -1)
    valid = masks.any(axis=1)
    if not valid.any():
        return None
    if bbox is not None:
        ious = np.where(valid, box_iou(boxes, bbox), -1.0)
        if ious.max() <= 0:
            return None
        cand = np.flatnonzero(np.isclose(ious, ious.max()))
        return int(cand[np.argmax(scores[cand])])
    return int(np.argmax(np.where(valid, scores, -np.inf)))


@dataclass
class Sam3Settings:
    """Settings of :class:`Sam3Segmenter`.

    Attributes:
        model: local checkpoint folder or hub id. ``"facebook/sam3"`` (gated).
        local_files_only: never touch the network (default ``True``: the
            checkpoint must already be on disk or in the HF cache).
        threshold: detection score threshold (models.md's example: 0.5).
        mask_threshold: mask-probability threshold (0.5).
        prompt: prompt template, ``{category}`` replaced by the category name.
    """

    model: str = "facebook/sam3"
    local_files_only: bool = True
    threshold: float = 0.5
    mask_threshold: float = 0.5
    prompt: str = "{category}"


class Sam3Segmenter:
    """SAM3 (transformers) prompted by the category name.

    Args:
        settings: see :class:`Sam3Settings`.
        device: torch device.
    """

    name = "sam3"

    def __init__(self, settings: Sam3Settings | None = None, device: str = "cpu") -> None:
        self.settings = settings or Sam3Settings()
        self.device = device
        self._model = None
        self._processor = None

    def _load(self) -> None:
        s = self.settings
        looks_local = s.model.startswith((".", "/", "~")) or Path(s.model).exists()
        if looks_local and not Path(s.model).expanduser().is_dir():
            raise FileNotFoundError(
                f"SAM3 checkpoint folder not found: {s.model}. Download the gated facebook/sam3 "
                "repository (huggingface-cli download facebook/sam3 --local-dir DIR) and pass "
                "DIR.")
        try:
            from transformers import Sam3Model, Sam3Processor
        except (ImportError, ModuleNotFoundError) as exc:
            raise ImportError(
                "SAM3 needs transformers>=5 with torchvision (pip install 'geocorr[models]' and "
                f"a torchvision build matching your torch): {exc}") from exc
        try:
            self._processor = Sam3Processor.from_pretrained(
                s.model, local_files_only=s.local_files_only)
            self._model = Sam3Model.from_pretrained(
                s.model, local_files_only=s.local_files_only).eval().to(self.device)
        except ImportError as exc:  # e.g. the image processor's torchvision
            raise ImportError(
                "SAM3's processor needs torchvision matching your torch (pip install "
                f"torchvision): {exc}") from exc
        except (OSError, ValueError) as exc:
            raise FileNotFoundError(
                f"SAM3 checkpoint {s.model!r} not found locally: download the gated "
                "facebook/sam3 repository (huggingface-cli download facebook/sam3 --local-dir "
                "DIR) and pass its folder, or allow downloads with local_files_only=False "
                f"({exc})") from None

    def detect(self, image: np.ndarray, category: str) -> dict[str, np.ndarray]:
        """All instances: ``scores (N,)``, ``boxes (N, 4)`` xyxy, ``masks (N, H, W)`` bool."""
        import torch

        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"image must be (H, W, 3), got {img.shape}")
        if self._model is None:
            self._load()
        text = self.settings.prompt.format(category=category)
        inputs = self._processor(images=img.astype(np.uint8), text=text, return_tensors="pt")
        inputs = inputs.to(self.device)
        with torch.no_grad():
            out = self._model(**inputs)
        res = self._processor.post_process_instance_segmentation(
            out, threshold=self.settings.threshold, mask_threshold=self.settings.mask_threshold,
            target_sizes=inputs.get("original_sizes").tolist())[0]
        return {"scores": res["scores"].float().cpu().numpy(),
                "boxes": res["boxes"].float().cpu().numpy().reshape(-1, 4),
                "masks": res["masks"].cpu().numpy().astype(bool).reshape(-1, *img.shape[:2])}

    def segment(self, image: np.ndarray, category: str, stem: str,
                bbox: tuple[float, float, float, float] | None = None) -> np.ndarray:
        """The chosen instance's mask; all-False when SAM3 finds nothing."""
        det = self.detect(image, category)
        i = select_instance(det["scores"], det["boxes"], det["masks"], bbox)
        if i is None:
            return np.zeros(np.asarray(image).shape[:2], bool)
        return det["masks"][i]

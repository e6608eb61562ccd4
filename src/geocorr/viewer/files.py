"""A viewer pair from two of the user's image files (what ``geocorr view`` runs).

Images (with their masks and cameras) are read at the working resolution of
``geocorr match`` (:func:`geocorr.matching.images.load_working_image`); the
page's pixels are those of the working images. Meshes come from
``--mesh/--camera`` per image or from a stage-1 cache (the image's folder
name is its category, its file stem the cache entry, as ``geocorr eval
--stage1`` reads it). An adapter run's map is computed from the files by
:func:`geocorr.evaluation.adapter_predict.adapter_feature_source` and put on
the working image's canvas (same canvas content, the transform of the
working size).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geocorr.data.images import read_mask
from geocorr.evaluation.adapter_predict import adapter_backbone_names, adapter_feature_source
from geocorr.features.base import FeatureMap
from geocorr.features.cache import backbone_inputs
from geocorr.features.fusion import FusionSettings, fuse
from geocorr.features.part_fusion import PartFusionSettings
from geocorr.features.registry import make_backbones
from geocorr.geometry.image_transform import resize_and_pad
from geocorr.matching.images import ImageInputSettings, MeshView, load_working_image
from geocorr.viewer.overlay import mesh_overlay
from geocorr.viewer.page import ViewerImage, ViewerKeypoints, ViewerPair
from geocorr.viewer.sources import MeshInput, viewer_maps

__all__ = ["FilePairSettings", "pair_from_files"]


@dataclass(frozen=True)
class FilePairSettings:
    """What ``geocorr view`` computes for a pair of files.

    Attributes:
        backbones: 2D backbone names; several are fused with equal weights
            (:func:`geocorr.features.fusion.fuse`).
        weights: backbone name -> weights path (``--weights``).
        fusion: how the rendered part descriptor is fused.
        inputs: working resolution (:class:`~geocorr.matching.images.ImageInputSettings`).
        device: where backbones and the adapter run.
    """

    backbones: tuple[str, ...] = ("xfeat",)
    weights: Mapping[str, str] = field(default_factory=dict)
    fusion: PartFusionSettings = field(default_factory=PartFusionSettings)
    inputs: ImageInputSettings = field(default_factory=ImageInputSettings)
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.backbones:
            raise ValueError("FilePairSettings.backbones: at least one backbone is needed")


def _resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if mask.shape[::-1] == size:
        return mask.astype(bool)
    from PIL import Image

    return np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(
        size, Image.NEAREST)) > 127


def pair_from_files(image1: str | os.PathLike[str], image2: str | os.PathLike[str], *,
                    meshes: Sequence[MeshView | None] = (None, None),
                    masks: Sequence[str | os.PathLike[str] | None] = (None, None),
                    stage1: str | os.PathLike[str] | None = None,
                    model: str | os.PathLike[str] | None = None,
                    keypoints: tuple[np.ndarray, np.ndarray] | None = None,
                    settings: FilePairSettings | None = None) -> ViewerPair:
    """The :class:`~geocorr.viewer.page.ViewerPair` of two image files.

    Args:
        image1: source image file.
        image2: target image file.
        meshes: per image a mesh + camera (camera for the file's size), or ``None``.
        masks: per image an object mask file, or ``None``.
        stage1: a stage-1 cache holding both images (instead of ``meshes``).
        model: an adapter run folder or checkpoint (adds the adapter panel).
        keypoints: ``((N, 2) source, (N, 2) target)`` annotated keypoints in
            file pixels, or ``None``.
        settings: :class:`FilePairSettings`.

    Returns:
        The pair; kinds: the 2D map, then (with meshes) the rendered part
        descriptor and the fused map, then (with ``model``) the adapter.

    Raises:
        ValueError: a mesh for one image only, both ``meshes`` and ``stage1``, or both
            ``masks`` and ``stage1``,
            or inputs that do not fit their image (messages name the file).
        FileNotFoundError: a missing file or stage-1 entry.
    """

    s = settings or FilePairSettings()
    paths = (Path(image1), Path(image2))
    if (meshes[0] is None) != (meshes[1] is None):
        raise ValueError("give a mesh + camera for both images or for neither")
    if stage1 is not None and meshes[0] is not None:
        raise ValueError("give meshes either with --mesh/--camera or with --stage1, not both")
    if stage1 is not None and any(m is not None for m in masks):
        raise ValueError("give masks either with --mask or from --stage1 (its masks), not both")
    records: list[Mapping | None] = [None, None]
    file_masks: list[np.ndarray | None] = [None, None]
    views: list[MeshView | None] = list(meshes)
    if stage1 is not None:
        from geocorr.reconstruct.pipeline import load_cached

        for i, p in enumerate(paths):
            c = load_cached(stage1, p.parent.name, p.stem)
            views[i] = MeshView(c.vertices, c.faces, c.camera)
            records[i], file_masks[i] = c.record, c.mask
    work = [load_working_image(p, m if file_masks[i] is None else None, views[i], s.inputs)
            for i, (p, m) in enumerate(zip(paths, masks, strict=True))]
    wmasks = []
    for i, w in enumerate(work):
        m = w.mask
        if file_masks[i] is not None:
            if file_masks[i].shape[::-1] != w.src_size:
                raise ValueError(f"stage-1 mask of {paths[i]} is {file_masks[i].shape[1]}x"
                                 f"{file_masks[i].shape[0]}, the image is {w.src_size[0]}x"
                                 f"{w.src_size[1]}")
            m = _resize_mask(file_masks[i], (w.image.shape[1], w.image.shape[0]))
        wmasks.append(m)
    bbs = make_backbones(list(s.backbones), device=s.device, weights=dict(s.weights))
    two_d = []
    for w, m, p in zip(work, wmasks, paths, strict=True):
        maps = {n: bb.extract(w.image, **backbone_inputs(bb, mask=m, category=p.parent.name))
                for n, bb in bbs.items()}
        names = list(maps)
        two_d.append(maps[names[0]] if len(names) == 1 else fuse(
            maps, FusionSettings(weights={n: 1.0 / len(names) for n in names})))
    name = "+".join(s.backbones)
    mesh_inputs = None
    if work[0].mesh is not None:
        mesh_inputs = tuple(MeshInput(w.mesh.vertices, w.mesh.faces, w.mesh.camera, m, rec)
                            for w, m, rec in zip(work, wmasks, records, strict=True))
    adapted = None
    if model is not None:
        # the adapter's source reads the image files: it gets the masks at file size
        adapted = _adapter_maps(model, paths, work, [
            fm if fm is not None else (None if m is None else read_mask(m))
            for fm, m in zip(file_masks, masks, strict=True)], s)
    maps = viewer_maps((two_d[0], two_d[1]), name, meshes=mesh_inputs, fusion=s.fusion,
                       adapted=adapted)
    images = []
    for w, p in zip(work, paths, strict=True):
        overlay = (None if w.mesh is None else
                   mesh_overlay(w.image, w.mesh.vertices, w.mesh.faces, w.mesh.camera))
        images.append(ViewerImage(w.image, p.name, overlay))
    kp = None
    if keypoints is not None:
        src, trg = (np.asarray(k, dtype=np.float64).reshape(-1, 2) for k in keypoints)
        if len(src) != len(trg):
            raise ValueError(f"keypoints: {len(src)} source and {len(trg)} target points")
        kp = ViewerKeypoints(ids=np.arange(len(src)), source=_to_working(work[0], src),
                             target=_to_working(work[1], trg))
    return ViewerPair(name=f"{paths[0].name} -> {paths[1].name}", source=images[0],
                      target=images[1], maps=maps, keypoints=kp)


def _to_working(w, uv: np.ndarray) -> np.ndarray:
    """File pixels -> working pixels (inverse of :meth:`WorkingImage.to_source`)."""
    sx, sy = w.scale
    return np.stack([(uv[:, 0] + 0.5) * sx - 0.5, (uv[:, 1] + 0.5) * sy - 0.5], axis=1)


def _adapter_maps(model, paths, work, file_masks, s: FilePairSettings):
    from geocorr.adapter.checkpoint import from_pretrained

    adapter = from_pretrained(model, device=s.device)
    need = adapter_backbone_names(adapter.source_names)
    bbs = make_backbones(need, device=s.device, weights=dict(s.weights))
    by_path = {p: m for p, m in zip(paths, file_masks, strict=True)}
    source = adapter_feature_source(adapter, bbs, device=s.device,
                                    mask_for=lambda p, _c: by_path.get(Path(p)))
    out = []
    for p, w in zip(paths, work, strict=True):
        fm = source(p, p.parent.name)
        t = resize_and_pad(w.image.shape[1], w.image.shape[0], fm.transform.size)
        out.append(FeatureMap(fm.features, t, fm.name))
    return (out[0], out[1])

"""The viewer of ``geocorr demo``'s test pairs, with pairs where 3D fixes a twin swap.

:func:`write_demo_viewer` works from what ``geocorr demo --out DIR`` leaves on
disk: ``DIR/data`` (the benchmark), ``DIR/stage1`` (stage-1 cache),
``DIR/cache/features`` (XFeat maps; recomputed when missing),
``DIR/study/runs/<filter>`` (adapters) and ``DIR/results.json`` (the
fusion settings and adapter runs the demo used). It picks test pairs
automatically: a pair qualifies when, for at least one keypoint, the page's
own nearest neighbour (:func:`geocorr.viewer.grid.nearest_cell`, the same
computation as the page's JavaScript) with the 2D map lands on a same-part
twin (a *twin swap*: wrong at ``alpha`` but within ``alpha * T`` of a twin,
:meth:`geocorr.evaluation.pck.PairScore.swapped`) while the fused map's is
correct. Those keypoints are the pair's *showcase*; the page opens on the
first one. Only this choice reads the ground truth (the keypoints), as the
demo's scoring does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geocorr.data.images import read_rgb
from geocorr.data.pairs import KeypointPair, ThresholdRule
from geocorr.data.spair import SPairDataset
from geocorr.evaluation.pck import score_pair, threshold_size, twin_positions
from geocorr.features.cache import FeatureCache, dataset_mask_for
from geocorr.features.geometric import GeometricDescriptor
from geocorr.features.part_confidence import ConfidenceSettings
from geocorr.features.part_fusion import PartFusionSettings
from geocorr.features.registry import make_backbone
from geocorr.viewer.grid import EncodedGrid, cell_center, decode_grid, query_cell
from geocorr.viewer.overlay import mesh_overlay
from geocorr.viewer.page import (
    ViewerImage,
    ViewerKeypoints,
    ViewerPair,
    ViewerRecord,
    ViewerSettings,
    encode_pair,
    write_viewer,
)
from geocorr.viewer.sources import FUSED_KIND, MeshInput, fuse_image, viewer_maps

__all__ = ["DemoViewerSettings", "transfer_points", "twin_swap_fixed", "write_demo_viewer"]


@dataclass(frozen=True)
class DemoViewerSettings:
    """Which demo pairs the viewer shows.

    Attributes:
        max_pairs: at most this many pairs (those with the most showcase
            keypoints first, ties in test-pair order).
        alpha: PCK level of "correct" and "twin swap" (the demo table's largest, 0.1).
        adapter: which filter's adapter run to show (``results.json``
            ``adapters``); ``None`` or a missing run: no adapter panel.
        split: the dataset split the pairs come from.
        page: :class:`~geocorr.viewer.page.ViewerSettings` (its ``alpha`` is
            replaced by ``alpha``).
    """

    max_pairs: int = 3
    alpha: float = 0.1
    adapter: str | None = "cyclic"
    split: str = "test"
    page: ViewerSettings = ViewerSettings(title="geocorr demo: correspondence viewer")

    def __post_init__(self) -> None:
        if self.max_pairs < 1:
            raise ValueError(f"DemoViewerSettings.max_pairs must be >= 1, got {self.max_pairs}")
        if not 0 < self.alpha <= 1:
            raise ValueError(f"DemoViewerSettings.alpha must be in (0, 1], got {self.alpha}")


def transfer_points(src: EncodedGrid, trg: EncodedGrid, points: np.ndarray) -> np.ndarray:
    """The page's nearest-neighbour transfer of source pixels, all at once.

    Args:
        src: source grid.
        trg: target grid.
        points: ``(N, 2)`` source pixels ``(x, y)``.

    Returns:
        ``(N, 2)`` target pixels: centres of the best target cells (ties: first
        in row-major order), as :func:`~geocorr.viewer.grid.nearest_cell` finds them.
    """

    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if src.channels != trg.channels:
        raise ValueError(f"grids differ in channels: {src.channels} vs {trg.channels}")
    a, b = decode_grid(src), decode_grid(trg).reshape(-1, trg.channels)
    r0, c0 = src.block[:2]
    tr0, tc0, _, tcols = trg.block
    out = np.zeros((len(pts), 2))
    for n, (x, y) in enumerate(pts):
        r, c = query_cell(src, x, y)
        best = int(np.argmax(b @ a[r - r0, c - c0]))
        out[n] = cell_center(trg, tr0 + best // tcols, tc0 + best % tcols)
    return out


def twin_swap_fixed(pair: KeypointPair, pred_2d: np.ndarray, pred_fused: np.ndarray, *,
                    rule: ThresholdRule, groups: Sequence[Sequence[int]], alpha: float
                    ) -> np.ndarray:
    """``(N,)`` bool: the 2D prediction is a twin swap and the fused one is correct.

    Both are scored by :func:`geocorr.evaluation.pck.score_pair` (twin swap:
    :meth:`~geocorr.evaluation.pck.PairScore.swapped`).
    """

    s2 = score_pair(pair, pred_2d, rule=rule, groups=groups)
    sf = score_pair(pair, pred_fused, rule=rule, groups=groups)
    return s2.swapped(alpha) & sf.correct(alpha)


def _twins(pair: KeypointPair, groups: Sequence[Sequence[int]]) -> tuple[np.ndarray, ...]:
    """Per keypoint, ``(K, 2)`` target positions of its visible same-part twins."""
    where = twin_positions(pair, groups)
    return tuple(where.get(i, np.zeros((0, 2))) for i in range(len(pair.kps_ids)))


def _fusion_settings(results: Mapping[str, Any]):

    f = results.get("settings", {}).get("fusion")
    if not f:
        return PartFusionSettings()
    conf = f.get("confidence")
    return PartFusionSettings(part_weight=float(f["part_weight"]),
                              confidence=None if conf is None else ConfidenceSettings(**conf),
                              name=f.get("name", "geometric"))


def write_demo_viewer(demo_out: str | os.PathLike[str], out_html: str | os.PathLike[str],
                      max_pairs: int | None = None,
                      settings: DemoViewerSettings | None = None) -> ViewerRecord:
    """Write the viewer of a ``geocorr demo`` output folder's test pairs (module doc).

    Args:
        demo_out: the demo's ``--out`` folder.
        out_html: the page to write.
        max_pairs: overrides ``settings.max_pairs``.
        settings: :class:`DemoViewerSettings`.

    Returns:
        :class:`~geocorr.viewer.page.ViewerRecord`; ``showcase`` lists, per pair,
        the keypoint ids where 2D swaps and fused does not (all empty when no
        test pair has one: the first pairs are shown, and the page says so).

    Raises:
        FileNotFoundError: ``demo_out`` lacks ``data/`` or ``stage1/`` (names the folder).
        ValueError: the split has no pair.
    """
    from dataclasses import replace

    s = settings or DemoViewerSettings()
    if max_pairs is not None:
        s = replace(s, max_pairs=max_pairs)
    root = Path(demo_out)
    data, stage1 = root / "data", root / "stage1"
    for d in (data, stage1):
        if not d.is_dir():
            raise FileNotFoundError(f"{d}: not found; is {root} a geocorr demo --out folder?")

    from geocorr.adapter.checkpoint import apply_adapter, from_pretrained
    from geocorr.reconstruct.pipeline import load_cached

    results_p = root / "results.json"
    results = json.loads(results_p.read_text()) if results_p.is_file() else {}
    fusion = _fusion_settings(results)
    context = bool(results.get("settings", {}).get("adapter_context", False))
    backbone = make_backbone("xfeat")
    context_backbone = make_backbone("xfeat", context=True) if context else None
    cache = FeatureCache(root / "cache" / "features")
    adapter = None
    run = results.get("adapters", {}).get(s.adapter, {}).get("run") if s.adapter else None
    if run is not None and (root / run).is_dir():
        adapter = from_pretrained(root / run)
    descriptor = GeometricDescriptor()
    context_mask = dataset_mask_for(data) if context else None

    per_image: dict[Path, tuple] = {}

    def image_entry(path: Path):
        """``(image, 2D map, MeshInput, PartFusion, adapter map or None)``."""
        if path not in per_image:
            cached = load_cached(stage1, path.parent.name, path.stem)
            image = read_rgb(path)
            fmap = cache.features_for(image, backbone, mask=cached.mask)
            mesh = MeshInput(cached.vertices, cached.faces, cached.camera, cached.mask,
                             cached.record)
            adapted = None
            if adapter is not None:
                src = fmap if context_backbone is None else cache.features_for(
                    image, context_backbone, mask=context_mask(path, path.parent.name))
                adapted = apply_adapter(adapter, {"xfeat": src})
            fz = fuse_image(fmap, mesh, fusion,
                            vertex_desc=descriptor.describe(cached.vertices, cached.faces))
            per_image[path] = (image, fmap, mesh, fz, adapted)
        return per_image[path]

    dataset = SPairDataset(data)
    pairs = dataset.pairs(s.split)
    if not pairs:
        raise ValueError(f"{data}: the {s.split} split has no pair")
    candidates = []
    for order, p in enumerate(pairs):
        si, ti = image_entry(p.src_image), image_entry(p.trg_image)
        maps = viewer_maps((si[1], ti[1]), "xfeat", fused=(si[3], ti[3]),
                           adapted=None if si[4] is None else (si[4], ti[4]))
        grids = encode_pair(ViewerPair(p.pair_id, ViewerImage(si[0]), ViewerImage(ti[0]), maps))
        groups = dataset.geometry_groups(p.category)
        fixed = np.zeros(p.num_keypoints, bool)
        if p.num_keypoints:
            pred2 = transfer_points(grids["xfeat"]["source"], grids["xfeat"]["target"],
                                    p.src_kps)
            predf = transfer_points(grids[FUSED_KIND]["source"], grids[FUSED_KIND]["target"],
                                    p.src_kps)
            fixed = twin_swap_fixed(p, pred2, predf, rule=dataset.threshold_rule,
                                    groups=groups, alpha=s.alpha)
        candidates.append((-int(fixed.sum()), order, p, maps, fixed, groups))
    chosen = [c for c in sorted(candidates, key=lambda c: c[:2]) if c[0] < 0][:s.max_pairs]
    fallback = not chosen
    if fallback:
        chosen = candidates[:s.max_pairs]
    viewer_pairs, showcase = [], []
    for _, _, p, maps, fixed, groups in chosen:
        si, ti = per_image[p.src_image], per_image[p.trg_image]
        ids = [int(i) for i in p.kps_ids[fixed]]
        showcase.append(ids)
        if ids:
            first = int(np.flatnonzero(fixed)[0])
            start = (float(p.src_kps[first, 0]), float(p.src_kps[first, 1]))
            note = (f"Chosen automatically: for keypoint(s) {', '.join(f'#{i}' for i in ids)} "
                    f"the 2D (XFeat) match lands on a same-part twin (a twin swap at "
                    f"alpha {s.alpha:g}) and the fused match is correct; the query starts on "
                    f"#{ids[0]}. Tick 'show keypoints' for every keypoint's transfer.")
        else:
            start = None
            note = ("No test pair has a keypoint whose 2D match is a twin swap while the fused "
                    "match is correct; showing the first pairs.")
        kp = ViewerKeypoints(ids=p.kps_ids.copy(), source=p.src_kps, target=p.trg_kps,
                             twins=_twins(p, groups),
                             threshold=threshold_size(p, dataset.threshold_rule))
        mk = [mesh_overlay(e[0], e[2].vertices, e[2].faces, e[2].camera) for e in (si, ti)]
        viewer_pairs.append(ViewerPair(
            name=p.pair_id,
            source=ViewerImage(si[0], f"{p.src_image.parent.name}/{p.src_image.name}", mk[0]),
            target=ViewerImage(ti[0], f"{p.trg_image.parent.name}/{p.trg_image.name}", mk[1]),
            maps=maps, keypoints=kp, start=start, note=note))
    page = replace(s.page, alpha=s.alpha)
    return write_viewer(out_html, viewer_pairs, page, showcase=showcase)

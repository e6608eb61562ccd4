"""One self-contained HTML page: images, feature grids, keypoints, mesh overlays, plain JS.

The page (template ``viewer.html`` beside this module) needs no server, no
network and no external script: every image is a base64 ``data:`` URL and
every feature grid an :class:`~geocorr.viewer.grid.EncodedGrid` (float16,
L2-normalised per cell) inside one JSON ``<script>`` block. Its JavaScript
computes cosine similarities and nearest neighbours on click, hover or arrow
key, and exposes its state for tests: ``window.geocorrViewer.query(x, y)``
(image pixels of the source) returns the matches per feature kind, and the
``<pre id="geocorr-matches">`` element always holds the current ones as JSON.
The URL hash ``#pair=I&click=X,Y&keypoints=1`` sets the initial state (a real
click event at source pixel ``(X, Y)``).
"""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from geocorr.atomic import write_text_atomic
from geocorr.features.base import FeatureMap
from geocorr.viewer.grid import EncodedGrid, encode_grid

__all__ = ["ViewerImage", "ViewerKeypoints", "ViewerPair", "ViewerSettings", "ViewerRecord",
           "encode_pair", "render_page", "read_page_data", "write_viewer"]


@dataclass(frozen=True, eq=False)
class ViewerImage:
    """One image of a pair as the page shows it.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB; its pixels are the frame of every
            coordinate on the page (queries, matches, keypoints).
        name: shown under the image.
        overlay: ``(H, W, 3)`` uint8 RGB, the image with its stage-1 mesh
            drawn over it (:func:`geocorr.viewer.overlay.mesh_overlay`), or ``None``.
    """

    image: np.ndarray
    name: str = ""
    overlay: np.ndarray | None = None

    def __post_init__(self) -> None:
        im = np.asarray(self.image)
        if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
            raise ValueError(f"ViewerImage {self.name!r}: image must be (H, W, 3) uint8, got "
                             f"{im.shape} {im.dtype}")
        if self.overlay is not None and np.asarray(self.overlay).shape != im.shape:
            raise ValueError(f"ViewerImage {self.name!r}: overlay is "
                             f"{np.asarray(self.overlay).shape}, image {im.shape}")

    @property
    def size(self) -> tuple[int, int]:
        """``(W, H)``."""
        return (int(self.image.shape[1]), int(self.image.shape[0]))


@dataclass(frozen=True, eq=False)
class ViewerKeypoints:
    """A pair's annotated (or ground-truth) keypoints.

    Attributes:
        ids: ``(N,)`` keypoint ids.
        source: ``(N, 2)`` source positions ``(x, y)``, source pixels.
        target: ``(N, 2)`` target positions, target pixels.
        twins: per keypoint, ``(K, 2)`` target positions of its visible
            same-part twins (left/right or repeated part), possibly ``K = 0``.
        threshold: the PCK size ``T`` in target pixels (a transfer is correct
            below ``alpha * T``), or ``None`` (errors only).
    """

    ids: np.ndarray
    source: np.ndarray
    target: np.ndarray
    twins: tuple[np.ndarray, ...] = ()
    threshold: float | None = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name in ("source", "target"):
            if np.asarray(getattr(self, name)).shape != (n, 2):
                raise ValueError(f"ViewerKeypoints.{name} must be ({n}, 2), got "
                                 f"{np.asarray(getattr(self, name)).shape}")
        if self.twins and len(self.twins) != n:
            raise ValueError(f"ViewerKeypoints.twins must have {n} entries, got {len(self.twins)}")


@dataclass(frozen=True, eq=False)
class ViewerPair:
    """One source/target pair and its feature maps per kind.

    Attributes:
        name: shown in the pair selector.
        source: the source :class:`ViewerImage`.
        target: the target :class:`ViewerImage`.
        maps: feature kind (e.g. ``"xfeat"``, ``"rendered part descriptor"``,
            ``"fused"``, ``"adapter"``) -> ``(source map, target map)``, each
            map for its image's ``W x H``.
        keypoints: :class:`ViewerKeypoints` or ``None``.
        start: initial query point ``(x, y)`` in source pixels (``None``: the centre).
        note: one line shown above the panels (e.g. why this pair was chosen).
    """

    name: str
    source: ViewerImage
    target: ViewerImage
    maps: Mapping[str, tuple[FeatureMap, FeatureMap]]
    keypoints: ViewerKeypoints | None = None
    start: tuple[float, float] | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if not self.maps:
            raise ValueError(f"ViewerPair {self.name!r}: no feature map")
        for kind, (fs, ft) in self.maps.items():
            for fmap, img, side in ((fs, self.source, "source"), (ft, self.target, "target")):
                t = fmap.transform
                if (t.src_width, t.src_height) != img.size:
                    raise ValueError(f"ViewerPair {self.name!r}: {kind} {side} map is for a "
                                     f"{t.src_width}x{t.src_height} image, the image is "
                                     f"{img.size[0]}x{img.size[1]}")
            if fs.shape[0] != ft.shape[0]:
                raise ValueError(f"ViewerPair {self.name!r}: {kind} maps differ in channels "
                                 f"({fs.shape[0]} vs {ft.shape[0]})")


@dataclass(frozen=True)
class ViewerSettings:
    """How the page is written.

    Attributes:
        title: page title.
        alpha: PCK level of the keypoint table (``error < alpha * T`` is
            correct; twin swap: wrong but within ``alpha * T`` of a twin).
        display_side: longer side of each image panel in CSS pixels.
        image_format: ``"jpeg"`` (small) or ``"png"`` (lossless) for embedded images.
        jpeg_quality: JPEG quality 1-95.
    """

    title: str = "geocorr correspondence viewer"
    alpha: float = 0.1
    display_side: int = 280
    image_format: Literal["jpeg", "png"] = "jpeg"
    jpeg_quality: int = 90

    def __post_init__(self) -> None:
        if not 0 < self.alpha <= 1:
            raise ValueError(f"ViewerSettings.alpha must be in (0, 1], got {self.alpha}")
        if self.display_side < 16:
            raise ValueError(f"ViewerSettings.display_side must be >= 16, got "
                             f"{self.display_side}")
        if self.image_format not in ("jpeg", "png"):
            raise ValueError(f"ViewerSettings.image_format must be 'jpeg' or 'png', got "
                             f"{self.image_format!r}")
        if not 1 <= self.jpeg_quality <= 95:
            raise ValueError(f"ViewerSettings.jpeg_quality must be in [1, 95], got "
                             f"{self.jpeg_quality}")


@dataclass(frozen=True)
class ViewerRecord:
    """What :func:`write_viewer` wrote.

    Attributes:
        path: the HTML file.
        size_bytes: its size.
        pairs: pair names, in page order.
        kinds: feature kinds on the page, in panel order.
        showcase: per pair, ids of the keypoints whose 2D match is a twin swap
            and whose fused match is correct (empty where not computed or none).
    """

    path: Path
    size_bytes: int
    pairs: tuple[str, ...]
    kinds: tuple[str, ...]
    showcase: tuple[tuple[int, ...], ...] = field(default_factory=tuple)


def _data_url(image: np.ndarray, settings: ViewerSettings) -> str:
    from PIL import Image

    buf = io.BytesIO()
    if settings.image_format == "png":
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG", optimize=True)
        mime = "image/png"
    else:
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(
            buf, format="JPEG", quality=settings.jpeg_quality)
        mime = "image/jpeg"
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def encode_pair(pair: ViewerPair) -> dict[str, dict[str, EncodedGrid]]:
    """``kind -> {"source": grid, "target": grid}``: the grids the page embeds for ``pair``."""
    return {kind: {"source": encode_grid(fs), "target": encode_grid(ft)}
            for kind, (fs, ft) in pair.maps.items()}


def _image_json(im: ViewerImage, settings: ViewerSettings) -> dict:
    w, h = im.size
    return {"name": im.name, "width": w, "height": h, "image": _data_url(im.image, settings),
            "overlay": None if im.overlay is None else _data_url(im.overlay, settings)}


def _pair_json(pair: ViewerPair, settings: ViewerSettings) -> dict:
    kp = None
    if pair.keypoints is not None:
        k = pair.keypoints
        twins = k.twins or tuple(np.zeros((0, 2)) for _ in k.ids)
        kp = {"ids": [int(i) for i in k.ids],
              "source": np.asarray(k.source, dtype=float).tolist(),
              "target": np.asarray(k.target, dtype=float).tolist(),
              "twins": [np.asarray(t, dtype=float).reshape(-1, 2).tolist() for t in twins],
              "threshold": None if k.threshold is None else float(k.threshold)}
    grids = {kind: {side: g.to_json() for side, g in sides.items()}
             for kind, sides in encode_pair(pair).items()}
    return {"name": pair.name, "note": pair.note, "source": _image_json(pair.source, settings),
            "target": _image_json(pair.target, settings), "grids": grids, "keypoints": kp,
            "start": None if pair.start is None else [float(pair.start[0]),
                                                      float(pair.start[1])]}


def _interned(data: dict) -> dict:
    """Move every image and grid payload into ``data["blobs"]``, each distinct one once.

    Pairs that share an image (the demo's often do) then carry its pixels and
    grids once; a grid's ``data`` becomes ``ref`` and an image's ``image`` /
    ``overlay`` an index into ``blobs``.
    """
    blobs: list[str] = []
    index: dict[str, int] = {}

    def intern(text: str) -> int:
        if text not in index:
            index[text] = len(blobs)
            blobs.append(text)
        return index[text]

    for pair in data["pairs"]:
        for side in ("source", "target"):
            im = pair[side]
            im["image"] = intern(im["image"])
            if im["overlay"] is not None:
                im["overlay"] = intern(im["overlay"])
        for sides in pair["grids"].values():
            for g in sides.values():
                g["ref"] = intern(g.pop("data"))
    data["blobs"] = blobs
    return data


def read_page_data(text: str) -> dict:
    """The JSON a viewer page embeds, with blob references resolved.

    Returns:
        ``{"alpha", "display_side", "kinds", "pairs"}``; each pair's ``grids``
        map kind -> ``{"source": EncodedGrid, "target": EncodedGrid}`` and its
        images carry ``data:`` URLs, as :func:`render_page` built them.

    Raises:
        ValueError: ``text`` is not a viewer page.
    """
    import re

    m = re.search(r'<script id="geocorr-data" type="application/json">(.*?)</script>', text,
                  re.S)
    if m is None:
        raise ValueError("not a geocorr viewer page: no geocorr-data block")
    data = json.loads(m.group(1))
    blobs = data.pop("blobs")
    for pair in data["pairs"]:
        for side in ("source", "target"):
            im = pair[side]
            im["image"] = blobs[im["image"]]
            if im["overlay"] is not None:
                im["overlay"] = blobs[im["overlay"]]
        for kind, sides in pair["grids"].items():
            pair["grids"][kind] = {
                side: EncodedGrid(grid=tuple(g["grid"]), block=tuple(g["block"]),
                                  channels=int(g["channels"]), canvas=int(g["canvas"]),
                                  scale=float(g["scale"]), offset=tuple(g["offset"]),
                                  data=blobs[g["ref"]])
                for side, g in sides.items()}
    return data


def render_page(pairs: Sequence[ViewerPair], settings: ViewerSettings | None = None) -> str:
    """The HTML text of the viewer for ``pairs`` (module doc).

    Raises:
        ValueError: no pair.
    """
    import html
    from importlib.resources import files

    s = settings or ViewerSettings()
    if not pairs:
        raise ValueError("the viewer needs at least one pair")
    kinds: list[str] = []
    for p in pairs:
        kinds += [k for k in p.maps if k not in kinds]
    data = _interned({"alpha": s.alpha, "display_side": s.display_side, "kinds": kinds,
                      "pairs": [_pair_json(p, s) for p in pairs]})
    # "</" never appears inside the JSON block, so no string can close the <script> element
    blob = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    template = files("geocorr.viewer").joinpath("viewer.html").read_text(encoding="utf-8")
    return template.replace("__TITLE__", html.escape(s.title)).replace("__DATA__", blob)


def write_viewer(path: str | os.PathLike[str], pairs: Sequence[ViewerPair],
                 settings: ViewerSettings | None = None,
                 showcase: Sequence[Sequence[int]] = ()) -> ViewerRecord:
    """Write the page atomically (temporary file + rename) and say what is in it.

    Args:
        path: the ``.html`` file (parent folders are created).
        pairs: the pairs, in selector order.
        settings: :class:`ViewerSettings`.
        showcase: recorded in the :class:`ViewerRecord` (see there).

    Returns:
        :class:`ViewerRecord`.
    """

    text = render_page(pairs, settings)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    kinds: list[str] = []
    for p in pairs:
        kinds += [k for k in p.maps if k not in kinds]
    return ViewerRecord(path=path, size_bytes=path.stat().st_size,
                        pairs=tuple(p.name for p in pairs), kinds=tuple(kinds),
                        showcase=tuple(tuple(int(i) for i in ids) for ids in showcase))

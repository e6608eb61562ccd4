"""SPair-71k-layout writer: image/pair JSON, splits, and byte-deterministic file output.

Files follow SPair-71k's layout and fields (see ``docs/synth.md``):

* ``ImageAnnotation/<cat>/<stem>.json``: ``filename``, ``src_database``,
  ``src_annotation``, ``src_image``, ``image_width``, ``image_height``,
  ``image_depth``, ``category``, ``pose``, ``truncated``, ``occluded``,
  ``difficult``, ``bndbox [x1, y1, x2, y2]`` (ints), ``azimuth_id`` (0..7),
  ``kps`` (dict ``"0".."K-1"`` -> ``[x, y]`` ints or ``null``).
* ``PairAnnotation/<split>/<6-digit id>-<src>-<trg>:<cat>.json``: ``pair_id``,
  ``src_imname``, ``trg_imname``, ``src_imsize``/``trg_imsize`` ``[W, H, 3]``,
  ``src_bndbox``, ``trg_bndbox``, ``category``, ``src_pose``, ``trg_pose``,
  ``src_kps``/``trg_kps`` (``[[x, y], ...]``, keypoints visible in both),
  ``kps_ids`` (ints), ``viewpoint_variation``, ``scale_variation``,
  ``truncation``, ``occlusion``, ``mirror``.

Difficulty flags (our documented rules; SPair's exact thresholds are not
public): ``viewpoint_variation`` from the circular difference of the TRUE
azimuths, ``< 45`` deg -> 0, ``< 90`` -> 1, else 2; ``scale_variation`` from
``r`` = ratio of the larger to the smaller ``sqrt(bbox area)``, ``r < 1.5`` -> 0,
``< 2.25`` -> 1, else 2; ``truncation``/``occlusion`` = 0 none, 1 source, 2
target, 3 both; ``mirror`` = 0 (we never mirror). An image is ``truncated``
when its unoccluded mask touches the image border, ``occluded`` when a flat
occluder hides more than 2% of the object (self-occlusion is not flagged, as
in SPair).

Everything is byte-deterministic: JSON with fixed key order, PIL JPEG/PNG
without timestamps, npz written through :func:`save_npz` with a fixed zip
date. Every file is written atomically (temporary file + ``os.replace``).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocorr.atomic import write_bytes_atomic, write_json_atomic

__all__ = ["ImageRecord", "write_bytes", "write_json", "save_npz", "encode_jpeg",
           "encode_png", "image_annotation", "pair_annotation", "pair_stem",
           "viewpoint_variation", "scale_variation", "mask_bndbox", "SPLITS", "JPEG_QUALITY"]

SPLITS = ("trn", "val", "test")
JPEG_QUALITY = 92
"""Fixed JPEG quality (PIL output is deterministic for fixed settings)."""


@dataclass(frozen=True, eq=False)
class ImageRecord:
    """What the pair writer needs to know about one image.

    Attributes:
        stem: image stem ``<cat>_<NNNN>``.
        category: category name.
        instance_id: the shape instance shown.
        width: W.
        height: H.
        bndbox: ``(4,)`` int ``[x1, y1, x2, y2]`` of the visible mask.
        kps: ``(K, 2)`` int keypoint pixels ``(x, y)`` (meaningless where invisible).
        visible: ``(K,)`` bool keypoint visibility.
        azimuth_deg: true azimuth.
        azimuth_id: SPair bin 0..7.
        pose: ``"Frontal"``, ``"Left"``, ``"Rear"`` or ``"Right"``.
        truncated: 0/1.
        occluded: 0/1.
        flipped: whether the simulated reconstruction has a yaw error.
    """

    stem: str
    category: str
    instance_id: int
    width: int
    height: int
    bndbox: np.ndarray
    kps: np.ndarray
    visible: np.ndarray
    azimuth_deg: float
    azimuth_id: int
    pose: str
    truncated: int
    occluded: int
    flipped: bool

    @property
    def filename(self) -> str:
        return f"{self.stem}.jpg"


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + ``os.replace``)."""
    write_bytes_atomic(path, data)


def write_json(path: str | Path, obj) -> None:
    """Atomic, deterministic JSON (insertion key order, trailing newline)."""
    write_json_atomic(path, obj, indent=1)


def save_npz(path: str | Path, arrays: dict[str, np.ndarray], compress: bool = True) -> None:
    """``np.savez_compressed`` with a fixed zip timestamp, so equal arrays give equal bytes.

    Readable with ``np.load``. Arrays must not need pickling.
    """
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, value in arrays.items():
            arr = np.asanyarray(value)
            if arr.dtype == object:
                raise ValueError(f"save_npz({path}): array {name!r} has dtype object")
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = method
            info.external_attr = 0o600 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, arr, allow_pickle=False)
    write_bytes(path, buf.getvalue())


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """``(H, W, 3)`` uint8 RGB -> JPEG bytes (no EXIF, fixed settings)."""
    from PIL import Image

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, format="JPEG", quality=quality, subsampling=0,
                                       optimize=False)
    return buf.getvalue()


def encode_png(image: np.ndarray) -> bytes:
    """``(H, W)`` or ``(H, W, 3)`` uint8 -> PNG bytes (no text/time chunks)."""
    from PIL import Image

    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def mask_bndbox(mask: np.ndarray) -> np.ndarray:
    """``[x1, y1, x2, y2]`` int of the mask's pixel extent (zeros for an empty mask)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return np.zeros(4, dtype=np.int64)
    return np.array([cols[0], rows[0], cols[-1], rows[-1]], dtype=np.int64)


def image_annotation(record: ImageRecord) -> dict:
    """SPair image JSON for ``record`` (fields in SPair's order)."""
    kps = {str(i): ([int(x), int(y)] if vis else None)
           for i, ((x, y), vis) in enumerate(zip(record.kps, record.visible, strict=True))}
    return {
        "filename": record.filename,
        "src_database": "geocorr-synth",
        "src_annotation": "geocorr-synth",
        "src_image": "geocorr-synth",
        "image_width": int(record.width),
        "image_height": int(record.height),
        "image_depth": 3,
        "category": record.category,
        "pose": record.pose,
        "truncated": int(record.truncated),
        "occluded": int(record.occluded),
        "difficult": 0,
        "bndbox": [int(v) for v in record.bndbox],
        "azimuth_id": int(record.azimuth_id),
        "kps": kps,
    }


def viewpoint_variation(azimuth_a: float, azimuth_b: float) -> int:
    """0/1/2 from the circular azimuth difference (< 45, < 90, else)."""
    d = abs((azimuth_a - azimuth_b + 180.0) % 360.0 - 180.0)
    return 0 if d < 45 else (1 if d < 90 else 2)


def scale_variation(box_a: np.ndarray, box_b: np.ndarray) -> int:
    """0/1/2 from the ratio of ``sqrt(bbox area)`` (< 1.5, < 2.25, else)."""
    def side(b):
        return max(float((b[2] - b[0] + 1) * (b[3] - b[1] + 1)), 1.0) ** 0.5

    sa, sb = side(box_a), side(box_b)
    r = max(sa, sb) / min(sa, sb)
    return 0 if r < 1.5 else (1 if r < 2.25 else 2)


def _both(a: int, b: int) -> int:
    return int(bool(a)) + 2 * int(bool(b))


def pair_stem(pair_id: int, src: str, trg: str, category: str) -> str:
    """``<6-digit id>-<src stem>-<trg stem>:<category>``."""
    return f"{pair_id:06d}-{src}-{trg}:{category}"


def pair_annotation(pair_id: int, src: ImageRecord, trg: ImageRecord) -> dict:
    """SPair pair JSON; keypoints are those visible in both images (SPair's rule)."""
    if src.category != trg.category:
        raise ValueError(f"pair {pair_id}: {src.stem} and {trg.stem} differ in category")
    ids = np.flatnonzero(src.visible & trg.visible)
    return {
        "pair_id": int(pair_id),
        "src_imname": src.filename,
        "trg_imname": trg.filename,
        "src_imsize": [int(src.width), int(src.height), 3],
        "trg_imsize": [int(trg.width), int(trg.height), 3],
        "src_bndbox": [int(v) for v in src.bndbox],
        "trg_bndbox": [int(v) for v in trg.bndbox],
        "category": src.category,
        "src_pose": src.pose,
        "trg_pose": trg.pose,
        "src_kps": [[int(x), int(y)] for x, y in src.kps[ids]],
        "trg_kps": [[int(x), int(y)] for x, y in trg.kps[ids]],
        "kps_ids": [int(i) for i in ids],
        "viewpoint_variation": viewpoint_variation(src.azimuth_deg, trg.azimuth_deg),
        "scale_variation": scale_variation(src.bndbox, trg.bndbox),
        "truncation": _both(src.truncated, trg.truncated),
        "occlusion": _both(src.occluded, trg.occluded),
        "mirror": 0,
    }

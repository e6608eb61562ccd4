"""Dense ground truth of the procedural benchmark, and the correspondence check.

**EVALUATION ONLY.** The pipeline (reconstruction, matching, verification,
training) must never read ``GroundTruth/`` or import this module to make a
decision; only scoring code does. A run with ``GroundTruth/`` deleted works
(``tests/test_groundtruth_wall.py``: same outputs, no access below it).

File: ``<root>/GroundTruth/<category>/<stem>.npz`` with

* the ground-truth mesh: ``vertices (V, 3)``, ``faces (F, 3)``,
  ``face_part (F,)``, ``vertex_part (V,)``, ``vertex_template (V, 3)``,
  ``part_names (P,)``, ``part_material (P,)``, ``keypoint_vertices (K,)``,
  optionally ``face_template (F, 3, 3)``;
* the ground-truth camera: ``K (3, 3)``, ``R (3, 3)``, ``t (3,)``,
  ``image_size [H, W]``; ``azimuth_deg``, ``elevation_deg``;
* dense maps on the image grid: ``part_map (H, W)`` int16 (``-1`` =
  background) and ``template_map (H, W, 3)`` float16 template coordinates;
* the simulator's true corrections (see :mod:`geocorr.data.synth.simulator`):
  ``sim_true_k``, ``sim_yaw_error_k``, ``sim_true_scale``,
  ``sim_true_translation (3,)``, ``sim_gt_scale``, ``sim_gt_offset (3,)`` (after the
  true corrections, ground-truth position = ``sim_gt_scale * X'' + sim_gt_offset``).

**Correctness rule** (:func:`check_correspondences`): a pixel pair is correct
when both pixels lie on the object, see the same part, and their template
coordinates are closer than ``threshold`` (default 0.25, in template units
where a part spans ``[-1, 1]`` per axis). A wrong match between two different
parts of the same material is a *swap*: ``left_right`` when the target part is
the source part's mirror (names differing by left/right), ``repeated``
otherwise (e.g. front-left wheel onto rear-right wheel).

**PCK-style criterion** (fields ``true_uv`` / ``pixel_error`` and
:meth:`CorrespondenceCheck.correct_pck`): the source point's true counterpart
in the target image is the target pixel of the same part whose template
coordinate is nearest to the source pixel's (when that nearest one is closer
than ``threshold``, i.e. the counterpart is visible); a match is correct at
``alpha`` when its target pixel is within ``alpha * max(h, w)`` of that pixel,
``h, w`` the target object's bbox in pixels -- the PCK rule of SPair-71k
applied to every candidate. It differs from the template rule where parts are
small (0.25 template units of a wheel are a few pixels) or large (of a table
top, a tenth of the object), so benchmarks report both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geocorr.data.paths import inside
from geocorr.geometry.camera import Camera

__all__ = ["GroundTruth", "CorrespondenceCheck", "ReconstructionScore", "load_groundtruth",
           "groundtruth_path", "sim_errors_path", "load_sim_errors", "check_correspondences",
           "mirror_parts", "score_reconstruction",
           "VertexLabels", "label_vertices",
           "SWAP_NONE", "SWAP_LEFT_RIGHT", "SWAP_REPEATED", "DEFAULT_THRESHOLD"]

SWAP_NONE = 0
"""Not a swap: correct, off the object, or onto a part of another material."""
SWAP_LEFT_RIGHT = 1
"""Matched onto the mirror part (left <-> right)."""
SWAP_REPEATED = 2
"""Matched onto another, non-mirror part of the same material (front <-> rear wheel)."""
DEFAULT_THRESHOLD = 0.25
"""Template-coordinate distance below which a same-part match is correct."""


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """Everything the scorer knows about one image.

    Attributes:
        category: category name.
        stem: image stem, e.g. ``"car_0003"``.
        vertices: ``(V, 3)`` ground-truth mesh, canonical frame.
        faces: ``(F, 3)`` int64.
        face_part: ``(F,)`` int32.
        vertex_part: ``(V,)`` int32.
        vertex_template: ``(V, 3)`` template coordinates.
        part_names: ``(P,)`` part names.
        part_material: ``(P,)`` materials.
        keypoint_vertices: ``(K,)`` vertex index of each keypoint.
        camera: ground-truth camera.
        part_map: ``(H, W)`` int16 part id per pixel, ``-1`` = background.
        template_map: ``(H, W, 3)`` float32 template coordinates per pixel.
        azimuth_deg: true azimuth.
        elevation_deg: true elevation.
        sim_true_k: yaw correction stage 1 should find (quarter turns).
        sim_yaw_error_k: the simulator's applied yaw error.
        sim_true_scale: refinement's ideal scale.
        sim_true_translation: ``(3,)`` refinement's ideal translation.
        sim_gt_scale: ``a`` with ground truth ``~ a X'' + b`` after the true corrections.
        sim_gt_offset: ``(3,)`` ``b`` of that similarity.
        face_template: optional ``(F, 3, 3)`` per-corner template coordinates in
            each face's own part (exact across seams; ``None`` if the shape had none).
    """

    category: str
    stem: str
    vertices: np.ndarray
    faces: np.ndarray
    face_part: np.ndarray
    vertex_part: np.ndarray
    vertex_template: np.ndarray
    part_names: tuple[str, ...]
    part_material: tuple[str, ...]
    keypoint_vertices: np.ndarray
    camera: Camera
    part_map: np.ndarray
    template_map: np.ndarray
    azimuth_deg: float
    elevation_deg: float
    sim_true_k: int
    sim_yaw_error_k: int
    sim_true_scale: float
    sim_true_translation: np.ndarray
    sim_gt_scale: float
    sim_gt_offset: np.ndarray
    face_template: np.ndarray | None = None

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The npz payload (see module docstring), fixed key order."""
        out = {
            "category": np.array(self.category), "stem": np.array(self.stem),
            "vertices": np.asarray(self.vertices, np.float64),
            "faces": np.asarray(self.faces, np.int64),
            "face_part": np.asarray(self.face_part, np.int32),
            "vertex_part": np.asarray(self.vertex_part, np.int32),
            "vertex_template": np.asarray(self.vertex_template, np.float64),
            "part_names": np.array(self.part_names), "part_material": np.array(self.part_material),
            "keypoint_vertices": np.asarray(self.keypoint_vertices, np.int64),
            "K": self.camera.K, "R": self.camera.R, "t": self.camera.t,
            "image_size": np.array([self.camera.height, self.camera.width], np.int64),
            "part_map": np.asarray(self.part_map, np.int16),
            "template_map": np.asarray(self.template_map, np.float16),
            "azimuth_deg": np.array(self.azimuth_deg, np.float64),
            "elevation_deg": np.array(self.elevation_deg, np.float64),
            "sim_true_k": np.array(self.sim_true_k, np.int64),
            "sim_yaw_error_k": np.array(self.sim_yaw_error_k, np.int64),
            "sim_true_scale": np.array(self.sim_true_scale, np.float64),
            "sim_true_translation": np.asarray(self.sim_true_translation, np.float64),
            "sim_gt_scale": np.array(self.sim_gt_scale, np.float64),
            "sim_gt_offset": np.asarray(self.sim_gt_offset, np.float64),
        }
        if self.face_template is not None:
            out["face_template"] = np.asarray(self.face_template, np.float64)
        return out

    @classmethod
    def from_arrays(cls, d, where: str = "groundtruth") -> GroundTruth:
        """Inverse of :meth:`to_arrays`; errors name ``where`` and the missing key."""
        keys = ("category", "stem", "vertices", "faces", "face_part", "vertex_part",
                "vertex_template", "part_names", "part_material", "keypoint_vertices", "K",
                "R", "t", "image_size", "part_map", "template_map", "azimuth_deg",
                "elevation_deg", "sim_true_k", "sim_yaw_error_k", "sim_true_scale",
                "sim_true_translation", "sim_gt_scale", "sim_gt_offset")
        missing = [k for k in keys if k not in d]
        if missing:
            raise ValueError(f"{where}: missing field(s) {missing}")
        H, W = (int(x) for x in d["image_size"])
        camera = Camera(d["K"], d["R"], d["t"], W, H)
        part_map = np.asarray(d["part_map"], np.int16)
        if part_map.shape != (H, W):
            raise ValueError(f"{where}: part_map has shape {part_map.shape}, expected {(H, W)}")
        return cls(
            category=str(d["category"]), stem=str(d["stem"]),
            vertices=np.asarray(d["vertices"], np.float64),
            faces=np.asarray(d["faces"], np.int64),
            face_part=np.asarray(d["face_part"], np.int32),
            vertex_part=np.asarray(d["vertex_part"], np.int32),
            vertex_template=np.asarray(d["vertex_template"], np.float64),
            part_names=tuple(str(s) for s in d["part_names"]),
            part_material=tuple(str(s) for s in d["part_material"]),
            keypoint_vertices=np.asarray(d["keypoint_vertices"], np.int64),
            camera=camera, part_map=part_map,
            template_map=np.asarray(d["template_map"], np.float32),
            azimuth_deg=float(d["azimuth_deg"]), elevation_deg=float(d["elevation_deg"]),
            sim_true_k=int(d["sim_true_k"]), sim_yaw_error_k=int(d["sim_yaw_error_k"]),
            sim_true_scale=float(d["sim_true_scale"]),
            sim_true_translation=np.asarray(d["sim_true_translation"], np.float64),
            sim_gt_scale=float(d["sim_gt_scale"]),
            sim_gt_offset=np.asarray(d["sim_gt_offset"], np.float64),
            face_template=(np.asarray(d["face_template"], np.float64)
                           if "face_template" in d else None),
        )


def groundtruth_path(root: str | Path, category: str, stem: str) -> Path:
    """``<root>/GroundTruth/<category>/<stem>.npz``.

    Raises:
        ValueError: ``category``/``stem`` lead outside ``root``
            (:func:`geocorr.data.paths.inside`).
    """
    return inside(root, "GroundTruth", category, f"{stem}.npz",
                  source=f"image {category}/{stem}", what="ground truth")


def sim_errors_path(root: str | Path, category: str, stem: str) -> Path:
    """``<root>/GroundTruth/<category>/<stem>.errors.json``: the simulator's error terms.

    Raises:
        ValueError: ``category``/``stem`` lead outside ``root``.
    """
    return inside(root, "GroundTruth", category, f"{stem}.errors.json",
                  source=f"image {category}/{stem}", what="simulator error record")


def load_sim_errors(root: str | Path, category: str, stem: str) -> dict:
    """Every error term's true value for one image (EVALUATION ONLY; docs/synth.md).

    Raises:
        FileNotFoundError: no such file (folders written before the error levels).
        ValueError: not JSON.
    """
    import json

    path = sim_errors_path(root, category, stem)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: simulator error record not found")
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None


def load_groundtruth(root: str | Path, category: str, stem: str) -> GroundTruth:
    """Read one image's ground truth (EVALUATION ONLY).

    Raises:
        FileNotFoundError: no such file (names the path).
        ValueError: the file lacks a field or is inconsistent.
    """
    path = groundtruth_path(root, category, stem)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ground-truth file not found")
    with np.load(path, allow_pickle=False) as d:
        return GroundTruth.from_arrays({k: d[k] for k in d.files}, where=str(path))


def mirror_parts(part_names: tuple[str, ...] | list[str]) -> np.ndarray:
    """Index of each part's left/right mirror, ``-1`` where none.

    A part's mirror is the part whose name equals it with ``left``/``right``
    (or ``l``/``r`` as a ``_``-separated token) swapped.

    Returns:
        ``(P,)`` int64.
    """
    swap = {"left": "right", "right": "left", "l": "r", "r": "l"}
    index = {n: i for i, n in enumerate(part_names)}
    out = np.full(len(part_names), -1, dtype=np.int64)
    for i, name in enumerate(part_names):
        tokens = re.split(r"([_\-\s])", name.lower())
        if not any(t in swap for t in tokens):
            continue
        mirrored = "".join(swap.get(t, t) for t in tokens)
        for j, other in enumerate(part_names):
            if j != i and other.lower() == mirrored:
                out[i] = index[other]
    return out


@dataclass(frozen=True, eq=False)
class CorrespondenceCheck:
    """Verdict on ``N`` pixel pairs (source image -> target image).

    Attributes:
        correct: ``(N,)`` bool, the documented rule (same part, template
            distance < threshold, both on the object).
        same_part: ``(N,)`` bool, both on the object and the same part.
        template_dist: ``(N,)`` float64 template distance; ``inf`` unless same part.
        src_on_object: ``(N,)`` bool, source pixel inside the image and on the object.
        trg_on_object: ``(N,)`` bool, target pixel inside the image and on the object.
        swap: ``(N,)`` int8 code: :data:`SWAP_NONE`, :data:`SWAP_LEFT_RIGHT`,
            :data:`SWAP_REPEATED`.
        possible: ``(N,)`` bool, the source point's counterpart is visible in the
            target (some target pixel would be correct) — the recall denominator.
        true_uv: ``(N, 2)`` float64 target pixel ``(x, y)`` of the source point's
            true counterpart (module doc), NaN where it is not ``possible``.
        pixel_error: ``(N,)`` float64 distance from the matched target pixel to
            ``true_uv`` divided by the target object's bbox ``max(h, w)``; ``inf``
            where not ``possible``.
    """

    correct: np.ndarray
    same_part: np.ndarray
    template_dist: np.ndarray
    src_on_object: np.ndarray
    trg_on_object: np.ndarray
    swap: np.ndarray
    possible: np.ndarray
    true_uv: np.ndarray | None = None
    pixel_error: np.ndarray | None = None

    def correct_pck(self, alpha: float) -> np.ndarray:
        """``(N,)`` bool: target pixel within ``alpha`` bbox sides of the true counterpart.

        Raises:
            ValueError: ``alpha`` is not positive, or the check carries no ``pixel_error``.
        """
        if not alpha > 0:
            raise ValueError(f"alpha must be positive, got {alpha}")
        if self.pixel_error is None:
            raise ValueError("this CorrespondenceCheck has no pixel_error (built by hand?)")
        return self.pixel_error < alpha


def _lookup(gt: GroundTruth, uv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    H, W = gt.part_map.shape
    cols = np.rint(uv[:, 0])
    rows = np.rint(uv[:, 1])
    inside = np.isfinite(uv).all(axis=1) & (cols >= 0) & (cols < W) & (rows >= 0) & (rows < H)
    r = np.where(inside, rows, 0).astype(np.int64)
    c = np.where(inside, cols, 0).astype(np.int64)
    part = np.where(inside, gt.part_map[r, c], -1).astype(np.int64)
    tmpl = gt.template_map[r, c].astype(np.float64)
    return part >= 0, part, tmpl


def check_correspondences(gt_src: GroundTruth, gt_trg: GroundTruth, uv_src: np.ndarray,
                          uv_trg: np.ndarray, threshold: float = DEFAULT_THRESHOLD
                          ) -> CorrespondenceCheck:
    """Score pixel matches against the dense ground truth (nearest pixel).

    Args:
        gt_src: source image's ground truth.
        gt_trg: target image's ground truth (same category).
        uv_src: ``(N, 2)`` source pixels ``(x, y)``.
        uv_trg: ``(N, 2)`` matched target pixels.
        threshold: template distance below which a same-part match is correct.

    Returns:
        A :class:`CorrespondenceCheck`.
    """
    from scipy.spatial import cKDTree

    uv_src = np.asarray(uv_src, dtype=np.float64)
    uv_trg = np.asarray(uv_trg, dtype=np.float64)
    if uv_src.ndim != 2 or uv_src.shape[1] != 2 or uv_trg.shape != uv_src.shape:
        raise ValueError(f"uv_src and uv_trg must both have shape (N, 2), got {uv_src.shape} "
                         f"and {uv_trg.shape}")
    if gt_src.part_names != gt_trg.part_names:
        raise ValueError(f"check_correspondences: {gt_src.stem} and {gt_trg.stem} have "
                         f"different part lists (different categories?)")
    if not threshold > 0:
        raise ValueError(f"threshold must be positive, got {threshold}")
    s_on, s_part, s_tmpl = _lookup(gt_src, uv_src)
    t_on, t_part, t_tmpl = _lookup(gt_trg, uv_trg)
    same = s_on & t_on & (s_part == t_part)
    dist = np.full(len(uv_src), np.inf)
    dist[same] = np.linalg.norm(s_tmpl[same] - t_tmpl[same], axis=1)
    correct = same & (dist < threshold)

    mirror = mirror_parts(gt_src.part_names)
    material = np.asarray(gt_src.part_material, dtype=object)
    swap = np.zeros(len(uv_src), dtype=np.int8)
    diff = s_on & t_on & ~same
    if diff.any():
        sp, tp = s_part[diff], t_part[diff]
        same_mat = material[sp] == material[tp]
        is_mirror = mirror[sp] == tp
        swap[np.flatnonzero(diff)[is_mirror]] = SWAP_LEFT_RIGHT
        swap[np.flatnonzero(diff)[same_mat & ~is_mirror]] = SWAP_REPEATED

    possible = np.zeros(len(uv_src), dtype=bool)
    true_uv = np.full((len(uv_src), 2), np.nan)
    for p in np.unique(s_part[s_on]):
        rows = np.flatnonzero(s_on & (s_part == p))
        ty, tx = np.nonzero(gt_trg.part_map == p)
        if len(ty) == 0:
            continue
        target = gt_trg.template_map[ty, tx].astype(np.float64)
        d, j = cKDTree(target).query(s_tmpl[rows], k=1)
        possible[rows] = d < threshold
        ok = rows[d < threshold]
        true_uv[ok] = np.stack([tx[j[d < threshold]], ty[j[d < threshold]]], axis=1)
    oy, ox = np.nonzero(gt_trg.part_map >= 0)
    side = float(max(np.ptp(oy), np.ptp(ox)) + 1) if len(oy) else 1.0
    pixel_error = np.full(len(uv_src), np.inf)
    pixel_error[possible] = np.linalg.norm(uv_trg[possible] - true_uv[possible], axis=1) / side
    return CorrespondenceCheck(correct=correct, same_part=same, template_dist=dist,
                               src_on_object=s_on, trg_on_object=t_on, swap=swap,
                               possible=possible, true_uv=true_uv, pixel_error=pixel_error)


@dataclass(frozen=True)
class ReconstructionScore:
    """How far a (refined, canonicalised) reconstruction is from the ground truth.

    Attributes:
        rotation_error_deg: angle of ``R_gt^T R``: 0 when the mesh axes are the
            ground-truth canonical axes (a 90/180 value = a yaw mis-canonicalisation).
        yaw_error_deg: the rotation's signed turn about the canonical Z, in
            ``(-180, 180]``.
        mask_iou: IoU of the mesh rendered with its camera vs the true mask.
        chamfer: symmetric mean nearest-vertex distance in the camera frame,
            after rescaling the reconstruction about the camera centre to the
            ground truth's median depth (the depth/size ambiguity removed), as
            a fraction of the ground-truth bbox diagonal.
    """

    rotation_error_deg: float
    yaw_error_deg: float
    mask_iou: float
    chamfer: float


def score_reconstruction(gt: GroundTruth, vertices: np.ndarray, faces: np.ndarray,
                         camera: Camera) -> ReconstructionScore:
    """Score stage 1's output (mesh in its canonical frame + its camera) for one image.

    Args:
        gt: the image's ground truth.
        vertices: ``(V, 3)`` the reconstruction in its own (canonicalised) frame.
        faces: ``(F, 3)`` its triangles.
        camera: its camera (object -> image of ``gt``'s size).

    Returns:
        A :class:`ReconstructionScore`.
    """
    from scipy.spatial import cKDTree
    from scipy.spatial.transform import Rotation

    from geocorr.geometry.raster import rasterize

    if camera.size != gt.camera.size:
        raise ValueError(f"camera is {camera.width}x{camera.height}, the image "
                         f"{gt.stem} is {gt.camera.width}x{gt.camera.height}")
    rel = gt.camera.R.T @ camera.R
    rot_err = float(np.degrees(np.linalg.norm(Rotation.from_matrix(rel).as_rotvec())))
    yaw = float(np.degrees(np.arctan2(rel[1, 0], rel[0, 0])))
    mask = rasterize(vertices, faces, camera).mask
    truth = gt.part_map >= 0
    union = int((mask | truth).sum())
    iou = float((mask & truth).sum() / union) if union else 0.0
    p_rec = camera.to_camera(np.asarray(vertices, np.float64))
    p_gt = gt.camera.to_camera(gt.vertices)
    p_rec = p_rec * (np.median(p_gt[:, 2]) / np.median(p_rec[:, 2]))
    d = 0.5 * (cKDTree(p_gt).query(p_rec)[0].mean() + cKDTree(p_rec).query(p_gt)[0].mean())
    diag = float(np.linalg.norm(np.ptp(gt.vertices, axis=0)))
    return ReconstructionScore(rotation_error_deg=rot_err, yaw_error_deg=yaw, mask_iou=iou,
                               chamfer=float(d / diag))


@dataclass(frozen=True, eq=False)
class VertexLabels:
    """Ground-truth part and template coordinate of a reconstruction's vertices (diagnostic).

    Attributes:
        part: ``(V,)`` int64 part of the nearest ground-truth vertex.
        template: ``(V, 3)`` float64 its template coordinate.
        distance: ``(V,)`` float64 distance to it, in ground-truth bbox diagonals.
    """

    part: np.ndarray
    template: np.ndarray
    distance: np.ndarray


def label_vertices(gt: GroundTruth, vertices: np.ndarray, camera: Camera) -> VertexLabels:
    """Give every vertex of stage 1's mesh the ground truth of where it really is.

    Both the reconstruction (with its camera) and the ground truth (with the
    true camera) are put in the camera frame, the reconstruction rescaled about
    the camera centre to the ground truth's median depth (as in
    :func:`score_reconstruction`), and each vertex takes the part and template
    coordinate of its nearest ground-truth vertex. A yaw-flipped reconstruction
    gets the labels of where its vertices are in the image, i.e. the truth.

    Args:
        gt: the image's ground truth.
        vertices: ``(V, 3)`` the reconstruction in its canonical frame.
        camera: its camera.

    Returns:
        :class:`VertexLabels`.
    """
    from scipy.spatial import cKDTree

    p_rec = camera.to_camera(np.asarray(vertices, np.float64))
    p_gt = gt.camera.to_camera(gt.vertices)
    p_rec = p_rec * (np.median(p_gt[:, 2]) / np.median(p_rec[:, 2]))
    d, j = cKDTree(p_gt).query(p_rec)
    diag = float(np.linalg.norm(np.ptp(gt.vertices, axis=0))) or 1.0
    return VertexLabels(part=np.asarray(gt.vertex_part[j], np.int64),
                        template=np.asarray(gt.vertex_template[j], np.float64),
                        distance=d / diag)

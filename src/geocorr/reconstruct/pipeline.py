"""Stage 1 over a dataset, with a resumable per-image cache.

Cache layout (stages 2-3 read it; everything is written atomically, tmp file +
``os.replace``)::

    CACHE/<category>/<stem>/mask.png      object mask used (0/255)
    CACHE/<category>/<stem>/refined.ply   mesh after scale/translation refinement
                                          (intermediate; before the yaw step)
    CACHE/<category>/<stem>/predicted_camera.json
                                          the reconstructor's camera turned by the
                                          refinement's rotation, if one was kept
                                          (renders refined.ply; the mesh's own frame
                                          is never turned)
    CACHE/<category>/<stem>/refine.json   refinement result (IoU before/after, s, T,
                                          init, failure flag, timings)
    CACHE/<category>/<stem>/mesh.ply      FINAL canonicalized mesh: refined
                                          (X' = s X + T), then rotated about its own
                                          origin by G = A Rz(k 90) (k quarter turns,
                                          then the small alignment A)
    CACHE/<category>/<stem>/camera.json   FINAL camera (geocorr camera JSON): renders
                                          mesh.ply exactly onto the image
                                          (R' = R G^T, t' = t)
    CACHE/<category>/<stem>/record.json   written last: its presence marks the image
                                          done (resume skips it)
    CACHE/<category>/reference.json       the category's reference choice (CPU estimator):
                                          pool, medoid, class counts, margin, symmetry

``record.json`` fields: ``category``, ``stem``, ``width``, ``height``,
``mask_source``, ``mesh_source``, ``refine`` (``iou_before``, ``iou_after``,
``scale``, ``translation``, ``rotation``, ``rotvec_deg``, ``rotation_deg``,
``focal_scale``, ``rotation_status``, ``iou_fixed``, ``iou_rotated``, ``init``,
``failed``, ``reason``, ``seconds``: :class:`~geocorr.reconstruct.refine.RefineResult`),
``yaw`` (the vote: ``correction``, ``tally``, ``margin``, per-view azimuths,
estimates and votes), ``k``, ``margin``, ``direct_k`` (direct alignment to the
reference, CPU estimator only, else ``null``), ``reference`` (CPU estimator:
the category reference's ``stem``, class ``counts``, plurality ``margin`` and
its own ``symmetry``; else ``null``), ``symmetry`` (this mesh's own yaw
symmetry: ``order``, ``asymmetry`` under 90/180 degrees, ``floor``,
``spread``, ``axis_deg``; :func:`~geocorr.reconstruct.canonical.instance_symmetry`),
``yaw_symmetry`` (the order the vote respected: max of the mesh's and the
reference's; ``k`` is only defined modulo ``4 / yaw_symmetry`` quarter turns
as far as geometry goes), ``canonical`` (the continuous alignment to the
reference after the quarter turns: ``rotvec_deg``, ``yaw_deg``, ``tilt_deg``,
``angle_deg``, ``angle_total_deg`` (with a symmetric mesh's untilt),
``residual`` and ``residual_before`` (Chamfer in RMS radii), ``confidence``,
``applied``; ``null`` without a reference), ``rotation`` (``G``, the 3x3
rotation applied to ``refined.ply``), ``estimator``, ``failed`` (=
refinement failed), ``timings`` (seconds per step), ``frame``
(:func:`geocorr.reconstruct.frame.check_frame` of the reconstructor's camera:
``ok`` is false when the mesh does not look Z-up) and ``settings``.

Order of work: every image is segmented, reconstructed and refined first
(phase A); then, per category, the yaw step (phase B), because the CPU
estimator's reference mesh is chosen among all of the category's refined
meshes. The reference is chosen among a *pool* of the category's meshes:
by default every image of the category in the dataset (``JPEGImages/``), not
only the ones being processed, because the reference's front is the plurality
orientation of the pool and a small pool is easily outvoted by flips (the demo's
6 test cars: 4 flipped by 180 degrees; all 24 cars of its dataset: 12 canonical,
7 flipped). Pool images outside ``images`` are segmented and reconstructed but
not refined (the reference compares bbox-normalised shapes, which refinement's
scale and translation do not change) and nothing is cached for them. The
pipeline never reads ``GroundTruth/`` (``tests/test_groundtruth_wall.py``).

Confinement: categories and stems come from the dataset (``Layout`` lines);
every path built from them, read (``DIR/JPEGImages/<category>/<stem>.jpg``)
or written (``CACHE/<category>/<stem>/``), must resolve inside its root
(:func:`geocorr.data.paths.inside`). :func:`run_stage1` checks every image
before it writes anything, so a bad name leaves no file behind.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from geocorr.atomic import write_bytes_atomic
from geocorr.atomic import write_json_atomic as _write_json
from geocorr.data.images import read_mask, read_rgb
from geocorr.data.pairs import require_dir
from geocorr.data.paths import Confined, inside
from geocorr.engine import ItemFailure, ready_state
from geocorr.engine.local import LocalEngine
from geocorr.geometry.camera import Camera, load_camera, save_camera
from geocorr.reconstruct.canonical import (
    CanonSettings,
    InstanceSymmetry,
    align_to_reference,
    centred,
    instance_symmetry,
    rotation_angle_deg,
    surface_points,
)
from geocorr.reconstruct.frame import check_frame
from geocorr.reconstruct.orientation import OrientationEstimator
from geocorr.reconstruct.reconstructor import Reconstructor
from geocorr.reconstruct.refine import RefineSettings, refine_pose
from geocorr.reconstruct.seen_side import facing_direction, seen_side_consensus
from geocorr.reconstruct.segmenter import Segmenter
from geocorr.reconstruct.template import (
    TemplateOrientationEstimator,
    TemplateSettings,
    normalized_points,
    select_reference,
)
from geocorr.reconstruct.views import rotation_z
from geocorr.reconstruct.yaw_vote import VoteSettings, canonicalize_yaw, seen_side_decision

__all__ = ["Stage1Settings", "dataset_images", "run_stage1", "load_cached", "CachedImage",
           "write_bytes_atomic", "write_json_atomic"]


@dataclass
class Stage1Settings:
    """Settings of :func:`run_stage1`.

    Attributes:
        refine: render-and-compare refinement settings.
        vote: yaw vote settings (number of views, render settings).
        template: CPU template estimator / reference selection settings; its
            ``views`` are replaced by ``vote.views`` so both render alike.
        canon: per-instance yaw symmetry and the continuous (yaw + tilt)
            alignment to the category reference after the vote.
        estimator: ``"template"`` (CPU, reference per category) or
            ``"external"`` (the ``estimator`` argument of :func:`run_stage1`,
            e.g. Orient Anything V2).
        skip_yaw: stop after refinement (``k = 0``).
        reference_pool: meshes the CPU estimator's reference is chosen among:
            ``"dataset"`` (default: every image of the category in the
            dataset's ``JPEGImages/``; cheap for file/simulated
            reconstructions, one model run per extra image for SAM3D) or
            ``"images"`` (only the images being processed).
        reference_max: at most this many pool meshes per category (the
            processed images first, then evenly spaced others); the pairwise
            alignment is quadratic in it (48: ~1100 pairs, 6 s on this 2-core
            box at load 5).
    """

    refine: RefineSettings = field(default_factory=RefineSettings)
    vote: VoteSettings = field(default_factory=VoteSettings)
    template: TemplateSettings = field(default_factory=TemplateSettings)
    canon: CanonSettings = field(default_factory=CanonSettings)
    estimator: str = "template"
    skip_yaw: bool = False
    reference_pool: str = "dataset"
    reference_max: int = 48


# ------------------------------------------------------------------ file I/O
def write_json_atomic(path: Path, obj) -> None:
    """Atomic JSON (one-space indent), as every cache record is written."""
    _write_json(path, obj, indent=1)


def _ply_bytes(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    import trimesh

    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    return mesh.export(file_type="ply", encoding="binary")


def _png_bytes(mask: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buf, format="PNG")
    return buf.getvalue()


def _load_ply(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from geocorr.geometry.mesh import load_mesh

    m = load_mesh(path)
    return np.asarray(m.vertices, dtype=np.float64), np.asarray(m.faces, dtype=np.int64)


# --------------------------------------------------------------- image lists
def dataset_images(dataset_root: str | Path, split: str = "test",
                   categories: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """``(category, stem)`` of every image used by a split, sorted.

    Args:
        dataset_root: SPair-layout folder.
        split: ``trn``/``val``/``test`` (read from ``Layout/large/<split>.txt``,
            pair stems ``<id>-<src>-<trg>:<cat>``) or ``all`` (every file of
            ``JPEGImages/``).
        categories: keep only these.

    Raises:
        FileNotFoundError: ``dataset_root``, the layout file or ``JPEGImages/`` is missing.
        NotADirectoryError: ``dataset_root`` is a file.
        ValueError: a malformed layout line, or one whose category or image
            stem leads outside the dataset root (names the file and line).
    """
    root = require_dir(Path(dataset_root), "dataset")
    out: set[tuple[str, str]] = set()
    if split == "all":
        jpg = root / "JPEGImages"
        if not jpg.is_dir():
            raise FileNotFoundError(f"{jpg}: no JPEGImages/ folder")
        for p in jpg.glob("*/*.jpg"):
            inside(root, "JPEGImages", p.parent.name, p.name, source=jpg, what="image")
            out.add((p.parent.name, p.stem))
    else:
        layout = root / "Layout" / "large" / f"{split}.txt"
        if not layout.is_file():
            raise FileNotFoundError(f"split file not found: {layout}")
        confined = Confined(root)
        for n, line in enumerate(layout.read_text().splitlines(), 1):
            line = line.strip()
            if not line:
                continue
            name, sep, cat = line.rpartition(":")
            parts = name.split("-")
            if not sep or len(parts) != 3 or not cat or not all(parts):
                raise ValueError(f"{layout}:{n}: expected '<id>-<src>-<trg>:<category>', got "
                                 f"{line!r}")
            for stem in parts[1:]:
                confined.join("JPEGImages", cat, f"{stem}.jpg", source=f"{layout}:{n}",
                              what="image")
                out.add((cat, stem))
    if categories:
        out = {x for x in out if x[0] in set(categories)}
    return sorted(out)


def _bbox(root: Path, category: str, stem: str) -> tuple[float, float, float, float] | None:
    p = inside(root, "ImageAnnotation", category, f"{stem}.json",
               source=f"image {category}/{stem}", what="image annotation")
    if not p.is_file():
        return None
    try:
        box = json.loads(p.read_text()).get("bndbox")
        return tuple(float(x) for x in box) if box and len(box) == 4 else None
    except (json.JSONDecodeError, TypeError, ValueError):
        return None


# --------------------------------------------------------------------- runner
@dataclass(frozen=True, eq=False)
class CachedImage:
    """One finished image read back from the cache.

    Attributes:
        vertices: ``(V, 3)`` canonicalized mesh vertices.
        faces: ``(F, 3)`` triangle indices.
        camera: camera rendering the mesh onto the image.
        mask: ``(H, W)`` bool mask.
        record: the ``record.json`` dict.
    """

    vertices: np.ndarray
    faces: np.ndarray
    camera: Camera
    mask: np.ndarray
    record: dict


def load_cached(cache: str | Path, category: str, stem: str) -> CachedImage:
    """Read a finished image (``record.json`` must exist); errors name the file."""
    d = inside(cache, category, stem, source=f"stage-1 cache {cache}", what="image folder")
    rec_p = d / "record.json"
    if not rec_p.is_file():
        raise FileNotFoundError(f"{rec_p}: image not reconstructed (run geocorr reconstruct)")
    v, f = _load_ply(d / "mesh.ply")
    mask = read_mask(d / "mask.png")
    return CachedImage(vertices=v, faces=f, camera=load_camera(d / "camera.json"), mask=mask,
                       record=json.loads(rec_p.read_text()))


def _phase_a(root: Path, out: Path, category: str, stem: str, segmenter: Segmenter,
             reconstructor: Reconstructor, settings: Stage1Settings) -> dict:
    d = out / category / stem
    refine_p = d / "refine.json"
    if refine_p.is_file() and (d / "refined.ply").is_file() and (d / "mask.png").is_file():
        return json.loads(refine_p.read_text())
    timings: dict[str, float] = {}
    t = time.perf_counter()
    image = read_rgb(root / "JPEGImages" / category / f"{stem}.jpg")
    mask = segmenter.segment(image, category, stem, _bbox(root, category, stem))
    timings["segment"] = time.perf_counter() - t
    t = time.perf_counter()
    rec = reconstructor.reconstruct(image, mask, category, stem)
    timings["reconstruct"] = time.perf_counter() - t
    res = refine_pose(rec.vertices, rec.faces, rec.camera, mask, settings.refine)
    timings["refine"] = res.seconds
    write_bytes_atomic(d / "mask.png", _png_bytes(mask))
    refined_v, refined_cam = res.in_own_frame(rec.vertices, rec.camera)
    write_bytes_atomic(d / "refined.ply", _ply_bytes(refined_v, rec.faces))
    save_camera(refined_cam, d / "predicted_camera.json")
    info = {"category": category, "stem": stem, "width": int(image.shape[1]),
            "height": int(image.shape[0]), "mask_source": segmenter.name,
            "mesh_source": rec.source, "refine": res.to_dict(), "timings": timings,
            "frame": check_frame(rec.camera).to_dict()}
    write_json_atomic(refine_p, info)
    return info


def run_stage1(dataset_root: str | Path, images: Sequence[tuple[str, str]],
               segmenter: Segmenter, reconstructor: Reconstructor, out: str | Path,
               settings: Stage1Settings | None = None,
               estimator: OrientationEstimator | None = None, progress: bool = True,
               on_record: Callable[[dict], None] | None = None, engine=None) -> list[dict]:
    """Run stage 1 on ``images`` and fill the cache (see the module docstring).

    Per-image work runs on ``engine``: phase A (segment, reconstruct, refine) on
    workers that keep the segmenter and reconstructor (Ray actors: a model is
    loaded once per worker), phase B (the yaw vote against the category's
    reference, chosen here between the two phases) as tasks. Every file is
    written atomically by the worker that makes it, as in a local run; the files
    are the same whatever the engine. An image whose input is bad (a malformed
    mesh or mask, a missing file: ``ValueError`` / ``FileNotFoundError``) is
    recorded as failed -- its record has ``"error"`` and no ``refine`` -- and
    gets no ``record.json``, so a rerun retries it; the others go on.

    Args:
        dataset_root: SPair-layout dataset (``JPEGImages/``, optional
            ``ImageAnnotation/`` boxes for SAM3's instance choice).
        images: ``(category, stem)`` list, e.g. from :func:`dataset_images`.
        segmenter: mask source.
        reconstructor: mesh + camera source.
        out: cache folder.
        settings: :class:`Stage1Settings`.
        estimator: orientation estimator when ``settings.estimator == "external"``.
        progress: show rich progress bars.
        on_record: called with each new ``record.json`` dict (in completion order).
        engine: a :class:`~geocorr.engine.Engine` (default: local).

    Returns:
        The ``record.json`` dicts of all ``images`` (new and resumed), in order;
        a failed image's is ``{"category", "stem", "failed": True, "error"}``.
    """
    from functools import partial

    from rich.progress import Progress

    settings = settings or Stage1Settings()
    engine = engine or LocalEngine()
    if settings.estimator not in ("template", "external"):
        raise ValueError(f"Stage1Settings.estimator must be template|external, got "
                         f"{settings.estimator!r}")
    if settings.reference_pool not in ("dataset", "images"):
        raise ValueError(f"Stage1Settings.reference_pool must be dataset|images, got "
                         f"{settings.reference_pool!r}")
    if settings.reference_max < 1:
        raise ValueError(f"Stage1Settings.reference_max must be >= 1, got "
                         f"{settings.reference_max}")
    if settings.estimator == "external" and estimator is None and not settings.skip_yaw:
        raise ValueError("estimator='external' needs an OrientationEstimator")
    root, out = Path(dataset_root), Path(out)
    for cat, stem in images:  # before anything is written
        where = f"run_stage1 image ({cat!r}, {stem!r})"
        inside(root, "JPEGImages", cat, f"{stem}.jpg", source=where, what="image")
        inside(out, cat, stem, "record.json", source=where, what="cache entry")
        inside(out, cat, "reference.json", source=where, what="cache entry")
    tmpl = TemplateSettings(**{**asdict(settings.template), "views": settings.vote.views})
    done = {x for x in images if (out / x[0] / x[1] / "record.json").is_file()}
    todo = [x for x in images if x not in done]
    by_cat: dict[str, list[str]] = {}
    for cat, stem in images:
        by_cat.setdefault(cat, []).append(stem)
    infos: dict[tuple[str, str], dict] = {}
    failed: dict[tuple[str, str], str] = {}
    name = "/".join
    with Progress(disable=not progress, transient=False) as bar:
        task = bar.add_task("refine", total=len(todo))
        for item, info in engine.map_items(partial(_phase_a_item, root, out, settings), todo,
                                           setup=ready_state((segmenter, reconstructor)),
                                           stateful=True, label=name):
            if isinstance(info, ItemFailure):
                failed[item] = info.message
            else:
                infos[item] = info
            bar.advance(task)
        cats = sorted({c for c, _ in infos})
        jobs: dict[str, tuple] = {}
        for cat in cats:  # the category references need every refined mesh: between phases
            est, direct, ref, ref_pts, syms, seen = estimator, {}, None, None, {}, {}
            if not settings.skip_yaw and settings.estimator == "template":
                pool = _reference_pool(root, cat, by_cat[cat], settings)
                est, direct, ref, ref_pts, syms, seen = _category_reference(
                    root, out, cat, by_cat[cat], pool, tmpl, settings.canon, segmenter,
                    reconstructor, settings.vote)
            jobs[cat] = (est, direct, ref, ref_pts, syms, seen)
        pending = [(c, s) for c, s in todo if (c, s) in infos]
        task = bar.add_task("yaw", total=len(pending))
        phase_b = partial(_phase_b_item, out, settings, jobs, infos)
        for item, rec in engine.map_items(phase_b, pending, label=name,
                                          group=lambda x: x[0]):
            if isinstance(rec, ItemFailure):
                failed[item] = rec.message
            elif on_record is not None:
                on_record(rec)
            bar.advance(task)
    return [{"category": c, "stem": s, "failed": True, "error": failed[(c, s)]}
            if (c, s) in failed else json.loads((out / c / s / "record.json").read_text())
            for c, s in images]


def _phase_a_item(root: Path, out: Path, settings: Stage1Settings, models: tuple,
                  item: tuple[str, str]) -> dict:
    """Phase A of one image on a worker holding ``models = (segmenter, reconstructor)``."""
    return _phase_a(root, out, item[0], item[1], models[0], models[1], settings)


def _phase_b_item(out: Path, settings: Stage1Settings, jobs: dict, infos: dict, _state,
                  item: tuple[str, str]) -> dict:
    """Phase B of one image; ``jobs[category] = (estimator, direct corrections, reference,
    reference points, per-stem symmetry, per-stem seen-side cost)``."""
    cat, stem = item
    est, direct, ref, ref_pts, syms, seen = jobs[cat]
    return _phase_b(out, cat, stem, infos[item], est, direct.get(stem), settings, ref,
                    ref_pts, syms.get(stem), seen.get(stem))


def _reference_pool(root: Path, category: str, stems: Sequence[str],
                    settings: Stage1Settings) -> list[str]:
    """Stems the category reference is chosen among (see ``Stage1Settings.reference_pool``)."""
    pool = list(dict.fromkeys(stems))[:settings.reference_max]
    if settings.reference_pool == "images" or len(pool) >= settings.reference_max:
        return pool
    have = set(pool)
    others = [s for _, s in dataset_images(root, "all", [category]) if s not in have]
    room = settings.reference_max - len(pool)
    if len(others) > room:
        others = [others[i] for i in np.linspace(0, len(others) - 1, room).round().astype(int)]
    return pool + others


def _category_reference(root: Path, out: Path, category: str, stems: Sequence[str],
                        pool: Sequence[str], tmpl: TemplateSettings, canon: CanonSettings,
                        segmenter: Segmenter, reconstructor: Reconstructor,
                        vote: VoteSettings = VoteSettings()
                        ) -> tuple[OrientationEstimator, dict[str, int], dict, np.ndarray,
                                   dict[str, InstanceSymmetry], dict[str, np.ndarray]]:
    """Medoid reference of the pool's meshes -> estimator, direct corrections, summary,
    the reference's canonical points, each processed mesh's own symmetry and its
    seen-side consensus cost (:mod:`geocorr.reconstruct.seen_side`; empty when off).

    Pool-only images that cannot be read, segmented or reconstructed (e.g.
    mesh files exist only for the processed split) are left out and listed in
    ``reference.json`` under ``pool_skipped``.
    """
    meshes, cams = [], []
    used: list[str] = []
    skipped: dict[str, str] = {}
    for s in pool:
        d = out / category / s
        p = d / "refined.ply"
        if p.is_file():
            meshes.append(_load_ply(p))
            cams.append(load_camera(d / "predicted_camera.json"))
        elif (d / "record.json").is_file():  # intermediate removed: undo the yaw of mesh.ply
            rec = json.loads((d / "record.json").read_text())
            v, f = _load_ply(d / "mesh.ply")
            G = (np.asarray(rec["rotation"], np.float64) if rec.get("rotation") is not None
                 else np.round(rotation_z(90.0 * rec["k"])))
            meshes.append((v @ G, f))  # v = refined @ G^T
            cam = load_camera(d / "camera.json")
            cams.append(cam.with_pose(cam.R @ G, cam.t))
        else:  # pool-only image: the raw reconstruction (normalisation makes refining moot)
            try:
                image = read_rgb(root / "JPEGImages" / category / f"{s}.jpg")
                mask = segmenter.segment(image, category, s, _bbox(root, category, s))
                r = reconstructor.reconstruct(image, mask, category, s)
            except (FileNotFoundError, ValueError) as exc:  # e.g. meshes only for the split
                skipped[s] = str(exc)
                continue
            meshes.append((np.asarray(r.vertices, np.float64), np.asarray(r.faces, np.int64)))
            cams.append(r.camera)
        used.append(s)
    pool = used
    t0 = time.perf_counter()
    choice = select_reference(meshes, tmpl, canon)
    seconds = time.perf_counter() - t0
    seen: dict[str, np.ndarray] = {}
    cons = None
    if vote.seen_side.enabled:
        t0 = time.perf_counter()
        ss = vote.seen_side
        cons = seen_side_consensus(
            [normalized_points(v, f, ss.points, ss.seed) for v, f in meshes],
            [facing_direction(v, c) for (v, _), c in zip(meshes, cams, strict=True)], ss)
        seen = {s: cons.cost[i] for i, s in enumerate(pool) if s in set(stems)}
        seconds_seen = time.perf_counter() - t0
    v_ref, f_ref = meshes[choice.index]
    v_ref = v_ref @ choice.reference_rotation().T
    direct = {s: int(k) for s, k in zip(pool, choice.direct_corrections, strict=True)
              if s in set(stems)}
    write_json_atomic(out / category / "reference.json", {
        "reference": pool[choice.index], "pool": list(pool), "pool_skipped": skipped,
        **choice.to_dict(),
        "direct_corrections": direct, "seconds": seconds,
        "seen_side": None if cons is None else {
            "corrections": {s: int(k) for s, k in zip(pool, cons.corrections, strict=True)},
            "rounds": cons.rounds, "converged": cons.converged, "gauge": cons.gauge,
            "seconds": seconds_seen},
        "rule": "per-instance yaw symmetry (self-Chamfer under 90/180-degree turns against "
                "the instance's own variation); medoid of the lowest-order meshes under "
                "yaw-aligned symmetric Chamfer, its small frame error removed (median "
                "alignment of the pool), rotated onto the plurality class of the relative "
                "alignments (2-fold reference: pair first, then twin; tie: larger "
                "180-degree twin class, then the medoid's own, then the smallest rotation)"})
    # the estimator reports no symmetry of its own: each mesh's order is applied in the vote
    est = TemplateOrientationEstimator(v_ref, f_ref, tmpl, symmetry=1)
    summary = {"stem": pool[choice.index], "counts": [int(c) for c in choice.counts],
               "margin": int(choice.margin), "symmetry": int(choice.symmetry)}
    syms = {s: sym for s, sym in zip(pool, choice.instances, strict=True) if s in set(stems)}
    return est, direct, summary, choice.points, syms, seen


def _angle(R: np.ndarray) -> float:
    return float(rotation_angle_deg(R))


def _phase_b(out: Path, category: str, stem: str, info: dict,
             estimator: OrientationEstimator | None, direct_k: int | None,
             settings: Stage1Settings, reference: dict | None = None,
             reference_points: np.ndarray | None = None,
             symmetry: InstanceSymmetry | None = None,
             seen_cost: np.ndarray | None = None) -> dict:
    d = out / category / stem
    v, f = _load_ply(d / "refined.ply")
    cam = load_camera(d / "predicted_camera.json")
    t = time.perf_counter()
    sym = None
    order = 1
    if settings.skip_yaw or estimator is None:
        vote, k = None, 0
    else:
        # the pool already measured this mesh (same refined.ply, same settings)
        sym = symmetry if symmetry is not None else instance_symmetry(v, f, settings.canon)
        order = max(sym.order, int(reference["symmetry"]) if reference is not None else 1)
        vote = canonicalize_yaw(v, f, estimator, settings.vote, instance_order=order)
        if seen_cost is not None:
            vote = seen_side_decision(vote, seen_cost, settings.vote.twin_margin)
        k = vote.correction
    t_vote = time.perf_counter() - t
    Gq = Gk = np.round(rotation_z(90.0 * k))
    align = None
    G = Gk
    if vote is not None and reference_points is not None and settings.canon.align:
        t2 = time.perf_counter()
        # a symmetric mesh: untilted by its own axis, then only its yaw is aligned
        Gk = Gk @ sym.untilt()
        pts = centred(surface_points(v, f, settings.canon.points, settings.canon.seed)) @ Gk.T
        align = align_to_reference(pts, reference_points, settings.canon, tilt=sym.order == 1)
        G = align.rotation @ Gk
        t_align = time.perf_counter() - t2
    else:
        t_align = 0.0
    v2 = v @ G.T
    cam2 = cam.with_pose(cam.R @ G.T, cam.t)
    timings = dict(info.get("timings", {}), yaw=t_vote, align=t_align)
    write_bytes_atomic(d / "mesh.ply", _ply_bytes(v2, f))
    save_camera(cam2, d / "camera.json")
    rec = {**{k_: info[k_] for k_ in ("category", "stem", "width", "height", "mask_source",
                                       "mesh_source", "refine")},
           "yaw": vote.to_dict() if vote is not None else None,
           "k": int(k), "margin": float(vote.margin) if vote is not None else 0.0,
           "direct_k": direct_k, "reference": reference,
           "symmetry": sym.to_dict() if sym is not None else None,
           "yaw_symmetry": int(order),
           "canonical": ({**align.to_dict(), "angle_total_deg": _angle(G @ Gq.T)}
                         if align is not None else None),
           "rotation": [[float(x) for x in row] for row in G],
           "estimator": "none" if vote is None else getattr(estimator, "name", "external"),
           "failed": bool(info["refine"]["failed"]), "timings": timings,
           "frame": info.get("frame"),
           "settings": {"refine": asdict(settings.refine), "vote": asdict(settings.vote),
                        "template": asdict(settings.template),
                        "canon": asdict(settings.canon),
                        "estimator": settings.estimator}}
    write_json_atomic(d / "record.json", rec)
    return rec

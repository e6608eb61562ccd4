"""Generate the procedural benchmark: images, SPair annotations, simulated SAM3D outputs.

:func:`generate_dataset` writes, into a temporary sibling folder that is
renamed onto ``out_dir`` at the very end (a crash leaves nothing
half-written)::

    JPEGImages/<cat>/<stem>.jpg
    ImageAnnotation/<cat>/<stem>.json
    PairAnnotation/{trn,val,test}/<id>-<src>-<trg>:<cat>.json
    Layout/large/{trn,val,test}.txt
    Segmentation/<cat>/<stem>.png                 0/255 true visible mask (scoring)
    PredictedMasks/<cat>/<stem>.png               0/255 simulated SAM3 mask (the pipeline's)
    Meta/categories.json                          keypoint names + groups, parts, materials
    Meta/settings.json                            the settings that produced the folder
    Reconstructions/<cat>/<stem>.ply + .json      simulated SAM3D mesh + predicted camera
    GroundTruth/<cat>/<stem>.npz                  EVALUATION ONLY (see groundtruth.py)
    GroundTruth/<cat>/<stem>.errors.json          EVALUATION ONLY: every error term's true value
    preview.png                                   with ``preview=True``

Images are ``<cat>_<NNNN>`` with ``NNNN`` the image index; image ``i`` shows
instance ``i // views_per_instance``. Instances are split contiguously into
trn/val/test by ``split_fractions`` (no instance in two splits). Each image
draws everything from its own generator seeded by ``(seed, crc32(category),
index)``, so the bytes do not depend on the order or the number of workers;
the error terms of :mod:`geocorr.data.synth.errors` draw from a second
generator seeded by ``(seed, crc32(category), index, 2)``, so the images,
annotations and ground truth are the same at every error level.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from geocorr.data.synth.errors import MaskErrors, error_preset
from geocorr.data.synth.groundtruth import GroundTruth, groundtruth_path, sim_errors_path
from geocorr.data.synth.mask_errors import predict_mask
from geocorr.data.synth.preview import write_preview
from geocorr.data.synth.scene import SceneSettings, pose_name, sample_occluder, sample_scene
from geocorr.data.synth.shapes import CATEGORIES, category_info, make_shape
from geocorr.data.synth.simulator import (
    SimulatorSettings,
    rotation_error_deg,
    simulate_reconstruction,
)
from geocorr.data.synth.textures import instance_looks, random_background
from geocorr.data.synth.writer import (
    SPLITS,
    ImageRecord,
    encode_jpeg,
    encode_png,
    image_annotation,
    mask_bndbox,
    pair_annotation,
    pair_stem,
    save_npz,
    write_bytes,
    write_json,
)

__all__ = ["SynthSettings", "SynthSummary", "generate_dataset", "image_rng", "error_rng",
           "split_instances", "render_image", "with_error_level", "read_error_level"]


@dataclass
class SynthSettings:
    """What to generate.

    Attributes:
        seed: dataset seed (non-negative).
        categories: categories to generate; ``None`` = all of ``shapes.CATEGORIES``.
        images_per_category: images per category (20: the issue's benchmark size).
        views_per_instance: images per shape instance (1: every image a new
            object, as in SPair).
        split_fractions: instance fractions for trn/val/test (contiguous blocks).
        pairs_per_split: pairs per category for trn, val, test; capped by the
            number of ordered image pairs in the split with enough common keypoints.
        min_common_keypoints: a pair needs at least this many keypoints visible
            in both images.
        scene: view sampling (image size, elevation, fill...).
        simulator: SAM3D error model.
        visibility_tolerance: keypoint depth tolerance, fraction of the bbox diagonal.
        preview: also write ``preview.png``.
        masks: SAM3 mask error model of ``PredictedMasks/``; ``None`` = the
            true mask (oracle).
        error_level: the label of the error level these settings hold
            (``oracle``, ``realistic``, ``hard``; see :func:`with_error_level`).
        error_scale: the factor on that level's magnitudes.

    ``Meta/settings.json`` holds ``asdict`` of these settings, except that
    the fields added with the error levels (``masks``, ``simulator.errors``,
    ``error_level``, ``error_scale``) are left out at the oracle level: an
    oracle folder reads exactly like one written before they existed.
    """

    seed: int = 0
    categories: tuple[str, ...] | None = None
    images_per_category: int = 20
    views_per_instance: int = 1
    split_fractions: tuple[float, float, float] = (0.6, 0.15, 0.25)
    pairs_per_split: tuple[int, int, int] = (100, 100, 100)
    min_common_keypoints: int = 1
    scene: SceneSettings = field(default_factory=SceneSettings)
    simulator: SimulatorSettings = field(default_factory=SimulatorSettings)
    visibility_tolerance: float = 0.02
    preview: bool = False
    masks: MaskErrors | None = None
    error_level: str = "oracle"
    error_scale: float = 1.0

    def resolved_categories(self) -> tuple[str, ...]:
        """The categories to generate, checked against the registry."""
        if self.categories is None:
            return tuple(CATEGORIES)
        unknown = [c for c in self.categories if c not in CATEGORIES]
        if unknown:
            raise ValueError(f"categories: unknown {unknown}; known: {', '.join(CATEGORIES)}")
        if len(set(self.categories)) != len(self.categories):
            raise ValueError(f"categories: duplicates in {list(self.categories)}")
        return tuple(self.categories)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the bad field."""
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.images_per_category < 1:
            raise ValueError(f"images_per_category must be >= 1, got {self.images_per_category}")
        if self.views_per_instance < 1:
            raise ValueError(f"views_per_instance must be >= 1, got {self.views_per_instance}")
        if len(self.split_fractions) != 3 or min(self.split_fractions) < 0 \
                or sum(self.split_fractions) <= 0:
            raise ValueError(f"split_fractions must be 3 non-negative numbers, "
                             f"got {self.split_fractions}")
        if len(self.pairs_per_split) != 3 or min(self.pairs_per_split) < 0:
            raise ValueError(f"pairs_per_split must be 3 non-negative ints, "
                             f"got {self.pairs_per_split}")
        if self.min_common_keypoints < 0:
            raise ValueError(f"min_common_keypoints must be >= 0, got {self.min_common_keypoints}")
        if not self.visibility_tolerance > 0:
            raise ValueError(f"visibility_tolerance must be > 0, got {self.visibility_tolerance}")
        self.scene.validate()
        self.simulator.validate()
        self.resolved_categories()
        error_preset(self.error_level, self.error_scale)


def with_error_level(settings: SynthSettings, level: str, scale: float = 1.0) -> SynthSettings:
    """``settings`` with the simulator and mask errors of ``level`` x ``scale``.

    The level sets the simulator's scale/translation/surface errors and its
    :class:`~geocorr.data.synth.errors.ReconstructionErrors`, and the mask
    errors; other simulator fields (grid, vertex counts) are kept.
    """
    from dataclasses import replace

    lv = error_preset(level, scale)
    sim = replace(settings.simulator, scale_sigma=lv.scale_sigma, translation=lv.translation,
                  surface_noise=lv.surface_noise, errors=lv.reconstruction)
    return replace(settings, simulator=sim, masks=lv.masks, error_level=level,
                   error_scale=float(scale))


def read_error_level(root: str | os.PathLike) -> tuple[str, float]:
    """``(level, scale)`` a procedural dataset was generated at (``Meta/settings.json``).

    Folders written before the error levels, and oracle folders, read ``("oracle", 1.0)``.
    """
    path = Path(root) / "Meta" / "settings.json"
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read the dataset's settings ({exc})") from None
    return str(d.get("error_level", "oracle")), float(d.get("error_scale", 1.0))


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate_dataset` wrote.

    Attributes:
        out_dir: the dataset folder.
        num_images: images written.
        num_pairs: pairs per split, ``{"trn": n, "val": n, "test": n}``.
        flipped_fraction: fraction of simulated reconstructions with a yaw error.
        visible_keypoints: mean fraction of keypoints visible per image.
    """

    out_dir: Path
    num_images: int
    num_pairs: dict[str, int]
    flipped_fraction: float
    visible_keypoints: float


def image_rng(seed: int, category: str, index: int) -> np.random.Generator:
    """The one generator of image ``index`` of ``category``: independent of order/workers."""
    return np.random.default_rng([int(seed), zlib.crc32(category.encode()), int(index)])


def error_rng(seed: int, category: str, index: int) -> np.random.Generator:
    """The generator of image ``index``'s error terms (reconstruction and mask errors)."""
    return np.random.default_rng([int(seed), zlib.crc32(category.encode()), int(index), 2])


def split_instances(num_instances: int, fractions: tuple[float, float, float]) -> list[str]:
    """Split name per instance: contiguous blocks with sizes rounded from ``fractions``.

    Every split with a positive fraction gets at least one instance when there
    are at least three instances.
    """
    f = np.asarray(fractions, dtype=np.float64) / float(sum(fractions))
    counts = np.floor(f * num_instances).astype(int)
    if num_instances >= 3:
        counts[(f > 0) & (counts == 0)] = 1
    while counts.sum() < num_instances:
        counts[int(np.argmax(f * num_instances - counts))] += 1
    while counts.sum() > num_instances:
        counts[int(np.argmax(counts))] -= 1
    return [name for name, c in zip(SPLITS, counts, strict=True) for _ in range(int(c))]


_SHAPE_CACHE: dict = {}


def _shape(category: str, instance_id: int, seed: int):
    key = (category, instance_id, seed)
    if key not in _SHAPE_CACHE:
        _SHAPE_CACHE.clear()  # consecutive images of an instance share it; keep one
        _SHAPE_CACHE[key] = make_shape(category, instance_id, seed)
    return _SHAPE_CACHE[key]


def render_image(root: str, category: str, index: int, settings: SynthSettings) -> ImageRecord:
    """Render image ``index`` of ``category`` and write all its files under ``root``.

    Writes the JPEG, mask PNG, image JSON, simulated reconstruction and ground truth.

    Returns:
        The :class:`ImageRecord` the pair writer needs.
    """
    from geocorr.data.synth.render import keypoint_visibility, occlude, render_shape

    root_p = Path(root)
    instance_id = index // settings.views_per_instance
    shape = _shape(category, instance_id, settings.seed)
    info = category_info(category)
    stem = f"{category}_{index:04d}"
    rng = image_rng(settings.seed, category, index)
    look_rng = np.random.default_rng([int(settings.seed), zlib.crc32(category.encode()),
                                      int(instance_id), 1])
    looks = instance_looks(category, shape.part_material, look_rng)

    scene = sample_scene(shape.vertices, rng, settings.scene)
    cam = scene.camera
    background = random_background(cam.height, cam.width, rng)
    rendering = render_shape(shape, cam, looks, scene.light_dir, scene.ambient, background, rng)
    full_mask = rendering.mask
    occluded = 0
    occluder = None
    if rng.random() < settings.scene.occluder_prob and full_mask.any():
        occ = sample_occluder(cam.height, cam.width, mask_bndbox(full_mask), rng,
                              settings.scene.occluder_cover)
        texture = random_background(cam.height, cam.width, rng)
        texture = np.clip(np.rint(texture * 255 * rng.uniform(0.5, 1.0)), 0, 255)
        rendering = occlude(rendering, occ, texture.astype(np.uint8))
        occluded = int((occ & full_mask).sum() > 0.02 * full_mask.sum())
        occluder = occ

    diag = float(np.linalg.norm(shape.vertices.max(0) - shape.vertices.min(0)))
    kv = np.asarray(shape.keypoint_vertices, dtype=np.int64)
    valid = kv >= 0
    points = shape.vertices[np.where(valid, kv, 0)]
    uv, _, visible = keypoint_visibility(points, cam, rendering.depth,
                                         settings.visibility_tolerance * diag)
    visible &= valid
    kps = np.zeros((len(kv), 2), dtype=np.int64)
    kps[visible] = np.rint(uv[visible]).astype(np.int64)

    mask = rendering.mask
    truncated = int(full_mask[0].any() or full_mask[-1].any() or full_mask[:, 0].any()
                    or full_mask[:, -1].any())
    erng = error_rng(settings.seed, category, index)
    sim = simulate_reconstruction(shape.vertices, shape.faces, cam, info.elongated, rng,
                                  settings.simulator, category=category,
                                  vertex_part=shape.vertex_part,
                                  part_names=tuple(shape.part_names), error_rng=erng)
    predicted = predict_mask(mask, occluder, erng, settings.masks)
    record = ImageRecord(
        stem=stem, category=category, instance_id=instance_id, width=cam.width,
        height=cam.height, bndbox=mask_bndbox(mask), kps=kps, visible=visible,
        azimuth_deg=scene.azimuth_deg, azimuth_id=scene.azimuth_id,
        pose=pose_name(scene.azimuth_deg), truncated=truncated, occluded=occluded,
        flipped=sim.yaw_error_k != 0,
    )

    write_bytes(root_p / "JPEGImages" / category / f"{stem}.jpg", encode_jpeg(rendering.image))
    write_bytes(root_p / "Segmentation" / category / f"{stem}.png",
                encode_png(mask.astype(np.uint8) * 255))
    write_bytes(root_p / "PredictedMasks" / category / f"{stem}.png",
                encode_png(predicted.mask.astype(np.uint8) * 255))
    write_json(root_p / "ImageAnnotation" / category / f"{stem}.json", image_annotation(record))
    _write_reconstruction(root_p / "Reconstructions" / category, stem, sim)
    gt = GroundTruth(
        category=category, stem=stem, vertices=shape.vertices, faces=shape.faces,
        face_part=shape.face_part, vertex_part=shape.vertex_part,
        vertex_template=shape.vertex_template, part_names=shape.part_names,
        part_material=shape.part_material, keypoint_vertices=shape.keypoint_vertices,
        camera=cam, part_map=rendering.part, template_map=rendering.template,
        azimuth_deg=scene.azimuth_deg, elevation_deg=scene.elevation_deg,
        sim_true_k=sim.true_k, sim_yaw_error_k=sim.yaw_error_k, sim_true_scale=sim.true_scale,
        sim_true_translation=sim.true_translation, sim_gt_scale=sim.gt_scale,
        sim_gt_offset=sim.gt_offset, face_template=shape.face_template,
    )
    save_npz(groundtruth_path(root_p, category, stem), gt.to_arrays())
    errors = {"level": settings.error_level, "scale": settings.error_scale,
              "yaw_error_k": int(sim.yaw_error_k),
              "predicted_rotation_error_deg": rotation_error_deg(cam.R, sim.camera.R),
              "gt_rotation": np.asarray(sim.gt_rotation).tolist()}
    errors.update(sim.errors)
    errors["mask"] = predicted.record()
    write_json(sim_errors_path(root_p, category, stem), errors)
    return record


def _write_reconstruction(folder: Path, stem: str, sim) -> None:
    """``<stem>.ply`` (binary PLY) + ``<stem>.json`` (camera), the file-import format."""
    import trimesh

    mesh = trimesh.Trimesh(sim.vertices, sim.faces, process=False)
    write_bytes(folder / f"{stem}.ply", mesh.export(file_type="ply", encoding="binary"))
    write_json(folder / f"{stem}.json", sim.camera.to_dict())


def _render_job(args: tuple[str, str, int, SynthSettings]) -> ImageRecord:
    return render_image(*args)


def _sample_pairs(records: list[ImageRecord], count: int, min_common: int,
                  rng: np.random.Generator) -> list[tuple[ImageRecord, ImageRecord]]:
    candidates = [(a, b) for a in records for b in records
                  if a.stem != b.stem and int((a.visible & b.visible).sum()) >= max(min_common, 0)]
    order = rng.permutation(len(candidates))[:count]
    return [candidates[i] for i in order]


def _categories_meta(categories: tuple[str, ...]) -> dict:
    meta = {}
    for cat in categories:
        info = category_info(cat)
        meta[cat] = {
            "keypoint_names": list(info.keypoint_names),
            "keypoint_groups": [list(map(int, g)) for g in info.keypoint_groups],
            "part_names": list(info.part_names),
            "part_material": list(info.part_material),
            "elongated": bool(info.elongated),
        }
    return meta


def _settings_dict(settings: SynthSettings, categories: tuple[str, ...]) -> dict:
    d = asdict(settings)
    d["categories"] = list(categories)
    if d["simulator"]["errors"] is None:
        del d["simulator"]["errors"]
    if d["masks"] is None:
        del d["masks"]
    if settings.error_level == "oracle" and settings.error_scale == 1.0:
        del d["error_level"], d["error_scale"]
    return json.loads(json.dumps(d))


def _check_out_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"output directory {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"output directory {out} is not empty; ask to overwrite it "
                         f"(geocorr synth --overwrite) or choose another")


def generate_dataset(out_dir: str | os.PathLike, settings: SynthSettings | None = None,
                     progress: bool = True, workers: int = 1,
                     overwrite: bool = False) -> SynthSummary:
    """Generate the benchmark into ``out_dir`` (see the module docstring for the layout).

    Args:
        out_dir: destination folder; must be absent or empty unless ``overwrite``.
        settings: what to generate; defaults to :class:`SynthSettings`.
        progress: show a rich progress bar.
        workers: processes rendering images in parallel (output bytes do not depend on it).
        overwrite: replace a non-empty ``out_dir``.

    Returns:
        A :class:`SynthSummary`.

    Raises:
        ValueError: bad settings or a non-empty ``out_dir`` without ``overwrite``.
    """
    settings = settings or SynthSettings()
    settings.validate()
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    out = Path(out_dir)
    _check_out_dir(out, overwrite)
    categories = settings.resolved_categories()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        jobs = [(str(tmp), cat, i, settings) for cat in categories
                for i in range(settings.images_per_category)]
        records = _run_jobs(jobs, workers, progress)
        num_pairs = _write_pairs(tmp, categories, records, settings)
        write_json(tmp / "Meta" / "categories.json", _categories_meta(categories))
        write_json(tmp / "Meta" / "settings.json", _settings_dict(settings, categories))
        if settings.preview:
            write_preview(tmp, tmp / "preview.png")
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    flipped = float(np.mean([r.flipped for r in records]))
    vis = float(np.mean([r.visible.mean() if len(r.visible) else 0.0 for r in records]))
    return SynthSummary(out_dir=out, num_images=len(records), num_pairs=num_pairs,
                        flipped_fraction=flipped, visible_keypoints=vis)


def _run_jobs(jobs: list, workers: int, progress: bool) -> list[ImageRecord]:
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("rendering", total=len(jobs))
        if workers == 1:
            records = []
            for job in jobs:
                records.append(_render_job(job))
                bar.advance(task)
            return records
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            records = []
            for rec in pool.map(_render_job, jobs, chunksize=2):
                records.append(rec)
                bar.advance(task)
            return records


def _write_pairs(root: Path, categories: tuple[str, ...], records: list[ImageRecord],
                 settings: SynthSettings) -> dict[str, int]:
    by_cat: dict[str, list[ImageRecord]] = {c: [] for c in categories}
    for r in records:
        by_cat[r.category].append(r)
    layout: dict[str, list[str]] = {s: [] for s in SPLITS}
    pair_id = 0
    for si, split in enumerate(SPLITS):
        for cat in categories:
            recs = by_cat[cat]
            n_inst = (len(recs) + settings.views_per_instance - 1) // settings.views_per_instance
            names = split_instances(n_inst, settings.split_fractions)
            members = [r for r in recs if names[r.instance_id] == split]
            rng = np.random.default_rng([int(settings.seed), zlib.crc32(cat.encode()), si, 7])
            for src, trg in _sample_pairs(members, settings.pairs_per_split[si],
                                          settings.min_common_keypoints, rng):
                pair_id += 1
                stem = pair_stem(pair_id, src.stem, trg.stem, cat)
                write_json(root / "PairAnnotation" / split / f"{stem}.json",
                           pair_annotation(pair_id, src, trg))
                layout[split].append(stem)
    for split, stems in layout.items():
        write_bytes(root / "Layout" / "large" / f"{split}.txt",
                    "".join(f"{s}\n" for s in stems).encode())
    return {s: len(v) for s, v in layout.items()}


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` onto ``out`` (old content moved aside, then deleted)."""
    trash = None
    if out.exists():
        trash = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, trash)
    os.replace(tmp, out)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)

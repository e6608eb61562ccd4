"""How far the simulated SAM 3D / SAM 3 outputs are from the truth, measured from the files.

Run: ``.venv/bin/python benchmarks/sim_errors.py [--images 8] [--seed 0] [--workers 2]
[--levels oracle,realistic] [--figure docs/img/sim_errors.png]``.

Generates the procedural benchmark (every category, ``--images`` per
category, same seed) at each level into a temporary folder and reads back
only what a user would get plus the ground truth:

* **rotation error** of the predicted camera (``Reconstructions/*.json``)
  against the true one (``GroundTruth/*.npz``), modulo the 90 deg k yaw
  flips (a flip is the canonical-frame error that stage 1's yaw vote fixes);
* **mask IoU** of ``PredictedMasks/`` against ``Segmentation/``;
* **hidden-side Chamfer**: the reconstruction mapped into the true canonical
  frame with its true similarity (``GroundTruth``: scale, translation, yaw,
  tilt), surface samples on both meshes, and the symmetric mean
  nearest-neighbour distance between the samples the true camera does not see
  (z-buffer test), as a fraction of the true bbox diagonal; likewise for
  the visible side.

Prints a markdown table (medians, and the 25-75 % range) and the hidden-side
ratio to ``oracle``. ``--figure`` writes the PNG of docs/synth.md: one
image's true mesh beside its reconstruction, seen from the true camera and
from the opposite side, and its predicted mask beside the true one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def _generate(out: Path, level: str, images: int, seed: int, workers: int) -> float:
    from geocorr.data.synth.generate import SynthSettings, generate_dataset, with_error_level

    settings = with_error_level(SynthSettings(seed=seed, images_per_category=images,
                                              pairs_per_split=(1, 1, 1)), level)
    t = time.perf_counter()
    generate_dataset(out, settings, progress=False, workers=workers)
    return time.perf_counter() - t


def reconstruction_in_truth_frame(root: Path, category: str, stem: str):
    """The simulated mesh mapped into the true canonical frame: ``(vertices (V, 3), faces)``.

    Uses only ``GroundTruth/`` (``sim_*`` fields and the error record's
    ``gt_rotation``): ``X = c + n T^T Q^T Y`` with ``n = sim_gt_scale * sim_true_scale``.
    """
    import trimesh

    from geocorr.data.synth.groundtruth import load_sim_errors
    from geocorr.data.synth.simulator import yaw_rotation

    with np.load(root / "GroundTruth" / category / f"{stem}.npz") as gt:
        sigma = 1.0 / float(gt["sim_true_scale"])
        n = float(gt["sim_gt_scale"]) / sigma
        tau = -np.asarray(gt["sim_true_translation"], np.float64) * sigma
        Q = yaw_rotation(int(gt["sim_yaw_error_k"]))
        offset = np.asarray(gt["sim_gt_offset"], np.float64)
    Tt = np.asarray(load_sim_errors(root, category, stem)["gt_rotation"], np.float64)
    c = offset - n * (Tt @ Q.T @ tau)
    mesh = trimesh.load(root / "Reconstructions" / category / f"{stem}.ply", process=False)
    Y = np.asarray(mesh.vertices, np.float64)
    return c + n * (Y @ Q @ Tt.T), np.asarray(mesh.faces, np.int64)


def _visible(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, camera,
             tol: float) -> np.ndarray:
    from geocorr.geometry.raster import rasterize

    depth = rasterize(vertices, faces, camera).depth
    uv, z = camera.project(points)
    H, W = depth.shape
    c = np.rint(uv[:, 0]).astype(np.int64)
    r = np.rint(uv[:, 1]).astype(np.int64)
    inside = (c >= 0) & (c < W) & (r >= 0) & (r < H) & (z > 0)
    out = np.zeros(len(points), bool)
    out[inside] = z[inside] <= depth[r[inside], c[inside]] + tol
    return out


def _chamfer(a: np.ndarray, b: np.ndarray, b_all: np.ndarray, a_all: np.ndarray) -> float:
    """Symmetric: ``a`` to all of ``b_all``'s surface, ``b`` to all of ``a_all``'s."""
    from scipy.spatial import cKDTree

    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return 0.5 * (cKDTree(b_all).query(a)[0].mean() + cKDTree(a_all).query(b)[0].mean())


def measure(root: Path) -> list[dict]:
    """Per-image rotation error, mask IoU, hidden/visible-side Chamfer of one folder."""
    import trimesh
    from PIL import Image

    from geocorr.data.synth.groundtruth import load_groundtruth
    from geocorr.data.synth.mask_errors import mask_iou
    from geocorr.data.synth.simulator import rotation_error_deg
    from geocorr.geometry.camera import load_camera

    rows = []
    for npz in sorted((root / "GroundTruth").glob("*/*.npz")):
        cat, stem = npz.parent.name, npz.stem
        gt = load_groundtruth(root, cat, stem)
        cam = load_camera(root / "Reconstructions" / cat / f"{stem}.json")
        true_mask = np.asarray(Image.open(root / "Segmentation" / cat / f"{stem}.png")) > 0
        pred_mask = np.asarray(Image.open(root / "PredictedMasks" / cat / f"{stem}.png")) > 0
        v, f = reconstruction_in_truth_frame(root, cat, stem)
        diag = float(np.linalg.norm(np.ptp(gt.vertices, axis=0)))
        seed = int(stem.split("_")[-1])
        p_gt = trimesh.sample.sample_surface(trimesh.Trimesh(gt.vertices, gt.faces,
                                                             process=False), 20000, seed=seed)[0]
        p_rec = trimesh.sample.sample_surface(trimesh.Trimesh(v, f, process=False), 20000,
                                              seed=seed)[0]
        tol = 0.01 * diag
        vis_gt = _visible(p_gt, gt.vertices, gt.faces, gt.camera, tol)
        vis_rec = _visible(p_rec, v, f, gt.camera, tol)
        rows.append({
            "category": cat, "stem": stem,
            "rotation_deg": rotation_error_deg(gt.camera.R, cam.R),
            "mask_iou": mask_iou(pred_mask, true_mask),
            "hidden": _chamfer(p_gt[~vis_gt], p_rec[~vis_rec], p_rec, p_gt) / diag,
            "visible": _chamfer(p_gt[vis_gt], p_rec[vis_rec], p_rec, p_gt) / diag,
        })
    return rows


def _summary(rows: list[dict], key: str) -> str:
    x = np.array([r[key] for r in rows], np.float64)
    x = x[np.isfinite(x)]
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    fmt = "{:.1f}" if key == "rotation_deg" else "{:.3f}" if key == "mask_iou" else "{:.4f}"
    return f"{fmt.format(med)} ({fmt.format(q1)}-{fmt.format(q3)})"


def _shade(vertices: np.ndarray, faces: np.ndarray, camera) -> np.ndarray:
    from geocorr.geometry.raster import rasterize

    frag = rasterize(vertices, faces, camera)
    v = camera.to_camera(vertices)
    fn = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    fn /= np.maximum(np.linalg.norm(fn, axis=1, keepdims=True), 1e-12)
    light = np.abs(fn[:, 2])
    img = np.full(frag.face_index.shape, 255.0)
    on = frag.face_index >= 0
    img[on] = 40 + 200 * light[frag.face_index[on]]
    return np.repeat(img[..., None], 3, axis=2).astype(np.uint8)


def _crop(on: np.ndarray, panels: list[np.ndarray]) -> list[np.ndarray]:
    """Crop every panel to the box around ``on`` ``(H, W)`` bool (+15 %), 256 px high."""
    from PIL import Image

    rows, cols = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
    H, W = on.shape
    pad = int(0.15 * max(rows[-1] - rows[0], cols[-1] - cols[0]))
    r0, r1 = max(rows[0] - pad, 0), min(rows[-1] + pad + 1, H)
    c0, c1 = max(cols[0] - pad, 0), min(cols[-1] + pad + 1, W)
    h = 256
    w = int(round((c1 - c0) * h / (r1 - r0)))
    return [np.asarray(Image.fromarray(p[r0:r1, c0:c1]).resize((w, h), Image.LANCZOS))
            for p in panels]


def write_figure(root: Path, category: str, stem: str, out: Path) -> None:
    """Two rows: meshes (true | simulated, from the camera and from behind); masks."""
    from PIL import Image, ImageDraw

    from geocorr.data.synth.groundtruth import load_groundtruth
    from geocorr.data.synth.simulator import yaw_rotation

    gt = load_groundtruth(root, category, stem)
    v, f = reconstruction_in_truth_frame(root, category, stem)
    cam = gt.camera
    centre = (gt.vertices.min(0) + gt.vertices.max(0)) / 2
    R_back = cam.R @ yaw_rotation(2)
    t_back = cam.R @ centre + cam.t - R_back @ centre
    back = cam.with_pose(R_back, t_back)
    panels = [_shade(gt.vertices, gt.faces, cam), _shade(v, f, cam),
              _shade(gt.vertices, gt.faces, back), _shade(v, f, back)]
    image = np.asarray(Image.open(root / "JPEGImages" / category / f"{stem}.jpg").convert("RGB"))
    true_mask = np.asarray(Image.open(root / "Segmentation" / category / f"{stem}.png")) > 0
    pred = np.asarray(Image.open(root / "PredictedMasks" / category / f"{stem}.png")) > 0
    diff = np.full(image.shape, 255, np.uint8)
    diff[true_mask & pred] = (160, 160, 160)
    diff[true_mask & ~pred] = (220, 40, 40)
    diff[~true_mask & pred] = (40, 90, 220)
    masks = [image, np.repeat((true_mask * 255).astype(np.uint8)[..., None], 3, 2),
             np.repeat((pred * 255).astype(np.uint8)[..., None], 3, 2), diff]
    on = true_mask | pred
    for p in panels:
        on |= (p != 255).any(axis=2)
    crops = _crop(on, panels + masks)
    H, W = crops[0].shape[:2]
    sheet = Image.new("RGB", (4 * W, 2 * H + 36), "white")
    draw = ImageDraw.Draw(sheet)
    titles = ["true mesh", "simulated (realistic)", "true, from behind",
              "simulated, from behind", "image", "true mask", "predicted mask",
              "missed red / extra blue"]
    for i, p in enumerate(crops):
        x, y = (i % 4) * W, (i // 4) * (H + 18)
        sheet.paste(Image.fromarray(p), (x, y + 18))
        draw.text((x + 4, y + 3), titles[i], fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=8, help="images per category")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--levels", default="oracle,realistic")
    ap.add_argument("--figure", type=Path, default=None,
                    help="write the docs figure from the last level's folder")
    ap.add_argument("--figure-image", default="car_0003")
    ap.add_argument("--keep", type=Path, default=None, help="keep the folders here")
    args = ap.parse_args()
    levels = [s.strip() for s in args.levels.split(",") if s.strip()]
    tmp = Path(tempfile.mkdtemp(prefix="sim_errors_"))
    base = args.keep or tmp
    try:
        results = {}
        for level in levels:
            root = base / level
            if root.exists():
                shutil.rmtree(root)
            secs = _generate(root, level, args.images, args.seed, args.workers)
            results[level] = measure(root)
            print(f"{level}: generated {len(results[level])} images in {secs:.0f} s", flush=True)
        print("\n| level | rotation error, deg (mod 90°k) | mask IoU | hidden-side Chamfer "
              "| visible-side Chamfer | images |")
        print("|---|---|---|---|---|---|")
        for level, rows in results.items():
            print(f"| {level} | {_summary(rows, 'rotation_deg')} | {_summary(rows, 'mask_iou')} "
                  f"| {_summary(rows, 'hidden')} | {_summary(rows, 'visible')} | {len(rows)} |")
        if "oracle" in results:
            ref = np.nanmedian([r["hidden"] for r in results["oracle"]])
            for level, rows in results.items():
                if level != "oracle":
                    ratio = np.nanmedian([r["hidden"] for r in rows]) / ref
                    print(f"\nhidden-side Chamfer, {level} / oracle (medians): {ratio:.1f}x")
        print("\nper category, realistic medians (rotation, IoU, hidden):")
        for level, rows in results.items():
            for cat in sorted({r["category"] for r in rows}):
                sub = [r for r in rows if r["category"] == cat]
                print(f"  {level} {cat}: {np.median([r['rotation_deg'] for r in sub]):.1f} "
                      f"{np.median([r['mask_iou'] for r in sub]):.3f} "
                      f"{np.nanmedian([r['hidden'] for r in sub]):.4f}")
        if args.figure is not None:
            cat = args.figure_image.rsplit("_", 1)[0]
            write_figure(base / levels[-1], cat, args.figure_image, args.figure)
            print(f"figure: {args.figure}")
        (base / "sim_errors.json").write_text(json.dumps(results, indent=1))
    finally:
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

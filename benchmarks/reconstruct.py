"""Stage-1 benchmark on the procedural dataset: refinement IoU, disjoint starts, yaw accuracy.

Usage::

    .venv/bin/python benchmarks/reconstruct.py --dataset DIR --cache CACHE \
        [--split all] [--disjoint-per-category 3] [--json out.json]
    # refinement sweep: one JSON object of RefineSettings overrides per config
    .venv/bin/python benchmarks/reconstruct.py --dataset DIR --sweep '{}' '{"sigma": 2.0}' \
        [--per-category 8] [--json sweep.jsonl]
    # the same sweep on non-procedural meshes (part assemblies, see assembly_mesh)
    .venv/bin/python benchmarks/reconstruct.py --assemblies 8 --views 3 \
        --sweep '{"engine": "torch"}' '{}'

Stage 1 runs through the library (``run_stage1``: dataset masks, simulated
reconstructions, CPU template estimator); it never reads ``GroundTruth/``.
Only the scoring below reads ``GroundTruth/<cat>/<stem>.npz`` (``sim_true_k``,
``sim_true_scale``, ``sim_true_translation``).

Reported per category:

* median mask IoU of the simulated reconstruction before / after refinement,
  and at the simulator's *ideal* correction (the true scale/translation: an
  upper bound set by how well the re-meshed surface matches the mask);
* disjoint-start recovery: the predicted pose is replaced by one that renders
  entirely off the mask (the mesh shifted by 1.5 object radii in the image
  plane plus its scale halved); recovered = IoU after >= 0.9 * the IoU reached
  from the simulator's own start;
* yaw accuracy of the 8-view vote, absolute and modulo the yaw symmetry the
  reference selection detected (``reference.json`` ``symmetry``: 180 degrees
  for order 2, e.g. the benchmark's tables, whose front and back are the same
  shape by construction), also modulo 180 degrees for every category, and of
  direct alignment to the reference; the reference's plurality counts/margin;
* with ``--true-mesh``: optimizer quality apart from mesh error: the
  *ground-truth* mesh (scoring-side only) put into the simulated
  reconstruction's frame, refined from the simulator's own pose error with
  the library's ``refine_pose``; its IoU at the ideal pose (sanity: ~1) and
  after refinement;
* seconds per image for refinement and for the yaw step (with the load average,
  since the machine is shared);
* **canonical-frame error** (per-instance canonicalisation): the rotation
  between the final mesh's axes and the ground truth's, ``E = G R_n Q T`` (``G``
  = the record's ``rotation``, ``R_n`` = injected noise below, ``Q`` = the
  simulator's quarter-turn error, ``T`` its mesh-frame tilt above the oracle
  level, from ``errors.json`` ``gt_rotation = T^T``), as a geodesic angle and as a yaw angle,
  both modulo the instance's *true* yaw symmetry: tables 2-fold, or 4-fold
  when the ground-truth top's sides differ by less than one voxel of the
  coarsest simulated re-meshing (aspect < 1.028; the generator makes side
  tables with aspect 1.0-1.15), every other category 1-fold (their
  generators give them a distinct front). "Yaw correct" = yaw error below
  45 degrees modulo that symmetry. The same error with ``G = Rz(90 k)``
  alone (the quarter-turn vote without the continuous alignment) is reported
  next to it.
* ``--yaw-noise D --tilt-noise T``: continuous canonical-frame noise injected
  into every simulated reconstruction (the simulator only makes quarter-turn
  errors): the mesh is rotated about its centre by ``R_n = Rz(N(0, D)) .
  R_axis(N(0, T))`` (tilt about a random horizontal axis) and its camera by
  ``R R_n^T``, so the image is unchanged and only the mesh's own frame is off,
  seeded per image (CRC32 of category/stem).

``--assemblies N`` runs the sweep on meshes the generator did not make
(:func:`assembly_mesh`: robot-arm-like assemblies of trimesh primitives, 5k-20k
faces in 9-17 unmerged, overlapping components with mixed tessellations,
long cylinder slivers and fan caps), each seen from ``--views`` cameras drawn
like the procedural benchmark's (``sample_scene``); the mask is the mesh's own
render, and the start pose is perturbed like the simulator perturbs its
reconstructions (``SimulatorSettings`` scale and translation errors). Reported:
final IoU (the ceiling is 1: the mesh is exact) and wall and CPU seconds per
image (CPU time is the steadier figure on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", type=Path, default=None)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--split", default="all")
    ap.add_argument("--disjoint-per-category", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--sweep", nargs="+", default=None,
                    help="refinement sweep: JSON RefineSettings overrides, one per config")
    ap.add_argument("--per-category", type=int, default=8, help="sweep: images per category")
    ap.add_argument("--true-mesh", action="store_true",
                    help="also refine the ground-truth mesh from the simulator's pose error")
    ap.add_argument("--yaw-noise", type=float, default=0.0,
                    help="std (degrees) of injected continuous yaw error of the mesh frame")
    ap.add_argument("--tilt-noise", type=float, default=0.0,
                    help="std (degrees) of injected tilt error of the mesh frame")
    ap.add_argument("--assemblies", type=int, default=0,
                    help="sweep on this many non-procedural part assemblies instead of --dataset")
    ap.add_argument("--views", type=int, default=3, help="assemblies: cameras per mesh")
    ap.add_argument("--rotation-sigma", type=float, default=0.0,
                    help="sweep: inject a camera-relative rotation error about the mesh centre, "
                         "isotropic axis-angle with this per-axis std (degrees), and report the "
                         "rotation error before/after refinement")
    ap.add_argument("--predicted-masks", action="store_true",
                    help="sweep: refine against PredictedMasks/ (the simulated SAM3 masks of "
                         "geocorr synth --sim-errors) instead of Segmentation/")
    ap.add_argument("--cold", type=int, default=0,
                    help="assemblies: also time import + first refine_pose in N fresh processes "
                         "(one-image use, as `geocorr refine`: one-time imports and loading)")
    args = ap.parse_args()
    if args.sweep:
        if args.dataset is None and not args.assemblies:
            ap.error("--sweep needs --dataset or --assemblies")
        sweep(args)
        return
    if args.dataset is None:
        ap.error("--dataset is required")
    if args.cache is None:
        ap.error("--cache is required unless --sweep is given")

    from geocorr.data.images import read_mask
    from geocorr.geometry.camera import load_camera
    from geocorr.reconstruct.losses import mask_iou
    from geocorr.reconstruct.pipeline import Stage1Settings, dataset_images, run_stage1
    from geocorr.reconstruct.reconstructor import simulated_reconstructor
    from geocorr.reconstruct.refine import refine_pose, render_mask
    from geocorr.reconstruct.segmenter import DatasetMasks

    images = dataset_images(args.dataset, args.split)
    settings = Stage1Settings()
    seg, rec = DatasetMasks(args.dataset), simulated_reconstructor(args.dataset)
    noisy = NoisyFrame(rec, args.yaw_noise, args.tilt_noise)
    t0 = time.perf_counter()
    records = run_stage1(args.dataset, images, seg, noisy, args.cache, settings, progress=True)
    wall = time.perf_counter() - t0
    load = os.getloadavg()

    rows: dict[str, dict[str, list]] = {}
    refs: dict[str, dict] = {}
    for (cat, stem), r in zip(images, records, strict=True):
        gt = np.load(args.dataset / "GroundTruth" / cat / f"{stem}.npz")
        # above the oracle level the simulator also tilts the mesh frame: Y = Q T (X - c) / n
        errp = args.dataset / "GroundTruth" / cat / f"{stem}.errors.json"
        gt_rot = (np.asarray(json.loads(errp.read_text())["gt_rotation"], np.float64)
                  if errp.is_file() else np.eye(3))  # T^T
        row = rows.setdefault(cat, {k: [] for k in (
            "before", "after", "ideal", "vote_ok", "direct_ok", "vote_ok_mod2", "t_refine",
            "t_yaw", "failed", "flipped", "disjoint", "vote_ok_sym", "true_ideal",
            "true_after", "t_true", "t_align", "canon_err", "canon_yaw", "vote_err",
            "vote_yaw", "tilt_err", "tilt_before", "true_order", "order", "confidence",
            "wrong_turn", "mirrored", "rule", "vote_only_ok", "ref_ok")})
        ref = refs.setdefault(cat, json.loads((args.cache / cat / "reference.json").read_text()))
        sim = rec.load(cat, stem)
        mask = read_mask(args.cache / cat / stem / "mask.png")
        ideal_v = float(gt["sim_true_scale"]) * sim.vertices + gt["sim_true_translation"]
        row["ideal"].append(mask_iou(render_mask(ideal_v, sim.faces, sim.camera), mask))
        row["before"].append(r["refine"]["iou_before"])
        row["after"].append(r["refine"]["iou_after"])
        true_k = int(gt["sim_true_k"])
        row["flipped"].append(true_k != 0)
        row["vote_ok"].append(r["k"] == true_k)
        row["direct_ok"].append(r["direct_k"] == true_k)
        row["vote_ok_mod2"].append((r["k"] - true_k) % 2 == 0)
        row["vote_ok_sym"].append((r["k"] - true_k) % (4 // ref["symmetry"]) == 0)
        if args.true_mesh:
            tv, tf = true_mesh_in_reconstruction_frame(gt, gt_rot)
            s_true, t_true = float(gt["sim_true_scale"]), gt["sim_true_translation"]
            row["true_ideal"].append(mask_iou(render_mask(s_true * tv + t_true, tf, sim.camera),
                                              mask))
            res_t = refine_pose(tv, tf, sim.camera, mask, settings.refine)
            row["true_after"].append(res_t.iou_after)
            row["t_true"].append(res_t.seconds)
        row["t_refine"].append(r["timings"]["refine"])
        row["t_yaw"].append(r["timings"]["yaw"])
        row["t_align"].append(r["timings"].get("align", 0.0))
        order = true_order(cat, gt)
        Rn = noisy.rotation(cat, stem)
        Q = yaw_rotation(int(gt["sim_yaw_error_k"])) @ gt_rot.T
        G = np.asarray(r.get("rotation") or np.round(rotation_z(90.0 * r["k"])), np.float64)
        Gk = np.round(rotation_z(90.0 * r["k"]))
        for key_a, key_y, g in (("canon_err", "canon_yaw", G), ("vote_err", "vote_yaw", Gk)):
            ang, yaw = frame_error(g @ Rn @ Q, order)
            row[key_a].append(ang)
            row[key_y].append(yaw)
        row["tilt_err"].append(float(np.degrees(np.arccos(np.clip((G @ Rn @ Q)[2, 2], -1, 1)))))
        row["tilt_before"].append(float(np.degrees(np.arccos(np.clip((Rn @ Q)[2, 2], -1, 1)))))
        row["true_order"].append(order)
        row["order"].append(r["yaw_symmetry"])
        row["confidence"].append((r.get("canonical") or {}).get("confidence", float("nan")))
        # diagnosis: which quarter turn is left, on which meshes, decided by which rule
        mod = 4 // order
        row["wrong_turn"].append(0 if (r["k"] - true_k) % mod == 0 else (r["k"] - true_k) % 4)
        shape = (json.loads(errp.read_text()).get("shape") or {}) if errp.is_file() else {}
        row["mirrored"].append(bool(shape.get("hidden_mirror", False)))
        yaw = r.get("yaw") or {}
        row["rule"].append(yaw.get("rule", "vote"))
        kv = yaw.get("vote_correction", r["k"])
        row["vote_only_ok"].append((kv - true_k) % mod == 0)
        ref_stem = ref.get("reference")
        if ref_stem and (args.dataset / "GroundTruth" / cat / f"{ref_stem}.npz").is_file():
            rk = int(np.load(args.dataset / "GroundTruth" / cat / f"{ref_stem}.npz")["sim_true_k"])
            row["ref_ok"].append((int(ref.get("reference_correction", 0)) - rk)
                                 % (4 // max(int(ref.get("symmetry", 1)), 1)) == 0)
        row["failed"].append(r["refine"]["iou_after"] < settings.refine.fail_iou)
        if len(row["disjoint"]) < args.disjoint_per_category:
            cam = load_camera(args.dataset / "Reconstructions" / cat / f"{stem}.json")
            lo, hi = sim.vertices.min(0), sim.vertices.max(0)
            radius = 0.5 * float(np.linalg.norm(hi - lo))
            centre = 0.5 * (lo + hi)
            # move the mesh off the mask: image-plane shift by 1.5 radii + 3 mask radii
            ys, xs = np.nonzero(mask)
            mask_r = 0.5 * max(np.ptp(xs), np.ptp(ys)) + 1
            depth = float((cam.R @ centre + cam.t)[2])
            shift_px = 3.0 * mask_r + 1.5 * radius * cam.fx / depth
            shift = cam.R.T @ np.array([shift_px * depth / cam.fx, 0.0, 0.0])
            start = 0.5 * (sim.vertices - centre) + centre + shift
            iou0 = mask_iou(render_mask(start, sim.faces, cam), mask)
            res = refine_pose(start, sim.faces, cam, mask, settings.refine)
            row["disjoint"].append((iou0, res.iou_after, r["refine"]["iou_after"]))

    table = {}
    for cat, row in sorted(rows.items()):
        dis = row["disjoint"]
        table[cat] = {
            "n": len(row["after"]),
            "median_iou_before": float(np.median(row["before"])),
            "median_iou_after": float(np.median(row["after"])),
            "median_iou_ideal": float(np.median(row["ideal"])),
            "frac_after_ge_ideal_minus_0.02": float(np.mean(
                np.array(row["after"]) >= np.array(row["ideal"]) - 0.02)),
            "failed": int(np.sum(row["failed"])),
            "flipped": int(np.sum(row["flipped"])),
            "yaw_acc_vote": float(np.mean(row["vote_ok"])),
            "yaw_acc_direct": float(np.mean(row["direct_ok"])),
            "yaw_acc_vote_mod_180": float(np.mean(row["vote_ok_mod2"])),
            "yaw_acc_vote_mod_symmetry": float(np.mean(row["vote_ok_sym"])),
            "reference": {k: refs[cat].get(k) for k in ("reference", "counts", "margin",
                                                         "tie_broken", "symmetry",
                                                         "orders", "frame_rotvec_deg")},
            "median_iou_true_mesh_ideal": float(np.median(row["true_ideal"]))
            if row["true_ideal"] else None,
            "median_iou_true_mesh_after": float(np.median(row["true_after"]))
            if row["true_after"] else None,
            "s_refine_true_mesh": float(np.mean(row["t_true"])) if row["t_true"] else None,
            "disjoint_n": len(dis),
            "disjoint_start_iou_max": float(max(d[0] for d in dis)) if dis else None,
            "disjoint_recovered": float(np.mean([d[1] >= 0.9 * d[2] for d in dis]))
            if dis else None,
            "s_refine": float(np.mean(row["t_refine"])),
            "s_yaw": float(np.mean(row["t_yaw"])),
            "s_align": float(np.mean(row["t_align"])),
            "s_reference": float(refs[cat].get("seconds", float("nan"))),
            **canon_summary(row),
            "diagnosis": {**diagnosis(row), "reference_right": bool(row["ref_ok"][0])
                          if row["ref_ok"] else None},
        }
    allv = {k: sum((rows[c][k] for c in rows), []) for k in (
        "before", "after", "ideal", "vote_ok", "direct_ok", "t_refine", "t_yaw", "vote_ok_sym",
        "vote_ok_mod2", "true_ideal", "true_after", "t_align", "canon_err", "canon_yaw",
        "vote_err", "vote_yaw", "tilt_err", "tilt_before", "true_order", "order",
        "confidence", "wrong_turn", "mirrored", "rule", "vote_only_ok")}
    dis_all = sum((rows[c]["disjoint"] for c in rows), [])
    summary = {
        "images": len(records), "wall_s": wall, "loadavg_after": load,
        "median_iou_before": float(np.median(allv["before"])),
        "median_iou_after": float(np.median(allv["after"])),
        "median_iou_ideal": float(np.median(allv["ideal"])),
        "yaw_acc_vote": float(np.mean(allv["vote_ok"])),
        "yaw_acc_direct": float(np.mean(allv["direct_ok"])),
        "yaw_acc_vote_mod_symmetry": float(np.mean(allv["vote_ok_sym"])),
        "yaw_acc_vote_mod_180": float(np.mean(allv["vote_ok_mod2"])),
        "median_iou_true_mesh_ideal": float(np.median(allv["true_ideal"]))
        if allv["true_ideal"] else None,
        "median_iou_true_mesh_after": float(np.median(allv["true_after"]))
        if allv["true_after"] else None,
        "disjoint_recovered": float(np.mean([d[1] >= 0.9 * d[2] for d in dis_all]))
        if dis_all else None,
        "s_refine": float(np.mean(allv["t_refine"])), "s_yaw": float(np.mean(allv["t_yaw"])),
        "s_align": float(np.mean(allv["t_align"])),
        "s_reference_per_image": float(sum(refs[c].get("seconds", 0.0) for c in refs)
                                       / len(records)),
        "yaw_noise_deg": args.yaw_noise, "tilt_noise_deg": args.tilt_noise,
        **canon_summary(allv),
        "diagnosis": diagnosis(allv, [rows[c]["flipped"] for c in rows]),
    }
    hdr = ("category", "n", "IoU before", "IoU after", "IoU ideal", "true mesh: ideal / after",
           "failed", "flipped", "ref. counts (margin)", "sym.", "yaw vote", "vote mod sym.",
           "vote mod 180", "yaw direct", "disjoint rec.", "s refine", "s yaw")
    print("| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for cat, t in table.items():
        rec_d = t["disjoint_recovered"]
        rec_s = "-" if rec_d is None else f"{rec_d:.2f}"
        tm = ("-" if t["median_iou_true_mesh_after"] is None else
              f"{t['median_iou_true_mesh_ideal']:.3f} / {t['median_iou_true_mesh_after']:.3f}")
        rf = t["reference"]
        print(f"| {cat} | {t['n']} | {t['median_iou_before']:.3f} | {t['median_iou_after']:.3f} | "
              f"{t['median_iou_ideal']:.3f} | {tm} | {t['failed']} | {t['flipped']} | "
              f"{rf['counts']} ({rf['margin']}) | {rf['symmetry']} | "
              f"{t['yaw_acc_vote']:.2f} | {t['yaw_acc_vote_mod_symmetry']:.2f} | "
              f"{t['yaw_acc_vote_mod_180']:.2f} | "
              f"{t['yaw_acc_direct']:.2f} | "
              f"{rec_s} ({t['disjoint_n']}) | {t['s_refine']:.2f} | {t['s_yaw']:.2f} |")
    hdr = ("category", "n", "true orders", "detected (vote) orders", "frame err. median",
           "p90", "vote-only median", "yaw err. median", "yaw correct", "vote-only yaw correct",
           "tilt median (injected)", "s sym.+vote", "s align", "s reference")
    print("\n| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for cat, t in list(table.items()) + [("**all**", summary)]:
        n = t.get("n", t.get("images"))
        print(f"| {cat} | {n} | {t['true_orders']} | {t['orders']} | "
              f"{t['canon_err_median']:.2f} | {t['canon_err_p90']:.2f} | "
              f"{t['vote_err_median']:.2f} | {t['canon_yaw_median']:.2f} | "
              f"{t['yaw_correct']:.3f} | {t['vote_yaw_correct']:.3f} | "
              f"{t['tilt_err_median']:.2f} ({t['tilt_before_median']:.2f}) | "
              f"{t['s_yaw']:.2f} | {t['s_align']:.3f} | "
              f"{t.get('s_reference', t.get('s_reference_per_image', float('nan'))):.2f} |")
    hdr = ("category", "n", "mirrored hidden side", "wrong: 90 / 180 / 270", "wrong & mirrored",
           "wrong & reconstructor flipped", "8-view vote alone correct", "reference right",
           "rules")
    print("\n| " + " | ".join(hdr) + " |")
    print("|" + "---|" * len(hdr))
    for cat, t in list(table.items()) + [("**all**", summary)]:
        d = t["diagnosis"]
        print(f"| {cat} | {t.get('n', t.get('images'))} | {d['mirrored']} | "
              f"{d['wrong_90']} / {d['wrong_180']} / {d['wrong_270']} | "
              f"{d['wrong_mirrored']} | {d['wrong_flipped']} | {d['vote_only_correct']:.3f} | "
              f"{d.get('reference_right', '-')} | {d['rules']} |")
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(".tmp")
        tmp.write_text(json.dumps({"summary": summary, "per_category": table,
                                   "settings": {"refine": vars(settings.refine)}}, indent=1,
                                  default=str))
        os.replace(tmp, args.json)


class NoisyFrame:
    """A reconstructor whose meshes' own frames are off by a small random rotation.

    ``R_n = Rz(N(0, yaw)) . R_axis(N(0, tilt))`` about the mesh origin (the
    simulated mesh's bbox centre), camera ``R R_n^T``: same image, frame off.
    """

    def __init__(self, inner, yaw_deg: float, tilt_deg: float) -> None:
        self.inner, self.yaw, self.tilt = inner, float(yaw_deg), float(tilt_deg)
        self.name = getattr(inner, "name", "simulated")

    def rotation(self, category: str, stem: str) -> np.ndarray:
        import zlib

        from scipy.spatial.transform import Rotation

        def rotation_from_rotvec(w):
            return Rotation.from_rotvec(np.radians(w)).as_matrix()

        if self.yaw == 0 and self.tilt == 0:
            return np.eye(3)
        rng = np.random.default_rng(zlib.crc32(f"{category}/{stem}".encode()))
        yaw, tilt, axis = rng.normal(0, self.yaw), rng.normal(0, self.tilt), rng.uniform(0, 360)
        a = np.radians(axis)
        return (rotation_from_rotvec([0.0, 0.0, yaw])
                @ rotation_from_rotvec(tilt * np.array([np.cos(a), np.sin(a), 0.0])))

    def reconstruct(self, image, mask, category, stem):
        from dataclasses import replace

        r = self.inner.reconstruct(image, mask, category, stem)
        Rn = self.rotation(category, stem)
        return replace(r, vertices=np.asarray(r.vertices, np.float64) @ Rn.T,
                       camera=r.camera.with_pose(r.camera.R @ Rn.T, r.camera.t))


def true_order(category: str, gt) -> int:
    """Ground-truth yaw symmetry order used for scoring (see the module docstring)."""
    if category != "table":
        return 1
    ext = np.ptp(np.asarray(gt["vertices"], np.float64)[:, :2], axis=0)
    return 4 if ext.max() / ext.min() < 1.028 else 2


def frame_error(E: np.ndarray, order: int) -> tuple[float, float]:
    """(geodesic angle, |yaw|) of ``E`` in degrees, modulo ``360 / order`` about Z."""
    def rotation_angle_deg(R: np.ndarray) -> float:
        return float(np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1))))

    angle = min(rotation_angle_deg(np.round(rotation_z(360.0 * j / order)) @ E)
                for j in range(order))
    period = 360.0 / order
    yaw = float(np.degrees(np.arctan2(E[1, 0], E[0, 0])))
    yaw = abs((yaw + period / 2) % period - period / 2)
    return angle, yaw


def diagnosis(row: dict, flipped: list | None = None) -> dict:
    """Wrong quarter turns left (modulo the true symmetry) by kind, and the rules used."""
    from collections import Counter

    wrong = np.array(row["wrong_turn"])
    mir = np.array(row["mirrored"], bool)
    flip = np.array(sum(flipped, []) if flipped is not None else row["flipped"], bool)
    return {"mirrored": int(mir.sum()),
            "wrong_90": int((wrong == 1).sum()), "wrong_180": int((wrong == 2).sum()),
            "wrong_270": int((wrong == 3).sum()),
            "wrong_mirrored": int(((wrong != 0) & mir).sum()),
            "wrong_flipped": int(((wrong != 0) & flip).sum()),
            "vote_only_correct": float(np.mean(row["vote_only_ok"])),
            "rules": dict(sorted(Counter(row["rule"]).items()))}


def canon_summary(row: dict) -> dict:
    from collections import Counter

    err, yaw = np.array(row["canon_err"]), np.array(row["canon_yaw"])
    verr, vyaw = np.array(row["vote_err"]), np.array(row["vote_yaw"])
    return {"canon_err_median": float(np.median(err)),
            "canon_err_p90": float(np.quantile(err, 0.9)),
            "canon_yaw_median": float(np.median(yaw)),
            "yaw_correct": float(np.mean(yaw < 45.0)),
            "yaw_within_10": float(np.mean(yaw < 10.0)),
            "vote_err_median": float(np.median(verr)),
            "vote_yaw_correct": float(np.mean(vyaw < 45.0)),
            "tilt_err_median": float(np.median(row["tilt_err"])),
            "tilt_before_median": float(np.median(row["tilt_before"])),
            "true_orders": dict(sorted(Counter(int(o) for o in row["true_order"]).items())),
            "orders": dict(sorted(Counter(int(o) for o in row["order"]).items())),
            "confidence_median": float(np.nanmedian(row["confidence"]))
            if np.isfinite(row["confidence"]).any() else None}


def rotation_z(deg: float) -> np.ndarray:
    from geocorr.reconstruct.views import rotation_z as rz

    return rz(deg)


def yaw_rotation(k: int) -> np.ndarray:
    from geocorr.data.synth.simulator import yaw_rotation as yr

    return yr(k)


def true_mesh_in_reconstruction_frame(gt, gt_rotation=None) -> tuple[np.ndarray, np.ndarray]:
    """The ground-truth mesh in the simulated reconstruction's own frame (scoring only).

    The simulator made ``Y = Q (X_r - c) / n`` from the re-meshed ``X_r``; with
    ``a = n sigma`` (``sim_gt_scale``), ``b = n Q^T tau + c`` (``sim_gt_offset``),
    ``1 / sigma`` (``sim_true_scale``) and ``-tau / sigma``
    (``sim_true_translation``) stored, ``n = a / sigma``, ``tau = -T sigma``,
    ``c = b - n Q^T tau``; the true mesh goes through the same map. Above the
    ``oracle`` error level the mesh frame is also tilted: pass ``gt_rotation``
    (``T^T``, from ``GroundTruth/<cat>/<stem>.errors.json``); then
    ``Y = Q T (X_r - c) / n`` and ``c = b - n T^T Q^T tau``.

    Returns:
        ``(vertices (V, 3), faces (F, 3))``.
    """
    from geocorr.data.synth.simulator import yaw_rotation

    sigma = 1.0 / float(gt["sim_true_scale"])
    n = float(gt["sim_gt_scale"]) / sigma
    tau = -np.asarray(gt["sim_true_translation"], np.float64) * sigma
    Q = yaw_rotation(int(gt["sim_yaw_error_k"]))
    Tt = np.eye(3) if gt_rotation is None else np.asarray(gt_rotation, np.float64)
    c = np.asarray(gt["sim_gt_offset"], np.float64) - n * (Tt @ Q.T @ tau)
    v = (np.asarray(gt["vertices"], np.float64) - c) @ (Q @ Tt.T).T / n
    return v, np.asarray(gt["faces"], np.int64)


def assembly_mesh(seed: int, faces_range: tuple[int, int] = (5000, 20000)
                  ) -> tuple[np.ndarray, np.ndarray]:
    """A robot-arm-like assembly of trimesh primitives, concatenated without merging.

    A base disc, 2-5 links (capsules, cylinders or boxes of random tessellation)
    along a bending chain with icosphere joints that overlap them, a hub and
    2-3 box fingers. Components overlap (interior faces), cylinders bring long
    side slivers and fan caps, tessellation density differs per part, as in
    meshes exported from CAD or robot descriptions. Draws are repeated until
    the face count lies in ``faces_range``.

    Returns:
        ``(vertices (V, 3), faces (F, 3))``, deterministic in ``seed``.
    """
    import math

    import trimesh
    from trimesh.transformations import rotation_matrix

    rng = np.random.default_rng(seed)
    c = trimesh.creation

    def along(m, direction, at):
        m.apply_transform(trimesh.geometry.align_vectors([0.0, 0.0, 1.0], direction))
        m.apply_translation(at)
        return m

    for _ in range(200):
        parts = [c.cylinder(rng.uniform(0.25, 0.45), 0.15,
                            sections=int(rng.choice([32, 96, 256, 720])))]
        joint, direction = np.array([0.0, 0.0, 0.075]), np.array([0.0, 0.0, 1.0])
        for i in range(int(rng.integers(2, 6))):
            radius = rng.uniform(0.05, 0.14) * 0.85 ** i
            length = rng.uniform(0.4, 0.9)
            phi = rng.uniform(0.0, 2.0 * math.pi)
            bend = rng.uniform(0.3, 1.4) * (1.0 if i else 0.4)
            turn = rotation_matrix(bend, [math.cos(phi), math.sin(phi), 0.0])[:3, :3]
            direction = turn @ direction
            end = joint + length * direction
            kind = rng.choice(["capsule", "cylinder", "box"])
            if kind == "capsule":
                k = int(rng.choice([16, 32, 64]))
                link = c.capsule(length, radius, count=[k, k])
            elif kind == "cylinder":
                link = c.cylinder(radius, length, sections=int(rng.choice([16, 64, 256, 512])))
            else:
                link = c.box((2.0 * radius, 1.4 * radius, length))
            parts.append(along(link, direction, 0.5 * (joint + end)))
            ball = c.icosphere(int(rng.integers(1, 5)), radius=radius * rng.uniform(1.1, 1.6))
            parts.append(ball.apply_translation(end if i else joint))
            joint = end
        parts.append(along(c.cylinder(0.08, 0.06, sections=int(rng.choice([24, 128]))),
                           direction, joint))
        side = np.cross(direction, [0.0, 0.0, 1.0] if abs(direction[2]) < 0.9 else [1.0, 0, 0])
        side /= np.linalg.norm(side)
        for k in range(int(rng.integers(2, 4))):
            parts.append(along(c.box((0.03, 0.05, 0.16)), direction,
                               joint + 0.1 * direction + (k - 0.5) * 0.08 * side))
        if faces_range[0] <= sum(len(p.faces) for p in parts) <= faces_range[1]:
            break
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts])
    return (np.concatenate([np.asarray(p.vertices) for p in parts]),
            np.concatenate([np.asarray(p.faces) + o for p, o in zip(parts, offsets, strict=False)]))


def assembly_cases(n_meshes: int, views: int) -> list[tuple]:
    """``(name, start vertices, faces, camera, mask)`` per view of each assembly.

    The mesh is normalised like the simulator's output (bounding-box centre at
    the origin, unit diagonal), the camera drawn by ``sample_scene``, the mask
    rendered at that (true) pose, and the start is ``sigma Y + tau`` with the
    simulator's scale and translation error model, redrawn until in front of
    the camera.
    """
    import math

    from geocorr.data.synth.scene import sample_scene
    from geocorr.data.synth.simulator import SimulatorSettings
    from geocorr.reconstruct.refine import render_mask

    sim = SimulatorSettings()
    cases = []
    for seed in range(n_meshes):
        v, f = assembly_mesh(seed)
        lo, hi = v.min(0), v.max(0)
        y = (v - 0.5 * (lo + hi)) / float(np.linalg.norm(hi - lo))
        rng = np.random.default_rng(1000 + seed)
        for k in range(views):
            cam = sample_scene(y, rng).camera
            mask = render_mask(y, f, cam)
            depth0 = float(cam.to_camera(np.zeros((1, 3)))[0, 2])
            for _ in range(10):
                s = float(np.clip(math.exp(rng.normal(0.0, sim.scale_sigma)), *sim.scale_clip))
                t = rng.normal(0.0, sim.translation / math.sqrt(3.0), 3)
                if cam.to_camera(s * y + t)[:, 2].min() > 0.05 * depth0:
                    break
            cases.append((f"assembly{seed}/{k}", s * y + t, f, cam, mask))
    return cases


_COLD_CHILD = """
import json, time
import numpy as np
d = np.load({path!r})
c0, w0 = time.process_time(), time.perf_counter()
from geocorr.geometry.camera import Camera
from geocorr.reconstruct.refine import refine_pose
cam = Camera(d["K"], d["R"], d["t"], int(d["W"]), int(d["H"]))
r = refine_pose(d["v"], d["f"], cam, d["mask"])
c1, w1 = time.process_time(), time.perf_counter()
refine_pose(d["v"], d["f"], cam, d["mask"])
print(json.dumps(dict(first_cpu=c1 - c0, first_wall=w1 - w0, again_cpu=time.process_time() - c1,
                      iou=r.iou_after)))
"""


def cold_start(cases: list[tuple]) -> None:
    """First ``refine_pose`` call in a fresh process per case, timed from before
    ``import geocorr`` (what a one-image run such as ``geocorr refine`` pays: imports,
    one-time loading), against a second call on the same image."""
    import subprocess
    import sys
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (v, f, cam, m) in enumerate(cases):
            path = f"{tmp}/case{i}.npz"
            np.savez(path, v=v, f=f, mask=m, K=cam.K, R=cam.R, t=cam.t, W=cam.width,
                     H=cam.height)
            out = subprocess.run([sys.executable, "-c", _COLD_CHILD.format(path=path)],
                                 check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    first = np.array([r["first_cpu"] for r in rows])
    again = np.array([r["again_cpu"] for r in rows])
    wall = np.array([r["first_wall"] for r in rows])
    print(f"cold start, {len(rows)} fresh processes: import + first refine_pose CPU "
          f"{first.mean():.2f} s (max {first.max():.2f}), wall {wall.mean():.2f} s "
          f"(max {wall.max():.2f}); the same image again {again.mean():.2f} s CPU; "
          f"load {os.getloadavg()[0]:.1f}", flush=True)


def angle_deg(R: np.ndarray) -> float:
    """Angle of a rotation matrix, degrees."""
    import math

    return math.degrees(math.acos(float(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0))))


def true_rotation(root: Path, category: str, stem: str, R_pred: np.ndarray) -> np.ndarray:
    """The rotation that renders the simulated mesh at its true pose (scoring only).

    ``geocorr synth --sim-errors`` predicts ``E R_gt A^T`` and records the
    camera-relative error ``E`` (``camera_rotation_error_rotvec_deg`` in
    ``GroundTruth/<cat>/<stem>.errors.json``); the truth is ``E^T R_pred``.
    Without that record (oracle data) the predicted rotation is exact.
    """
    from geocorr.geometry.rotation import rotvec_matrix

    path = root / "GroundTruth" / category / f"{stem}.errors.json"
    rec = json.loads(path.read_text()) if path.is_file() else {}
    if "camera_rotation_error_rotvec_deg" not in rec:
        return R_pred
    return rotvec_matrix(np.radians(rec["camera_rotation_error_rotvec_deg"])).T @ R_pred


def inject_rotation(v, f, cam, mask, sigma_deg: float, seed: int) -> tuple:
    """The case with its camera turned by ``E`` about the mesh's bounding-box centre
    (camera frame), ``E`` an isotropic axis-angle of per-axis std ``sigma_deg``
    (the realistic preset's model of SAM 3D's rotation error, without outliers)."""
    from geocorr.geometry.camera import Camera
    from geocorr.geometry.rotation import rotvec_matrix

    rng = np.random.default_rng(7000 + seed)
    E = rotvec_matrix(np.radians(rng.normal(0.0, sigma_deg, 3)))
    c = 0.5 * (v.min(0) + v.max(0))
    # camera-frame points: E R (X - c) + R c + t
    return v, f, Camera(cam.K, E @ cam.R, cam.R @ c + cam.t - E @ cam.R @ c, cam.width,
                        cam.height), mask


def print_rotation(cfg: dict, names: list[str], rot: np.ndarray, res: np.ndarray) -> None:
    """Rotation error before/after per group (category) and overall."""
    print(f"rotation error, {json.dumps(cfg)}:")
    print("| group | n | median before (deg) | median after | mean after | p90 after "
          "| rotation kept | median IoU | CPU s/image (max) |")
    print("|---|---|---|---|---|---|---|---|---|")
    groups = sorted(set(names))
    for g in groups + (["overall"] if len(groups) > 1 else []):
        sel = np.array([n == g or g == "overall" for n in names])
        r, q = rot[sel], res[sel]
        print(f"| {g} | {sel.sum()} | {np.median(r[:, 0]):.2f} | {np.median(r[:, 1]):.2f} | "
              f"{r[:, 1].mean():.2f} | {np.percentile(r[:, 1], 90):.2f} | "
              f"{100 * r[:, 2].mean():.0f} % | {np.median(q[:, 0]):.3f} | "
              f"{q[:, 2].mean():.2f} ({q[:, 2].max():.2f}) |", flush=True)


def sweep(args) -> None:
    """Refinement only: IoU and time per config, on a dataset (dataset masks + simulated
    reconstructions) or on ``--assemblies`` (non-procedural meshes)."""
    from dataclasses import asdict

    from geocorr.reconstruct.refine import RefineSettings, refine_pose

    data = []
    if args.assemblies:
        data = [(v, f, cam, m) for _, v, f, cam, m in assembly_cases(args.assemblies, args.views)]
        names = ["assemblies"] * len(data)
        truth = [d[2].R for d in data]
        faces = sorted({len(d[1]) for d in data})
        print(f"{len(data)} images of {args.assemblies} assemblies, {faces[0]}-{faces[-1]} faces")
        if args.cold:
            cold_start(data[::args.views][:args.cold])
    else:
        from geocorr.reconstruct.pipeline import dataset_images
        from geocorr.reconstruct.reconstructor import simulated_reconstructor
        from geocorr.reconstruct.segmenter import DatasetMasks

        by_cat: dict[str, list[str]] = {}
        for c, s in dataset_images(args.dataset, args.split):
            by_cat.setdefault(c, []).append(s)
        rec, seg = simulated_reconstructor(args.dataset), DatasetMasks(args.dataset)
        names, truth = [], []
        for c in sorted(by_cat):
            for s in by_cat[c][:args.per_category]:
                r = rec.load(c, s)
                img = np.zeros((r.camera.height, r.camera.width, 3), np.uint8)
                if args.predicted_masks:
                    from geocorr.data.images import read_mask

                    mask = read_mask(args.dataset / "PredictedMasks" / c / f"{s}.png")
                else:
                    mask = seg.segment(img, c, s)
                data.append((r.vertices, r.faces, r.camera, mask))
                names.append(c)
                truth.append(true_rotation(args.dataset, c, s, r.camera.R))
    if args.rotation_sigma > 0:
        data = [inject_rotation(v, f, cam, m, args.rotation_sigma, i)
                for i, (v, f, cam, m) in enumerate(data)]
    print("| change from the defaults | median IoU | mean IoU | min IoU | s/image (max) "
          "| CPU s/image (max) | load |")
    print("|---|---|---|---|---|---|---|")
    for cfg_text in args.sweep:
        cfg = json.loads(cfg_text)
        settings = RefineSettings(**cfg)
        rows, rot = [], []
        for (v, f, cam, m), R_true in zip(data, truth, strict=True):
            c0 = time.process_time()
            o = refine_pose(v, f, cam, m, settings)
            rows.append((o.iou_after, o.seconds, time.process_time() - c0))
            rot.append((angle_deg(cam.R @ R_true.T), angle_deg(o.camera.R @ R_true.T),
                        o.rotation_status == "accepted"))
        res = np.array(rows)
        if args.rotation_sigma > 0 or settings.rotation:
            print_rotation(cfg, names, np.array(rot, dtype=np.float64), res)
        line = {"config": cfg, "n": len(res), "median_after": float(np.median(res[:, 0])),
                "mean_after": float(res[:, 0].mean()), "min_after": float(res[:, 0].min()),
                "mean_s": float(res[:, 1].mean()), "max_s": float(res[:, 1].max()),
                "mean_cpu_s": float(res[:, 2].mean()), "max_cpu_s": float(res[:, 2].max()),
                "load": os.getloadavg()[0], "iou_after": res[:, 0].tolist(),
                "settings": asdict(settings)}
        print(f"| {json.dumps(cfg)} | {line['median_after']:.3f} | {line['mean_after']:.3f} | "
              f"{line['min_after']:.3f} | {line['mean_s']:.2f} ({line['max_s']:.2f}) | "
              f"{line['mean_cpu_s']:.2f} ({line['max_cpu_s']:.2f}) | {line['load']:.1f} |",
              flush=True)
        if args.json:
            with open(args.json, "a") as fh:
                fh.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()

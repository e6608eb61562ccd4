"""``dog``: a quadruped family (from dachshund-long to greyhound-tall).

Parts: ``body`` (an ellipsoid torso), ``neck`` (a cylinder rising forwards),
``head`` (an ellipsoid), ``snout`` (a tapered cylinder pointing forwards, blunt
nose cap), left/right ``ear`` (flattened ellipsoids; pricked up or flopped
sideways per instance), left/right ``eye`` (small spheres set into the head),
four legs (tapered cylinders; hind legs slanted backwards), ``tail`` (a tapered
cylinder curving up from the rump). Right parts are mirrored copies of the left
ones.

Keypoints (17): eyes, ear tips, nose tip, head top, withers, rump, tail tip,
four paws, four knees/elbows (front of each leg at mid height).

Groups: eyes; ears; paws; knees.

What makes it hard: two eyes, two ears and four legs that look alike (left/right
mirror symmetry plus front/hind repetition); head and tail differ clearly in
shape, so 180-degree flips are rarer than for vehicles, but a side view hides
which legs are left.
"""

from __future__ import annotations

import numpy as np

from geocorr.data.synth.shapes.assemble import KeypointSpec, PartSpec, make_info
from geocorr.data.synth.shapes.placement import X_AXIS_FORWARD, affine, rot_x, rot_y
from geocorr.data.synth.shapes.sides import SIDES, lr_keypoints, lr_parts

PARTS = (
    ("body", "fur"),
    ("neck", "fur"),
    ("head", "fur"),
    ("snout", "snout"),
    *lr_parts("ear", "ear"),
    *lr_parts("eye", "eye"),
    *lr_parts("leg_front", "leg"),
    *lr_parts("leg_hind", "leg"),
    ("tail", "tail"),
)

KEYPOINTS = (
    *lr_keypoints("eye", "eye", (1.0, 0.0, 0.0)),
    *lr_keypoints("ear_tip", "ear", (0.0, 0.0, 1.0)),
    KeypointSpec("nose", "snout", (0.0, 0.0, 1.0)),
    KeypointSpec("head_top", "head", (0.0, 0.0, 1.0)),
    KeypointSpec("withers", "body", (0.5, 0.0, float(np.sqrt(0.75)))),
    KeypointSpec("rump", "body", (-1.0, 0.0, 0.0)),
    KeypointSpec("tail_tip", "tail", (0.0, 0.0, 1.0)),
    # Toe: the front of the leg's bottom rim (the sole faces the ground).
    *lr_keypoints("paw_front", "leg_front", (1.0, 0.0, -1.0)),
    *lr_keypoints("paw_hind", "leg_hind", (1.0, 0.0, -1.0)),
    *lr_keypoints("knee_front", "leg_front", (1.0, 0.0, 0.0)),
    *lr_keypoints("knee_hind", "leg_hind", (1.0, 0.0, 0.0)),
)

GROUPS = (
    ("eye_left", "eye_right"),
    ("ear_tip_left", "ear_tip_right"),
    ("paw_front_left", "paw_front_right", "paw_hind_left", "paw_hind_right"),
    ("knee_front_left", "knee_front_right", "knee_hind_left", "knee_hind_right"),
)

INFO = make_info("dog", PARTS, KEYPOINTS, GROUPS, elongated=False)


def _tapered_leg(top, bottom, r_top: float, r_bottom: float):
    """Cylinder from ``top`` to ``bottom`` (template z = +1 at the top), radius tapering."""
    top = np.asarray(top, dtype=np.float64)
    bottom = np.asarray(bottom, dtype=np.float64)

    def place(t: np.ndarray) -> np.ndarray:
        h = (t[:, 2] + 1.0) / 2.0
        r = r_bottom + (r_top - r_bottom) * h
        c = bottom + h[:, None] * (top - bottom)
        return c + np.stack([t[:, 0] * r, t[:, 1] * r, np.zeros_like(r)], axis=1)

    return place


def build(rng: np.random.Generator) -> list[PartSpec]:
    """Sample one dog's parts (metres, X front, Y left, Z up, ground at z = 0)."""
    u = rng.uniform
    bl, bw, bh = u(0.28, 0.45), u(0.1, 0.15), u(0.12, 0.18)  # body half-axes
    leg_len = u(0.22, 0.5)
    zb = leg_len + bh * 0.6  # body centre height
    body = affine((0, 0, zb), (bl, bw, bh))
    parts = [PartSpec("body", "ellipsoid", body, (2 * bl, 2 * bw, 2 * bh))]

    # Neck rising forwards from the chest; head at its top, snout pointing forwards.
    neck_len, neck_r = u(0.12, 0.22), u(0.05, 0.075)
    neck_pitch = u(0.6, 1.0)  # radians above horizontal
    n0 = np.array([bl * 0.75, 0.0, zb + bh * 0.2])
    ndir = np.array([np.cos(neck_pitch), 0.0, np.sin(neck_pitch)])
    n1 = n0 + neck_len * ndir
    neck = _tapered_leg(n1, n0, neck_r * 0.85, neck_r)
    hl, hw, hh = u(0.08, 0.11), u(0.06, 0.08), u(0.065, 0.085)
    hc = n1 + np.array([0.03, 0.0, hh * 0.4])
    head = affine(hc, (hl, hw, hh))
    sl, sr = u(0.06, 0.12), u(0.03, 0.045)
    s0 = hc + np.array([hl * 0.6, 0.0, -hh * 0.35])

    def snout(t: np.ndarray) -> np.ndarray:
        # Template z along the snout (+1 = nose); radius narrows towards the nose.
        h = (t[:, 2] + 1.0) / 2.0
        r = sr * (1.0 - 0.3 * h)
        local = np.stack([t[:, 0] * r, t[:, 1] * r * 1.1, h * sl], axis=1)
        return local @ X_AXIS_FORWARD.T + s0

    parts += [
        PartSpec("neck", "cylinder", neck, (2 * neck_r, 2 * neck_r, neck_len)),
        PartSpec("head", "ellipsoid", head, (2 * hl, 2 * hw, 2 * hh)),
        PartSpec("snout", "cylinder", snout, (2 * sr, 2 * sr, sl)),
    ]
    # Ears: flat ellipsoids on the upper sides of the head, pricked or flopped.
    el, ew, et = u(0.035, 0.06), u(0.025, 0.04), u(0.008, 0.014)
    flop = u(0.1, 1.4)  # roll outwards (radians): 0.1 pricked ... 1.4 hanging sideways
    ear_rot = rot_x(-flop) @ rot_y(u(-0.3, 0.1))
    ear_base = hc + np.array([-hl * 0.25, hw * 0.55, hh * 0.7])
    ear = affine(ear_base + ear_rot @ np.array([0.0, 0.0, el * 0.8]), (ew, et, el), ear_rot)
    # Eyes: small spheres on the front-upper sides of the head, template +x looks out.
    er = u(0.012, 0.018)
    eye_dir = np.array([0.75, 0.55, 0.35])
    eye_dir /= np.linalg.norm(eye_dir)
    eye_c = hc + np.array([hl, hw, hh]) * eye_dir * 0.92
    eye_rot = _frame_from_x(eye_dir)
    eye = affine(eye_c, (er, er, er), eye_rot)
    # Legs: front legs vertical, hind legs slanting back; feet splay a little.
    lr_top, lr_bot = u(0.035, 0.055), u(0.02, 0.03)
    y_leg = bw * 0.55
    xf, xh = bl * 0.6, -bl * 0.6
    hind_slant = u(0.03, 0.1)
    front = _tapered_leg((xf, y_leg, zb), (xf + 0.01, y_leg + 0.01, 0.0), lr_top, lr_bot)
    hind = _tapered_leg((xh, y_leg, zb), (xh - hind_slant, y_leg + 0.01, 0.0), lr_top * 1.15,
                        lr_bot)
    leg_size = (2 * lr_top, 2 * lr_top, zb)
    for s in SIDES:
        m = s == "right"
        parts += [
            PartSpec(f"ear_{s}", "ellipsoid", ear, (2 * ew, 2 * et, 2 * el), m),
            PartSpec(f"eye_{s}", "ellipsoid", eye, (2 * er, 2 * er, 2 * er), m),
            PartSpec(f"leg_front_{s}", "cylinder", front, leg_size, m),
            PartSpec(f"leg_hind_{s}", "cylinder", hind, leg_size, m),
        ]
    # Tail: from the rump, curving up (bend about Y), tapering to a tip.
    tl, tr = u(0.15, 0.3), u(0.018, 0.03)
    lift0, curl = u(0.2, 0.8), u(0.0, 1.2)
    t0 = np.array([-bl * 0.92, 0.0, zb + bh * 0.35])

    def tail(t: np.ndarray) -> np.ndarray:
        h = (t[:, 2] + 1.0) / 2.0
        ang = lift0 + curl * h  # angle above the backward horizontal
        s = h * tl
        # Centre line: integrate the direction (-cos a, 0, sin a) analytically.
        if abs(curl) > 1e-9:
            cx = -(np.sin(lift0 + curl * h) - np.sin(lift0)) * tl / curl
            cz = -(np.cos(lift0 + curl * h) - np.cos(lift0)) * tl / curl
        else:
            cx, cz = -np.cos(lift0) * s, np.sin(lift0) * s
        r = tr * (1.0 - 0.65 * h)
        # Cross-section frame: (normal in the XZ plane, Y); z follows the centre line.
        nx, nz = np.sin(ang), np.cos(ang)
        x = t0[0] + cx + t[:, 0] * r * nx
        y = t[:, 1] * r
        z = t0[2] + cz + t[:, 0] * r * nz
        return np.stack([x, y, z], axis=1)

    parts.append(PartSpec("tail", "cylinder", tail, (2 * tr, 2 * tr, tl)))
    return parts


def _frame_from_x(x_dir: np.ndarray) -> np.ndarray:
    """Proper rotation whose first column is ``x_dir`` (unit), with Z kept roughly up."""
    x = x_dir / np.linalg.norm(x_dir)
    z = np.array([0.0, 0.0, 1.0]) - x[2] * x
    z /= np.linalg.norm(z)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)

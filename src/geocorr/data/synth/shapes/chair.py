"""``chair``: a four-legged chair family.

Parts: ``seat`` (a box, square to deep), four legs (square or round per
instance, tapering towards the floor, splayed outwards), ``backrest`` (a panel
on the rear of the seat, tilted back, narrowing or widening towards the top),
and optional left/right ``armrest`` side panels (about half of the instances
have them; without them those parts have no faces). Right parts are mirrored
copies of the left ones.

Keypoints (14): backrest top corners, backrest front centre, backrest top
centre, seat front corners, seat rear corners, seat front edge centre, the four
feet.

Groups: backrest top corners; seat front corners; seat rear corners; the four
feet.

What makes it hard: four identical legs (a 4-fold repeated part) and a left/right
mirror symmetry; seen from above or below the seat the front/rear cue (the
backrest) can be small, and the seat alone is nearly 4-fold symmetric.
"""

from __future__ import annotations

import numpy as np

from geocorr.data.synth.shapes.assemble import KeypointSpec, PartSpec, make_info
from geocorr.data.synth.shapes.placement import affine, smoothstep
from geocorr.data.synth.shapes.sides import SIDES, lr_keypoints, lr_parts

PARTS = (
    ("seat", "seat"),
    ("backrest", "backrest"),
    *lr_parts("leg_front", "leg"),
    *lr_parts("leg_rear", "leg"),
    *lr_parts("armrest", "armrest"),
)

KEYPOINTS = (
    KeypointSpec("back_top_left", "backrest", (1.0, 1.0, 1.0)),
    KeypointSpec("back_top_right", "backrest", (1.0, -1.0, 1.0)),
    KeypointSpec("seat_front_left", "seat", (1.0, 1.0, 1.0)),
    KeypointSpec("seat_front_right", "seat", (1.0, -1.0, 1.0)),
    KeypointSpec("seat_rear_left", "seat", (-1.0, 1.0, 1.0)),
    KeypointSpec("seat_rear_right", "seat", (-1.0, -1.0, 1.0)),
    # Outer bottom corner (the foot's centre would face the floor, never visible).
    *lr_keypoints("foot_front", "leg_front", (1.0, 1.0, -1.0)),
    *lr_keypoints("foot_rear", "leg_rear", (-1.0, 1.0, -1.0)),
    KeypointSpec("back_centre", "backrest", (1.0, 0.0, 0.2)),
    KeypointSpec("back_top_centre", "backrest", (0.0, 0.0, 1.0)),
    KeypointSpec("seat_front_centre", "seat", (1.0, 0.0, 1.0)),
    KeypointSpec("seat_centre", "seat", (0.0, 0.0, 1.0)),
)

GROUPS = (
    ("back_top_left", "back_top_right"),
    ("seat_front_left", "seat_front_right"),
    ("seat_rear_left", "seat_rear_right"),
    ("foot_front_left", "foot_front_right", "foot_rear_left", "foot_rear_right"),
)

INFO = make_info(
    "chair", PARTS, KEYPOINTS, GROUPS, elongated=False,
    optional_parts=("armrest_left", "armrest_right"),
)


def build(rng: np.random.Generator) -> list[PartSpec]:
    """Sample one chair's parts (metres, X front, Y left, Z up, floor at z = 0)."""
    u = rng.uniform
    D, W = u(0.4, 0.55), u(0.4, 0.55)  # seat depth (x) and width (y)
    hs, ts = u(0.4, 0.5), u(0.03, 0.07)  # seat top height, seat thickness
    zs0, zs1 = hs - ts, hs
    round_legs = bool(rng.random() < 0.5)
    leg = u(0.03, 0.05)  # leg half-width at the top
    taper = u(0.55, 1.0)  # bottom/top width ratio
    splay = u(0.0, 0.06)  # outward foot offset
    inset = u(0.01, 0.04)
    hb, tb = u(0.35, 0.55), u(0.025, 0.05)  # backrest height above the seat, thickness
    tilt = u(0.03, 0.18)  # backward lean (metres at the top per metre of height)
    top_scale = u(0.8, 1.1)  # top width / bottom width of the backrest
    arms = bool(rng.random() < 0.5)

    def seat(t: np.ndarray) -> np.ndarray:
        x, y = t[:, 0] * D / 2, t[:, 1] * W / 2
        # A slight front lip: the front edge is rounded down a little.
        lip = 0.012 * smoothstep((t[:, 0] - 0.6) / 0.4)
        z = zs0 + (t[:, 2] + 1.0) / 2.0 * ts - lip * (t[:, 2] + 1.0) / 2.0
        return np.stack([x, y, z], axis=1)

    def make_leg(xc: float, yc: float, dx: float):
        def place(t: np.ndarray) -> np.ndarray:
            h = (t[:, 2] + 1.0) / 2.0  # 0 at the floor, 1 at the seat
            w = leg * (taper + (1.0 - taper) * h)
            x = xc + dx * splay * (1.0 - h) + t[:, 0] * w
            y = yc + splay * (1.0 - h) + t[:, 1] * w
            z = h * (zs0 + ts / 2)
            return np.stack([x, y, z], axis=1)

        return place

    def backrest(t: np.ndarray) -> np.ndarray:
        h = (t[:, 2] + 1.0) / 2.0  # 0 inside the seat, 1 at the top
        zb = zs1 - ts / 2
        z = zb + h * (hb + ts / 2)
        x = -D / 2 + tb / 2 + 0.005 - tilt * h * (hb + ts / 2) + t[:, 0] * tb / 2
        y = t[:, 1] * W / 2 * (1.0 + (top_scale - 1.0) * h)
        return np.stack([x, y, z], axis=1)

    kind = "cylinder" if round_legs else "box"
    size = (2 * leg, 2 * leg, zs1)
    parts = [
        PartSpec("seat", "box", seat, (D, W, ts)),
        PartSpec("backrest", "box", backrest, (tb, W * max(1.0, top_scale), hb)),
    ]
    for s in SIDES:
        m = s == "right"
        front = make_leg(D / 2 - leg - inset, W / 2 - leg - inset, 1.0)
        rear = make_leg(-D / 2 + leg + inset, W / 2 - leg - inset, -1.0)
        parts.append(PartSpec(f"leg_front_{s}", kind, front, size, m))
        parts.append(PartSpec(f"leg_rear_{s}", kind, rear, size, m))
    if arms:
        ha, ta = u(0.18, 0.26), u(0.02, 0.04)
        xa0, xa1 = -D / 2 + 0.01, D / 2 - u(0.0, 0.06)
        za0 = zs1 - ts / 2
        arm = affine(((xa0 + xa1) / 2, W / 2 - ta / 2, za0 + (ha + ts / 2) / 2),
                         ((xa1 - xa0) / 2, ta / 2, (ha + ts / 2) / 2))
        for s in SIDES:
            parts.append(PartSpec(f"armrest_{s}", "box", arm, (xa1 - xa0, ta, ha), s == "right"))
    return parts

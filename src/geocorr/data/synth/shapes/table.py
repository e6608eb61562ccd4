"""``table``: a four-legged table family (dining, coffee and side tables).

Parts: ``top`` (a box, square to long, with a bevelled underside edge),
``apron_front`` / ``apron_rear`` and ``apron_left`` / ``apron_right`` (boards
under the top's edges joining the legs; left/right are mirrored, front/rear
are the same board seen from opposite sides), four legs (square or round per
instance, tapered). Right parts are mirrored copies of the left ones.

The long side of the top runs along X (the table's "front" is a short end),
so front/rear and left/right are both pure symmetries of the shape.

Keypoints (16): the four top corners, the four feet, the midpoints of the four
top edges, the outer corner of each leg at mid height.

Groups: top corners; feet; front/rear edge midpoints; left/right edge
midpoints; leg mid-heights.

What makes it hard: the shape has a 2-fold (square tops: 4-fold) yaw symmetry:
nothing but the viewpoint tells the front-left leg from the rear-right one, so
geometry-aware keypoints can only be matched by reasoning about the pose.
"""

from __future__ import annotations

import numpy as np

from geocorr.data.synth.shapes.assemble import KeypointSpec, PartSpec, make_info
from geocorr.data.synth.shapes.placement import affine, rot_z
from geocorr.data.synth.shapes.sides import SIDES, lr_keypoints, lr_parts

PARTS = (
    ("top", "top"),
    ("apron_front", "apron"),
    ("apron_rear", "apron"),
    *lr_parts("apron", "apron"),
    *lr_parts("leg_front", "leg"),
    *lr_parts("leg_rear", "leg"),
)

KEYPOINTS = (
    KeypointSpec("top_front_left", "top", (1.0, 1.0, 1.0)),
    KeypointSpec("top_front_right", "top", (1.0, -1.0, 1.0)),
    KeypointSpec("top_rear_left", "top", (-1.0, 1.0, 1.0)),
    KeypointSpec("top_rear_right", "top", (-1.0, -1.0, 1.0)),
    # Outer bottom corner (the foot's centre would face the floor, never visible).
    *lr_keypoints("foot_front", "leg_front", (1.0, 1.0, -1.0)),
    *lr_keypoints("foot_rear", "leg_rear", (-1.0, 1.0, -1.0)),
    KeypointSpec("edge_front", "top", (1.0, 0.0, 1.0)),
    KeypointSpec("edge_rear", "top", (-1.0, 0.0, 1.0)),
    KeypointSpec("edge_left", "top", (0.0, 1.0, 1.0)),
    KeypointSpec("edge_right", "top", (0.0, -1.0, 1.0)),
    *lr_keypoints("leg_mid_front", "leg_front", (1.0, 1.0, 0.0)),
    *lr_keypoints("leg_mid_rear", "leg_rear", (-1.0, 1.0, 0.0)),
)

GROUPS = (
    ("top_front_left", "top_front_right", "top_rear_left", "top_rear_right"),
    ("foot_front_left", "foot_front_right", "foot_rear_left", "foot_rear_right"),
    ("edge_front", "edge_rear"),
    ("edge_left", "edge_right"),
    ("leg_mid_front_left", "leg_mid_front_right", "leg_mid_rear_left", "leg_mid_rear_right"),
)

INFO = make_info("table", PARTS, KEYPOINTS, GROUPS, elongated=True)


def build(rng: np.random.Generator) -> list[PartSpec]:
    """Sample one table's parts (metres, X front, Y left, Z up, floor at z = 0)."""
    u = rng.uniform
    kind = rng.integers(3)  # 0 dining, 1 coffee, 2 side table
    if kind == 0:
        Lx, Ly, H = u(1.2, 2.0), u(0.75, 1.0), u(0.7, 0.78)
    elif kind == 1:
        Lx, Ly, H = u(0.9, 1.3), u(0.5, 0.7), u(0.38, 0.48)
    else:
        side = u(0.45, 0.6)
        Lx, Ly, H = side * u(1.0, 1.15), side, u(0.5, 0.65)
    tt = u(0.025, 0.05)  # top thickness
    bevel = u(0.0, 0.6)  # fraction of the thickness bevelled off the underside edge
    over = u(0.02, 0.08)  # top overhang beyond the legs
    leg = u(0.02, 0.04) * (1.0 + 0.5 * (kind == 0))
    taper = u(0.5, 1.0)
    round_legs = bool(rng.random() < 0.5)
    apron_h, apron_t = u(0.06, 0.12), u(0.015, 0.025)

    def top(t: np.ndarray) -> np.ndarray:
        # The underside shrinks towards the edges by the bevel (a chamfered edge).
        low = (1.0 - t[:, 2]) / 2.0  # 1 on the underside, 0 on the top face
        shrink = 1.0 - low * bevel * tt / np.array([[Lx / 2], [Ly / 2]])
        x = t[:, 0] * Lx / 2 * shrink[0]
        y = t[:, 1] * Ly / 2 * shrink[1]
        z = H - tt + (t[:, 2] + 1.0) / 2.0 * tt
        return np.stack([x, y, z], axis=1)

    parts = [PartSpec("top", "box", top, (Lx, Ly, tt))]
    # Legs: inset by the overhang; the top of each leg sits inside the top board.
    xl, yl = Lx / 2 - over - leg, Ly / 2 - over - leg
    z_leg = H - tt / 2

    def make_leg(xc: float):
        def place(t: np.ndarray) -> np.ndarray:
            h = (t[:, 2] + 1.0) / 2.0
            w = leg * (taper + (1.0 - taper) * h)
            return np.stack([xc + t[:, 0] * w, yl + t[:, 1] * w, h * z_leg], axis=1)

        return place

    leg_kind = "cylinder" if round_legs else "box"
    for s in SIDES:
        m = s == "right"
        parts.append(PartSpec(f"leg_front_{s}", leg_kind, make_leg(xl), (2 * leg, 2 * leg, H), m))
        parts.append(PartSpec(f"leg_rear_{s}", leg_kind, make_leg(-xl), (2 * leg, 2 * leg, H), m))
    # Aprons: boards under the top between the legs, template +y facing outwards,
    # set 4 mm inside the legs' outer faces (coplanar faces make fragile booleans).
    za = H - tt - apron_h / 2 + 0.005
    ya, xa = yl + leg - 0.004 - apron_t / 2, xl + leg - 0.004 - apron_t / 2
    half = (yl, apron_t / 2, apron_h / 2)
    side_apron = affine((0.0, ya, za), (xl, apron_t / 2, apron_h / 2))
    parts.append(PartSpec("apron_left", "box", side_apron, (2 * xl, apron_t, apron_h)))
    parts.append(PartSpec("apron_right", "box", side_apron, (2 * xl, apron_t, apron_h), True))
    # Front apron: the side board rotated to face +x (template +y -> world +x).
    end = (2 * yl, apron_t, apron_h)
    front = affine((xa, 0.0, za), half, rot_z(-np.pi / 2))
    rear = affine((-xa, 0.0, za), half, rot_z(np.pi / 2))
    parts.append(PartSpec("apron_front", "box", front, end))
    parts.append(PartSpec("apron_rear", "box", rear, end))
    return parts

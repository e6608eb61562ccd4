"""``car``: a saloon/hatchback family.

Parts: ``body`` (lower box: nose narrowed in plan and dropping into a sloped
hood, a short flat trunk at the rear), ``cabin`` (greenhouse offset towards the
rear, sloped windscreen steeper or shallower per instance, rear window, inward
tumblehome), four wheels (cylinders, outer cap = template z +1), left/right
``mirror``, left/right ``headlight`` (ellipsoids set into the nose), left/right
``taillight`` (raised boxes on the rear face), four ``door`` panels (slightly
raised boxes on the sides). Right parts are mirrored copies of the left ones,
so a point has the same template coordinates on either side.

Keypoints (24): 4 wheel hub centres, 2 headlights, 2 tail lights, 2 mirror tips,
4 windscreen corners, 4 rear-window corners, front and rear bumper centres,
4 door centres.

Groups: the four wheels; headlights; tail lights; mirrors; windscreen bottom
corners; windscreen top corners; rear window bottom; rear window top; the four
doors.

What makes it hard: a true left/right mirror symmetry (only 3D or global
reasoning separates the left wheel from the right), four wheels that look
alike, and a front/rear near-symmetry broken only by shape (hood longer and
sloped, cabin offset backwards, windscreen sloped more than the rear window),
so 180-degree yaw confusions (front-left <-> rear-right) are the typical error.
"""

from __future__ import annotations

import numpy as np

from geocorr.data.synth.shapes.assemble import KeypointSpec, PartSpec, make_info
from geocorr.data.synth.shapes.placement import Y_AXIS_OUT, affine, smoothstep
from geocorr.data.synth.shapes.sides import SIDES, lr_keypoints, lr_parts

PARTS = (
    ("body", "body"),
    ("cabin", "glass"),
    *lr_parts("wheel_front", "wheel"),
    *lr_parts("wheel_rear", "wheel"),
    *lr_parts("mirror", "mirror"),
    *lr_parts("headlight", "headlight"),
    *lr_parts("taillight", "taillight"),
    *lr_parts("door_front", "door"),
    *lr_parts("door_rear", "door"),
)

# Cabin template z where it meets the body top: -1 + 2 * 0.06 / (hc + 0.06) for the
# sampled cabin heights hc is -0.82 .. -0.79, i.e. within 1 cm of this.
CABIN_BASE = -0.8


KEYPOINTS = (
    *lr_keypoints("wheel_front", "wheel_front", (0.0, 0.0, 1.0)),
    *lr_keypoints("wheel_rear", "wheel_rear", (0.0, 0.0, 1.0)),
    *lr_keypoints("headlight", "headlight", (1.0, 0.0, 0.0)),
    *lr_keypoints("taillight", "taillight", (-1.0, 0.0, 0.0)),
    *lr_keypoints("mirror", "mirror", (0.0, 1.0, 0.0)),
    KeypointSpec("windscreen_bottom_left", "cabin", (1.0, 1.0, CABIN_BASE)),
    KeypointSpec("windscreen_bottom_right", "cabin", (1.0, -1.0, CABIN_BASE)),
    KeypointSpec("windscreen_top_left", "cabin", (1.0, 1.0, 1.0)),
    KeypointSpec("windscreen_top_right", "cabin", (1.0, -1.0, 1.0)),
    KeypointSpec("rear_window_bottom_left", "cabin", (-1.0, 1.0, CABIN_BASE)),
    KeypointSpec("rear_window_bottom_right", "cabin", (-1.0, -1.0, CABIN_BASE)),
    KeypointSpec("rear_window_top_left", "cabin", (-1.0, 1.0, 1.0)),
    KeypointSpec("rear_window_top_right", "cabin", (-1.0, -1.0, 1.0)),
    KeypointSpec("front_bumper", "body", (1.0, 0.0, -0.6)),
    KeypointSpec("rear_bumper", "body", (-1.0, 0.0, -0.6)),
    *lr_keypoints("door_front", "door_front", (0.0, 1.0, 0.0)),
    *lr_keypoints("door_rear", "door_rear", (0.0, 1.0, 0.0)),
)

#: keypoint groups every road vehicle has (the bus shares them).
VEHICLE_GROUPS = (
    ("wheel_front_left", "wheel_front_right", "wheel_rear_left", "wheel_rear_right"),
    ("headlight_left", "headlight_right"),
    ("taillight_left", "taillight_right"),
    ("mirror_left", "mirror_right"),
    ("windscreen_bottom_left", "windscreen_bottom_right"),
    ("windscreen_top_left", "windscreen_top_right"),
    ("rear_window_bottom_left", "rear_window_bottom_right"),
    ("rear_window_top_left", "rear_window_top_right"),
)

GROUPS = (
    *VEHICLE_GROUPS,
    ("door_front_left", "door_front_right", "door_rear_left", "door_rear_right"),
)

INFO = make_info("car", PARTS, KEYPOINTS, GROUPS, elongated=True)


def build(rng: np.random.Generator) -> list[PartSpec]:
    """Sample one car's parts (metres, X front, Y left, Z up, ground at z = 0)."""
    u = rng.uniform
    L, W = u(3.8, 4.9), u(1.65, 1.9)
    clear, hb = u(0.14, 0.24), u(0.55, 0.75)  # ground clearance, body height
    z0, ztop = clear, clear + hb
    wb = L * u(0.56, 0.64)  # wheelbase
    axle_shift = L * u(0.0, 0.04)  # front overhang shorter than the rear one
    r, wt = u(0.29, 0.37), u(0.18, 0.25)
    # Cabin: offset towards the rear; windscreen slope > rear-window slope.
    cab_len = L * u(0.42, 0.55)
    cab_front = L / 2 - L * u(0.30, 0.38)
    cab_rear = cab_front - cab_len
    hc = u(0.45, 0.62)
    wind_slope = hc * u(1.1, 1.7)
    rear_slope = hc * u(0.35, 0.9)
    wc = W * u(0.80, 0.9)
    tumble = u(0.08, 0.16)
    # Hood drops towards the nose; nose narrows; front bottom lifts (wedge).
    hood_drop, nose_taper, nose_lift = hb * u(0.2, 0.38), u(0.05, 0.10), u(0.03, 0.09)
    trunk_drop = hb * u(0.0, 0.08)

    def front_s(x: np.ndarray) -> np.ndarray:
        return smoothstep((x - cab_front) / (L / 2 - cab_front))

    def rear_s(x: np.ndarray) -> np.ndarray:
        return smoothstep((cab_rear - x) / (cab_rear + L / 2))

    def body(t: np.ndarray) -> np.ndarray:
        x = t[:, 0] * L / 2
        sf, sr = front_s(x), rear_s(x)
        y = t[:, 1] * W / 2 * (1.0 - nose_taper * sf)
        bottom = z0 + nose_lift * sf
        top = ztop - hood_drop * sf - trunk_drop * sr
        z = bottom + (t[:, 2] + 1.0) / 2.0 * (top - bottom)
        return np.stack([x, y, z], axis=1)

    zb = ztop - 0.06

    def cabin(t: np.ndarray) -> np.ndarray:
        # The bottom 6 cm sink into the body so the union overlaps. Linear in the
        # template (labels stay exact); the visible base is at template z ~ CABIN_BASE.
        h = (t[:, 2] + 1.0) / 2.0
        xf = cab_front - wind_slope * h
        xr = cab_rear + rear_slope * h
        x = xr + (t[:, 0] + 1.0) / 2.0 * (xf - xr)
        y = t[:, 1] * wc / 2 * (1.0 - tumble * h)
        return np.stack([x, y, zb + h * (hc + 0.06)], axis=1)

    parts = [
        PartSpec("body", "box", body, (L, W, hb)),
        PartSpec("cabin", "box", cabin, (cab_len, wc, hc)),
    ]
    y_wheel = W / 2 - wt / 2 + u(0.02, 0.04)
    for name, x in (("front", wb / 2 - axle_shift), ("rear", -wb / 2 - axle_shift)):
        place = affine((x, y_wheel, r), (r, r, wt / 2), Y_AXIS_OUT)
        for side in SIDES:
            size = (2 * r, 2 * r, wt)
            parts.append(PartSpec(f"wheel_{name}_{side}", "cylinder", place, size, side == "right"))
    # Mirror on the cabin's side, just behind the windscreen base.
    mh = 0.12 + 0.06 * u()
    mx = cab_front - wind_slope * ((mh + 0.06) / (hc + 0.06)) - 0.12
    mlen = u(0.15, 0.24)
    mirror = affine((mx, wc / 2 + mlen / 2 - 0.06, zb + 0.06 + mh), (0.06, mlen / 2, 0.06))
    # Headlights set into the nose (ellipsoids), tail lights raised on the rear face.
    hw, hh = u(0.22, 0.34), u(0.08, 0.14)
    y_nose = W / 2 * (1.0 - nose_taper)
    z_nose = z0 + nose_lift + 0.7 * (ztop - hood_drop - z0 - nose_lift)
    head = affine((L / 2 - 0.03, y_nose - hw / 2 - 0.08, z_nose), (0.07, hw / 2, hh / 2))
    tw, th = u(0.2, 0.35), u(0.1, 0.18)
    z_tail = z0 + 0.72 * (ztop - trunk_drop - z0)
    tail = affine((-L / 2 - 0.005, W / 2 - tw / 2 - 0.1, z_tail), (0.025, tw / 2, th / 2))
    # Doors: slightly raised panels on the sides below the cabin.
    dz0, dz1 = z0 + 0.12, ztop - 0.06
    dxs = np.linspace(cab_rear + 0.05, cab_front + 0.05, 3)
    for side in SIDES:
        m = side == "right"
        parts += [
            PartSpec(f"mirror_{side}", "box", mirror, (0.12, mlen, 0.12), m),
            PartSpec(f"headlight_{side}", "ellipsoid", head, (0.14, hw, hh), m),
            PartSpec(f"taillight_{side}", "box", tail, (0.05, tw, th), m),
        ]
        for k, name in ((1, "front"), (0, "rear")):
            a, b = dxs[k] + 0.02, dxs[k + 1] - 0.02
            centre = ((a + b) / 2, W / 2, (dz0 + dz1) / 2)
            door = affine(centre, ((b - a) / 2, 0.012, (dz1 - dz0) / 2))
            parts.append(PartSpec(f"door_{name}_{side}", "box", door, (b - a, 0.024, dz1 - dz0), m))
    return parts

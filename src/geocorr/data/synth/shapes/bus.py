"""``bus``: a single-deck city/coach bus family.

Parts: ``body`` (a long box, 3.5-5x longer than wide), ``windscreen`` (a large
inset cut into the front face), ``rear_window`` (a smaller, higher inset in the
rear face), left/right ``side_windows`` (a long inset band along each side),
``door`` (a tall inset on the right side only, just behind the front face),
four wheels, left/right ``mirror`` (arms sticking out at the front top
corners), left/right ``headlight`` and ``taillight`` (raised boxes). Insets are
boolean *subtractions*; the recess walls and floor belong to the inset part.

Keypoints (30): 4 wheel hub centres, 2 headlights, 2 tail lights, 2 mirror
tips, 4 windscreen corners, 4 rear-window corners, 4 roof corners, the two
ends of each side-window band, 4 door corners.

Groups: the four wheels; headlights; tail lights; mirrors; windscreen bottom
and top corners; rear-window bottom and top corners; the four roof corners;
side-window front ends; side-window rear ends.

What makes it hard: a strong 4-fold yaw ambiguity. The silhouette is a box
whose front and rear differ only by inset depths, window heights and lamps;
left and right differ only by the door; seen from far or blurred, the bus
looks the same turned by 180 degrees, and its long sides look alike.
"""

from __future__ import annotations

import numpy as np

from geocorr.data.synth.shapes.assemble import KeypointSpec, PartSpec, make_info
from geocorr.data.synth.shapes.car import VEHICLE_GROUPS
from geocorr.data.synth.shapes.placement import Y_AXIS_OUT, affine
from geocorr.data.synth.shapes.sides import SIDES, lr_keypoints, lr_parts

PARTS = (
    ("body", "body"),
    ("windscreen", "glass"),
    ("rear_window", "glass"),
    *lr_parts("side_windows", "glass"),
    ("door", "door"),
    *lr_parts("wheel_front", "wheel"),
    *lr_parts("wheel_rear", "wheel"),
    *lr_parts("mirror", "mirror"),
    *lr_parts("headlight", "headlight"),
    *lr_parts("taillight", "taillight"),
)

# Inset boxes are centred on the face they cut; the recess floor is their inner face.
KEYPOINTS = (
    *lr_keypoints("wheel_front", "wheel_front", (0.0, 0.0, 1.0)),
    *lr_keypoints("wheel_rear", "wheel_rear", (0.0, 0.0, 1.0)),
    *lr_keypoints("headlight", "headlight", (1.0, 0.0, 0.0)),
    *lr_keypoints("taillight", "taillight", (-1.0, 0.0, 0.0)),
    *lr_keypoints("mirror", "mirror", (1.0, 1.0, -1.0)),
    KeypointSpec("windscreen_bottom_left", "windscreen", (-1.0, 1.0, -1.0)),
    KeypointSpec("windscreen_bottom_right", "windscreen", (-1.0, -1.0, -1.0)),
    KeypointSpec("windscreen_top_left", "windscreen", (-1.0, 1.0, 1.0)),
    KeypointSpec("windscreen_top_right", "windscreen", (-1.0, -1.0, 1.0)),
    KeypointSpec("rear_window_bottom_left", "rear_window", (1.0, 1.0, -1.0)),
    KeypointSpec("rear_window_bottom_right", "rear_window", (1.0, -1.0, -1.0)),
    KeypointSpec("rear_window_top_left", "rear_window", (1.0, 1.0, 1.0)),
    KeypointSpec("rear_window_top_right", "rear_window", (1.0, -1.0, 1.0)),
    KeypointSpec("roof_front_left", "body", (1.0, 1.0, 1.0)),
    KeypointSpec("roof_front_right", "body", (1.0, -1.0, 1.0)),
    KeypointSpec("roof_rear_left", "body", (-1.0, 1.0, 1.0)),
    KeypointSpec("roof_rear_right", "body", (-1.0, -1.0, 1.0)),
    *lr_keypoints("side_windows_front", "side_windows", (1.0, -1.0, 0.0)),
    *lr_keypoints("side_windows_rear", "side_windows", (-1.0, -1.0, 0.0)),
    KeypointSpec("door_top_front", "door", (1.0, -1.0, 1.0)),
    KeypointSpec("door_top_rear", "door", (-1.0, -1.0, 1.0)),
    KeypointSpec("door_bottom_front", "door", (1.0, -1.0, -1.0)),
    KeypointSpec("door_bottom_rear", "door", (-1.0, -1.0, -1.0)),
)

GROUPS = (
    *VEHICLE_GROUPS,
    ("roof_front_left", "roof_front_right", "roof_rear_left", "roof_rear_right"),
    ("side_windows_front_left", "side_windows_front_right"),
    ("side_windows_rear_left", "side_windows_rear_right"),
)

INFO = make_info("bus", PARTS, KEYPOINTS, GROUPS, elongated=True)


def build(rng: np.random.Generator) -> list[PartSpec]:
    """Sample one bus's parts (metres, X front, Y left, Z up, ground at z = 0)."""
    u = rng.uniform
    L, W, H = u(8.5, 12.5), u(2.35, 2.6), u(2.7, 3.3)
    clear = u(0.25, 0.4)
    z0, z1 = clear, clear + H
    r, wt = u(0.45, 0.55), u(0.28, 0.36)
    front_over, rear_over = u(2.1, 2.8), u(2.4, 3.4)
    body = affine((0, 0, (z0 + z1) / 2), (L / 2, W / 2, H / 2))
    parts = [PartSpec("body", "box", body, (L, W, H))]

    # Windscreen: large, low inset in the front face; rear window smaller and higher.
    ws_d, ws_z0, ws_z1 = u(0.05, 0.1), z0 + H * u(0.3, 0.42), z1 - u(0.12, 0.25)
    ws_w = W / 2 - u(0.1, 0.2)
    parts.append(PartSpec(
        "windscreen", "box",
        affine((L / 2, 0, (ws_z0 + ws_z1) / 2), (ws_d, ws_w, (ws_z1 - ws_z0) / 2)),
        (2 * ws_d, 2 * ws_w, ws_z1 - ws_z0), subtract=True,
    ))
    rw_d, rw_z0, rw_z1 = u(0.03, 0.06), z0 + H * u(0.55, 0.65), z1 - u(0.2, 0.35)
    rw_w = W / 2 - u(0.25, 0.45)
    parts.append(PartSpec(
        "rear_window", "box",
        affine((-L / 2, 0, (rw_z0 + rw_z1) / 2), (rw_d, rw_w, (rw_z1 - rw_z0) / 2)),
        (2 * rw_d, 2 * rw_w, rw_z1 - rw_z0), subtract=True,
    ))
    # Side window bands (template y = -1 is the recess floor, +1 outside the body).
    sw_d, sw_z0, sw_z1 = u(0.03, 0.06), z0 + H * u(0.45, 0.55), z1 - u(0.2, 0.3)
    sw_x0, sw_x1 = -L / 2 + u(0.5, 1.2), L / 2 - u(1.9, 2.3)
    side = affine(((sw_x0 + sw_x1) / 2, W / 2, (sw_z0 + sw_z1) / 2),
                  ((sw_x1 - sw_x0) / 2, sw_d, (sw_z1 - sw_z0) / 2))
    for s in SIDES:
        parts.append(PartSpec(f"side_windows_{s}", "box", side,
                              (sw_x1 - sw_x0, 2 * sw_d, sw_z1 - sw_z0), s == "right", True))
    # Door on the right side only, between the front face and the side windows.
    d_d, d_x1 = u(0.04, 0.08), L / 2 - u(0.2, 0.35)
    d_x0, d_z0, d_z1 = d_x1 - u(0.9, 1.1), z0 + 0.1, z1 - u(0.3, 0.5)
    # Placed on the left and mirrored: template y = -1 is the recess floor.
    door = affine(((d_x0 + d_x1) / 2, W / 2, (d_z0 + d_z1) / 2),
                  ((d_x1 - d_x0) / 2, d_d, (d_z1 - d_z0) / 2))
    parts.append(PartSpec("door", "box", door, (d_x1 - d_x0, 2 * d_d, d_z1 - d_z0), True, True))

    y_wheel = W / 2 - wt / 2 + u(0.0, 0.03)
    for name, x in (("front", L / 2 - front_over), ("rear", -L / 2 + rear_over)):
        place = affine((x, y_wheel, r), (r, r, wt / 2), Y_AXIS_OUT)
        for s in SIDES:
            parts.append(PartSpec(f"wheel_{name}_{s}", "cylinder", place, (2 * r, 2 * r, wt),
                                  s == "right"))
    # Mirror arms: from the front top corner, forwards and outwards, hanging down.
    m_len, m_out = u(0.3, 0.45), u(0.2, 0.35)
    mirror = affine((L / 2 + m_len / 2 - 0.1, W / 2 + m_out / 2 - 0.05, z1 - 0.45),
                    (m_len / 2, m_out / 2, 0.1))
    hl_w, hl_h = u(0.25, 0.4), u(0.12, 0.2)
    head = affine((L / 2 + 0.01, W / 2 - hl_w / 2 - 0.12, z0 + 0.35),
                  (0.03, hl_w / 2, hl_h / 2))
    tl_w, tl_h = u(0.12, 0.2), u(0.3, 0.5)
    tail = affine((-L / 2 - 0.01, W / 2 - tl_w / 2 - 0.08, z0 + 0.45 + tl_h / 2),
                  (0.03, tl_w / 2, tl_h / 2))
    for s in SIDES:
        m = s == "right"
        parts += [
            PartSpec(f"mirror_{s}", "box", mirror, (m_len, m_out, 0.2), m),
            PartSpec(f"headlight_{s}", "box", head, (0.06, hl_w, hl_h), m),
            PartSpec(f"taillight_{s}", "box", tail, (0.06, tl_w, tl_h), m),
        ]
    return parts

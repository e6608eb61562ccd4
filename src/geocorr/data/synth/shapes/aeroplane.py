"""``aeroplane``: a twin-engine airliner family.

Parts: ``fuselage`` (a cylinder along X with a rounded nose and an upswept,
tapering tail cone), left/right ``wing`` (swept, tapered, with dihedral),
left/right ``engine`` (nacelles under the wings, front cap = template z +1),
left/right ``stabilizer`` (small swept horizontal tail planes), ``fin`` (the
swept vertical tail). Right parts are mirrored copies of the left ones.

Keypoints (19): nose, tail end, cockpit (top of the fuselage behind the nose),
wing tips (leading and trailing corner), wing leading edge at mid span, engine
intakes, engine exhausts, stabilizer tips, fin top (front and rear corners).

Groups: wing tip leading corners; wing tip trailing corners; wing mid leading
edges; engine intakes; engine exhausts; stabilizer tips.

What makes it hard: a left/right mirror symmetry with two identical engines and
wings; seen from above or below the silhouette is a cross whose front/rear
differs by sweep direction and the tail, and it flips easily under a 180 degree
yaw (nose and tail cone are both slender).
"""

from __future__ import annotations

import numpy as np

from geocorr.data.synth.shapes.assemble import KeypointSpec, PartSpec, make_info
from geocorr.data.synth.shapes.placement import X_AXIS_FORWARD, affine, smoothstep
from geocorr.data.synth.shapes.sides import lr_keypoints, lr_parts

PARTS = (
    ("fuselage", "fuselage"),
    *lr_parts("wing", "wing"),
    *lr_parts("engine", "engine"),
    *lr_parts("stabilizer", "tailplane"),
    ("fin", "tailplane"),
)

KEYPOINTS = (
    KeypointSpec("nose", "fuselage", (0.0, 0.0, 1.0)),
    KeypointSpec("tail", "fuselage", (0.0, 0.0, -1.0)),
    # Fuselage template x maps to world -z (see _fuselage): x = -1 is the top.
    KeypointSpec("cockpit", "fuselage", (-1.0, 0.0, 0.8)),
    *lr_keypoints("wing_tip_leading", "wing", (1.0, 1.0, 0.0)),
    *lr_keypoints("wing_tip_trailing", "wing", (-1.0, 1.0, 0.0)),
    *lr_keypoints("wing_mid_leading", "wing", (1.0, 0.1, 0.0)),
    *lr_keypoints("engine_intake", "engine", (0.0, 0.0, 1.0)),
    *lr_keypoints("engine_exhaust", "engine", (0.0, 0.0, -1.0)),
    *lr_keypoints("stabilizer_tip", "stabilizer", (0.0, 1.0, 0.0)),
    KeypointSpec("fin_top_leading", "fin", (1.0, 0.0, 1.0)),
    KeypointSpec("fin_top_trailing", "fin", (-1.0, 0.0, 1.0)),
)

GROUPS = (
    ("wing_tip_leading_left", "wing_tip_leading_right"),
    ("wing_tip_trailing_left", "wing_tip_trailing_right"),
    ("wing_mid_leading_left", "wing_mid_leading_right"),
    ("engine_intake_left", "engine_intake_right"),
    ("engine_exhaust_left", "engine_exhaust_right"),
    ("stabilizer_tip_left", "stabilizer_tip_right"),
)

INFO = make_info("aeroplane", PARTS, KEYPOINTS, GROUPS, elongated=True)


def _planform(x_root: float, z_root: float, span: float, chord: float, taper: float,
              sweep: float, dihedral: float, thick: float, y0: float = 0.0):
    """Swept, tapered lifting surface along +Y.

    Template x = chord (+1 leading edge), y = span (-1 root, +1 tip),
    z = thickness. Orientation-preserving: the Jacobian is triangular with a
    positive diagonal.
    """

    def place(t: np.ndarray) -> np.ndarray:
        v = (t[:, 1] + 1.0) / 2.0
        c = chord * (1.0 - (1.0 - taper) * v)
        x = x_root - sweep * v + t[:, 0] * c / 2.0
        y = y0 + v * span
        z = z_root + dihedral * v + t[:, 2] * thick * (1.0 - 0.5 * v) / 2.0
        return np.stack([x, y, z], axis=1)

    return place


def build(rng: np.random.Generator) -> list[PartSpec]:
    """Sample one aeroplane's parts (metres, X towards the nose, Y left, Z up)."""
    u = rng.uniform
    L, R = u(28.0, 45.0), u(1.6, 2.5)  # fuselage length and radius
    nose_len, tail_len = L * u(0.08, 0.13), L * u(0.2, 0.3)
    tail_r = u(0.18, 0.3)  # tail-cap radius fraction
    s_nose = 1.0 - 2.0 * nose_len / L  # template z where the nose starts
    s_tail = -1.0 + 2.0 * tail_len / L

    def fuselage(t: np.ndarray) -> np.ndarray:
        s = t[:, 2]
        a = np.clip((s - s_nose) / (1.0 - s_nose), 0.0, 1.0)
        f_nose = np.sqrt(np.maximum(1.0 - a * a, 0.0)) * 0.9 + 0.1
        b = smoothstep((s_tail - s) / (s_tail + 1.0))
        f = f_nose * (1.0 - (1.0 - tail_r) * b)
        rise = R * (1.0 - f) * b * 0.9  # tail cone: bottom sweeps up, top stays level
        # Template (x, y, z) -> world (z, y, -x): a proper rotation (det +1).
        x = s * L / 2.0
        y = t[:, 1] * R * f
        z = -t[:, 0] * R * f + rise
        return np.stack([x, y, z], axis=1)

    parts = [PartSpec("fuselage", "cylinder", fuselage, (2 * R, 2 * R, L))]
    # Wings: low-mounted, root inside the fuselage.
    span, chord = u(13.0, 20.0), u(5.0, 8.0)
    taper, sweep, dihedral = u(0.25, 0.4), span * u(0.35, 0.6), span * u(0.04, 0.09)
    x_wing, z_wing = u(-0.05, 0.08) * L, -R * 0.55
    thick = chord * u(0.1, 0.14)
    wing = _planform(x_wing, z_wing, span, chord, taper, sweep, dihedral, thick)
    # Engines under the wings at 30-40 % span, intake ahead of the leading edge.
    v_e = u(0.3, 0.4)
    el, er = u(3.5, 5.0), u(0.8, 1.2)
    c_e = chord * (1.0 - (1.0 - taper) * v_e)
    x_le = x_wing - sweep * v_e + c_e / 2.0
    z_under = z_wing + dihedral * v_e - thick * (1.0 - 0.5 * v_e) / 2.0
    e_centre = (x_le + el * u(0.05, 0.25), v_e * span, z_under - er * 0.7)
    engine = affine(e_centre, (er, er, el / 2.0), X_AXIS_FORWARD)
    # Tail planes near the end of the fuselage, on the upswept cone.
    h_span, h_chord = span * u(0.3, 0.4), chord * u(0.5, 0.7)
    x_tail = -L / 2.0 + h_chord * u(0.6, 0.9)
    stab = _planform(x_tail, R * 0.6, h_span, h_chord, u(0.35, 0.55), h_span * u(0.4, 0.7),
                     h_span * u(0.0, 0.1), h_chord * 0.1)
    parts += [
        PartSpec("wing_left", "box", wing, (chord, span, thick)),
        PartSpec("wing_right", "box", wing, (chord, span, thick), mirror=True),
        PartSpec("engine_left", "cylinder", engine, (2 * er, 2 * er, el)),
        PartSpec("engine_right", "cylinder", engine, (2 * er, 2 * er, el), mirror=True),
        PartSpec("stabilizer_left", "box", stab, (h_chord, h_span, h_chord * 0.1)),
        PartSpec("stabilizer_right", "box", stab, (h_chord, h_span, h_chord * 0.1), mirror=True),
    ]
    # Fin: swept back with height; template x = chord, y = thickness, z = height.
    f_h, f_chord = u(5.0, 8.0), chord * u(0.7, 0.95)
    f_sweep, f_taper = f_h * u(0.6, 1.0), u(0.35, 0.55)
    f_x, f_thick = -L / 2.0 + f_chord * 0.55, f_chord * 0.1
    f_z = R * 0.6  # root inside the upswept tail cone

    def fin(t: np.ndarray) -> np.ndarray:
        h = (t[:, 2] + 1.0) / 2.0
        c = f_chord * (1.0 - (1.0 - f_taper) * h)
        x = f_x - f_sweep * h + t[:, 0] * c / 2.0
        y = t[:, 1] * f_thick * (1.0 - 0.5 * h) / 2.0
        z = f_z + h * (f_h + R * 0.4)
        return np.stack([x, y, z], axis=1)

    parts.append(PartSpec("fin", "box", fin, (f_chord, f_thick, f_h)))
    return parts

"""Procedural appearance: per-material surface patterns and random backgrounds.

Every part has a ``part_material`` (``"wheel"``, ``"body"``, ...). Its look is
a :class:`MaterialLook` — two colours and a pattern evaluated on the part's
*template coordinates* — built in two layers:

* **category layer**: the colour family and pattern kind of a material are
  fixed per ``(category, material)`` (seeded by a CRC of the names, so they do
  not depend on the dataset seed): all cars have dark ringed wheels;
* **instance layer**: each instance jitters hue, brightness, pattern
  frequency and phase from its own generator.

The colour of a surface point depends only on its material and template
coordinates, never on the part itself, so mirror and repeated parts (left and
right wheel, the four legs) look alike: 2D appearance knows "wheel" but not
"which wheel".

Backgrounds are smooth value noise, linear gradients or soft stripes, with
random colours, plus fine noise.
"""

from __future__ import annotations

import colorsys
import zlib
from dataclasses import dataclass

import numpy as np

__all__ = ["MaterialLook", "PATTERNS", "material_look", "instance_looks", "shade_material",
           "random_background"]

PATTERNS = ("solid", "stripes", "checker", "rings", "gradient")
"""Pattern kinds, evaluated on template coordinates in ``[-1, 1]^3``."""

# Name hints for the colour family: (substring, hue, saturation, value, pattern).
_HINTS: tuple[tuple[str, float, float, float, str], ...] = (
    ("wheel", 0.0, 0.0, 0.15, "rings"),
    ("tire", 0.0, 0.0, 0.15, "rings"),
    ("tyre", 0.0, 0.0, 0.15, "rings"),
    ("window", 0.58, 0.35, 0.3, "gradient"),
    ("glass", 0.58, 0.35, 0.3, "gradient"),
    ("windscreen", 0.58, 0.35, 0.3, "gradient"),
    ("taillight", 0.0, 0.8, 0.75, "solid"),
    ("light", 0.14, 0.25, 0.95, "solid"),
    ("lamp", 0.14, 0.25, 0.95, "solid"),
    ("eye", 0.0, 0.0, 0.08, "solid"),
    ("engine", 0.0, 0.0, 0.55, "rings"),
)


@dataclass(frozen=True)
class MaterialLook:
    """How one material looks on one instance.

    Attributes:
        base: ``(3,)`` RGB in ``[0, 1]``, the main colour.
        accent: ``(3,)`` RGB in ``[0, 1]``, the pattern colour.
        pattern: one of :data:`PATTERNS`.
        axis: template axis (0, 1, 2) the pattern runs along.
        frequency: pattern cycles per template unit.
        phase: pattern phase in radians.
        roughness: amplitude of the fine per-pixel albedo noise.
    """

    base: tuple[float, float, float]
    accent: tuple[float, float, float]
    pattern: str
    axis: int
    frequency: float
    phase: float
    roughness: float


def _category_params(category: str, material: str) -> dict:
    """Material parameters fixed per category (independent of any seed)."""
    rng = np.random.default_rng(zlib.crc32(f"{category}/{material}".encode()))
    hue, sat, val = rng.random(), rng.uniform(0.35, 0.85), rng.uniform(0.45, 0.9)
    pattern = PATTERNS[int(rng.integers(len(PATTERNS)))]
    for key, h, s, v, pat in _HINTS:
        if key in material.lower():
            hue, sat, val, pattern = h, s, v, pat
            break
    return {
        "hue": float(hue), "sat": float(sat), "val": float(val), "pattern": pattern,
        "axis": int(rng.integers(3)), "frequency": float(rng.uniform(1.0, 3.0)),
        "accent_shift": float(rng.uniform(-0.35, 0.35)),
    }


def material_look(category: str, material: str, rng: np.random.Generator) -> MaterialLook:
    """The look of ``material`` on one instance of ``category``.

    Args:
        category: category name.
        material: material name (``SynthShape.part_material`` entry).
        rng: the instance's generator (consumed: 5 draws).
    """
    p = _category_params(category, material)
    hue = (p["hue"] + rng.uniform(-0.06, 0.06)) % 1.0
    sat = float(np.clip(p["sat"] + rng.uniform(-0.15, 0.15), 0.0, 1.0))
    val = float(np.clip(p["val"] + rng.uniform(-0.15, 0.15), 0.05, 1.0))
    base = colorsys.hsv_to_rgb(hue, sat, val)
    accent_val = float(np.clip(val + p["accent_shift"] + (0.3 if val < 0.3 else 0.0), 0.0, 1.0))
    accent = colorsys.hsv_to_rgb((hue + 0.05) % 1.0, sat * 0.7, accent_val)
    return MaterialLook(
        base=tuple(float(c) for c in base), accent=tuple(float(c) for c in accent),
        pattern=p["pattern"], axis=p["axis"],
        frequency=float(p["frequency"] * rng.uniform(0.8, 1.25)),
        phase=float(rng.uniform(0.0, 2 * np.pi)), roughness=0.04,
    )


def instance_looks(category: str, materials: tuple[str, ...] | list[str],
                   rng: np.random.Generator) -> dict[str, MaterialLook]:
    """Looks for every distinct material of an instance, in sorted name order.

    Args:
        category: category name.
        materials: material names (duplicates allowed, e.g. ``part_material``).
        rng: the instance's generator.
    """
    return {m: material_look(category, m, rng) for m in sorted(set(materials))}


def shade_material(look: MaterialLook, template: np.ndarray) -> np.ndarray:
    """Albedo of surface points from their template coordinates.

    Args:
        look: the material's look.
        template: ``(N, 3)`` template coordinates in ``[-1, 1]``.

    Returns:
        ``(N, 3)`` float32 RGB albedo in ``[0, 1]``.
    """
    t = np.asarray(template, dtype=np.float32).reshape(-1, 3)
    a = look.axis
    f, ph = look.frequency, look.phase
    if look.pattern == "solid":
        w = np.zeros(len(t), dtype=np.float32)
    elif look.pattern == "stripes":
        w = 0.5 + 0.5 * np.tanh(4.0 * np.sin(2 * np.pi * f * t[:, a] + ph))
    elif look.pattern == "checker":
        s = (np.sin(np.pi * f * t[:, a] + ph) * np.sin(np.pi * f * t[:, (a + 1) % 3] + ph)
             * np.sin(np.pi * f * t[:, (a + 2) % 3] + ph))
        w = 0.5 + 0.5 * np.tanh(8.0 * s)
    elif look.pattern == "rings":
        r = np.sqrt(t[:, (a + 1) % 3] ** 2 + t[:, (a + 2) % 3] ** 2)
        w = (r < 0.55).astype(np.float32) * (0.6 + 0.4 * np.cos(2 * np.pi * f * r + ph))
    elif look.pattern == "gradient":
        w = np.clip((t[:, a] + 1) / 2, 0.0, 1.0)
    else:
        raise ValueError(f"MaterialLook.pattern must be one of {PATTERNS}, got {look.pattern!r}")
    base = np.asarray(look.base, dtype=np.float32)
    accent = np.asarray(look.accent, dtype=np.float32)
    return (base[None] * (1 - w[:, None]) + accent[None] * w[:, None]).astype(np.float32)


def _value_noise(height: int, width: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    import cv2

    grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)


def random_background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A random textured background.

    Args:
        height: H.
        width: W.
        rng: the image's generator.

    Returns:
        ``(H, W, 3)`` float32 RGB in ``[0, 1]``.
    """
    kind = int(rng.integers(3))
    c0 = np.asarray(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.6),
                                        rng.uniform(0.3, 0.95)), dtype=np.float32)
    c1 = np.asarray(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.6),
                                        rng.uniform(0.3, 0.95)), dtype=np.float32)
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == 0:
        w = _value_noise(height, width, int(rng.integers(3, 12)), rng)
    elif kind == 1:
        ang = rng.uniform(0, 2 * np.pi)
        proj = np.cos(ang) * u + np.sin(ang) * v
        w = (proj - proj.min()) / max(float(np.ptp(proj)), 1e-6)
    else:
        ang = rng.uniform(0, 2 * np.pi)
        period = rng.uniform(12.0, 60.0)
        proj = np.cos(ang) * u + np.sin(ang) * v
        w = 0.5 + 0.5 * np.sin(2 * np.pi * proj / period)
    w = np.clip(w, 0.0, 1.0)
    detail = _value_noise(height, width, int(rng.integers(20, 60)), rng) - 0.5
    img = c0[None, None] * (1 - w[..., None]) + c1[None, None] * w[..., None]
    img = img + 0.12 * detail[..., None]
    return np.clip(img, 0.0, 1.0).astype(np.float32)

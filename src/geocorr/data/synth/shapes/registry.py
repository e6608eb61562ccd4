"""The category table: names -> builder modules, and the public entry points.

Each category module exposes ``INFO`` (a :class:`CategoryInfo`), ``KEYPOINTS``
and ``build(rng) -> list[PartSpec]``. Instances are seeded from
``(seed, crc32(category), instance_id)`` so any instance can be generated on its
own, in any order, bit-identically.
"""

from __future__ import annotations

import importlib
import zlib
from types import ModuleType

import numpy as np

from geocorr.data.synth.instance import SynthShape
from geocorr.data.synth.shapes.assemble import (
    AssemblySettings,
    CategoryInfo,
    KeypointSpec,
    PartSpec,
    assemble,
)

__all__ = ["CATEGORIES", "category_info", "make_shape"]

# SPair-71k names where the category exists there.
_MODULES = {
    "car": "car",
    "bus": "bus",
    "chair": "chair",
    "dog": "dog",
    "aeroplane": "aeroplane",
    "table": "table",
}

CATEGORIES: tuple[str, ...] = tuple(_MODULES)


def _module(category: str) -> ModuleType:
    if category not in _MODULES:
        known = ", ".join(CATEGORIES)
        raise ValueError(f"unknown category {category!r}; known categories: {known}")
    return importlib.import_module(f"geocorr.data.synth.shapes.{_MODULES[category]}")


def category_info(category: str) -> CategoryInfo:
    """Public facts of a category: parts, materials, keypoints, groups, elongation hint.

    Raises:
        ValueError: unknown category (the message lists the known ones).
    """
    return _module(category).INFO


def category_keypoints(category: str) -> tuple[KeypointSpec, ...]:
    """The keypoints' template definitions (part + template coordinate), in id order."""
    return tuple(_module(category).KEYPOINTS)


def instance_rng(category: str, instance_id: int, seed: int) -> np.random.Generator:
    """The generator an instance's parameters are drawn from (independent per instance)."""
    return np.random.default_rng([int(seed), zlib.crc32(category.encode()), int(instance_id)])


def build_parts(category: str, instance_id: int, seed: int) -> list[PartSpec]:
    """The placed parts of an instance before the union (for inspection and tests)."""
    return _module(category).build(instance_rng(category, instance_id, seed))


def make_shape(
    category: str, instance_id: int, seed: int, settings: AssemblySettings | None = None
) -> SynthShape:
    """Generate one instance of a category, deterministically.

    Args:
        category: one of :data:`CATEGORIES`.
        instance_id: non-negative instance index; different ids give different shapes.
        seed: non-negative benchmark seed.
        settings: meshing density (defaults give 3k-10k vertices).

    Returns:
        The watertight, connected instance with dense part/template labels and
        keypoints. Same arguments give bit-identical arrays.

    Raises:
        ValueError: unknown category or negative ids.
    """
    mod = _module(category)
    if instance_id < 0 or seed < 0:
        raise ValueError(
            f"make_shape: instance_id and seed must be >= 0, got {instance_id}, {seed}"
        )
    parts = mod.build(instance_rng(category, instance_id, seed))
    return assemble(mod.INFO, instance_id, parts, mod.KEYPOINTS, settings)

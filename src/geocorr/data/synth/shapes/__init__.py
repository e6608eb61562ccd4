"""Parametric 3D categories of the procedural benchmark.

``make_shape(category, instance_id, seed)`` builds one watertight, connected
instance (a :class:`~geocorr.data.synth.instance.SynthShape`) from evenly meshed
primitives merged by a manifold3d union, with per-vertex part ids, part-local
template coordinates and SPair-style keypoints and groups.
``category_info(category)`` gives the public per-category facts.
"""

from geocorr.data.synth.shapes.assemble import AssemblySettings, CategoryInfo
from geocorr.data.synth.shapes.registry import CATEGORIES, category_info, make_shape

__all__ = ["CATEGORIES", "AssemblySettings", "CategoryInfo", "category_info", "make_shape"]

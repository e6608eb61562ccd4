"""Assemble placed primitives into one watertight mesh with dense part labels.

A category builder describes an instance as a list of :class:`PartSpec`
(a unit primitive plus a smooth map from template coordinates to the canonical
object frame) and the category's keypoints as :class:`KeypointSpec`
(part + template coordinate). :func:`assemble` meshes every part evenly, merges
them with one manifold3d boolean union (then subtracts any cutting parts), and
carries labels through the boolean as vertex *properties*: each input vertex
holds ``(x, y, z, tx, ty, tz, part)``. manifold3d interpolates properties inside
the triangle each output vertex came from, so every output triangle keeps its
part id exactly and new seam vertices get the template coordinates of the part
on their side of the seam, in O(F) with no nearest-primitive search.
The per-corner values are kept as ``SynthShape.face_template`` ``(F, 3, 3)``,
exact on both sides of every seam. The union's seam slivers are then removed
(``cleanup.py``: constrained edge collapses and same-part flips), and the
instance is recentred on its bounding box.

Seam rule: a vertex where parts meet takes the part with the **lowest part
index** among its faces (categories list their main body first) and its corner
template coordinates in that part. Faces always keep their own part; use
``face_template`` for exact dense ground truth next to seams.

Keypoints: each :class:`KeypointSpec` template point is placed with its part's
placement and snapped to the nearest vertex labelled with that part.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from geocorr.data.synth.instance import SynthShape
from geocorr.data.synth.shapes.cleanup import collapse_short_edges, flip_edges, vertex_labels
from geocorr.data.synth.shapes.primitives import PrimitiveKind, grid_counts, unit_primitive

__all__ = [
    "AssemblySettings",
    "CategoryInfo",
    "KeypointSpec",
    "PartSpec",
    "assemble",
    "make_info",
]

Placement = Callable[[np.ndarray], np.ndarray]

# Fraction of a part's box-estimated area that its unit shape actually has.
_AREA_FACTOR = {"box": 1.0, "cylinder": 0.8, "ellipsoid": 0.55}


@dataclass(frozen=True)
class AssemblySettings:
    """How densely instances are meshed.

    Attributes:
        target_vertices: vertex budget of the primitives before the union, which
            sets the grid edge length. Hidden (swallowed) surface is removed by
            the union, so results land below it; 6000 gives 3k-10k vertices for
            every built-in category.
        min_cells: fewest grid cells along any axis of a curved primitive, so
            small parts (eyes, mirrors) stay recognisably round.
        collapse_below: after the union, edges shorter than this times the grid
            edge are collapsed (seam slivers; see ``cleanup.py``); 0 disables.
            0.35 removes most needles while moving seams and creases by at most
            a third of an edge.
        jitter: each primitive's vertices are displaced by up to this times the
            grid edge (deterministically), so flat grids are not exactly flat;
            manifold3d otherwise merges collinear/coplanar vertices near seams
            into edges many times the grid size.
    """

    target_vertices: int = 6000
    min_cells: int = 3
    collapse_below: float = 0.35
    jitter: float = 1e-3

    def __post_init__(self) -> None:
        if self.target_vertices < 100:
            raise ValueError(f"AssemblySettings.target_vertices must be >= 100, got "
                             f"{self.target_vertices}")
        if self.min_cells < 2:
            raise ValueError(f"AssemblySettings.min_cells must be >= 2, got {self.min_cells}")
        if not 0.0 <= self.collapse_below < 0.5:
            raise ValueError(f"AssemblySettings.collapse_below must be in [0, 0.5), got "
                             f"{self.collapse_below}")
        if not 0.0 <= self.jitter <= 0.01:
            raise ValueError(f"AssemblySettings.jitter must be in [0, 0.01], got {self.jitter}")


@dataclass(frozen=True, eq=False)
class PartSpec:
    """One primitive of an instance, placed in the canonical frame.

    Attributes:
        name: part name, one of the category's ``part_names``.
        kind: unit primitive (``"box"``, ``"cylinder"`` along Z, ``"ellipsoid"``).
        place: maps template coordinates ``(N, 3)`` in ``[-1, 1]^3`` to canonical
            positions ``(N, 3)``; must be smooth and orientation-preserving.
        extent: ``(3,)`` approximate world size along template X, Y, Z (used for
            grid resolution only).
        mirror: reflect the placed part across the XZ plane (``y -> -y``). Right
            parts are their left counterparts with ``mirror=True``, so both share
            template coordinates: the outer side is the outer side on both.
        subtract: cut this part out of the union instead of adding it (insets);
            the cut's walls belong to this part.
    """

    name: str
    kind: PrimitiveKind
    place: Placement
    extent: tuple[float, float, float]
    mirror: bool = False
    subtract: bool = False

    def world(self, template: np.ndarray) -> np.ndarray:
        """Canonical positions ``(N, 3)`` of template points ``(N, 3)``."""
        p = np.asarray(self.place(np.asarray(template, dtype=np.float64)), dtype=np.float64)
        if self.mirror:
            p = p * np.array([1.0, -1.0, 1.0])
        return p


@dataclass(frozen=True)
class KeypointSpec:
    """A semantic keypoint defined on the category template.

    Attributes:
        name: keypoint name, e.g. ``"wheel_front_left"``.
        part: name of the part it lies on.
        template: ``(3,)`` template coordinate on that part (on its surface).
    """

    name: str
    part: str
    template: tuple[float, float, float]


@dataclass(frozen=True)
class CategoryInfo:
    """Public, per-category facts (what SPair publishes for its categories).

    Attributes:
        name: category name.
        part_names: ``(P,)`` part names; part ids index this tuple.
        part_material: ``(P,)`` appearance class per part (alike parts share it).
        keypoint_names: ``(K,)`` keypoint names; keypoint ids index this tuple.
        keypoint_groups: groups of keypoint ids on alike parts (left/right,
            repeated), SPair's geometry-aware groups.
        elongated: hint for the SAM3D simulator: the silhouette is ambiguous
            under a 90 or 180 degree yaw, so canonicalisation fails more often.
        optional_parts: parts that some instances lack (they then have no faces).
        keypoint_parts: ``(K,)`` part name each keypoint lies on.
    """

    name: str
    part_names: tuple[str, ...]
    part_material: tuple[str, ...]
    keypoint_names: tuple[str, ...]
    keypoint_groups: tuple[tuple[int, ...], ...]
    elongated: bool
    optional_parts: tuple[str, ...] = ()
    keypoint_parts: tuple[str, ...] = field(default=())


def make_info(
    name: str,
    parts: Sequence[tuple[str, str]],
    keypoints: Sequence[KeypointSpec],
    groups: Sequence[Sequence[str]],
    elongated: bool,
    optional_parts: Sequence[str] = (),
) -> CategoryInfo:
    """Build and validate a :class:`CategoryInfo` from names (used by category modules)."""
    part_names = tuple(p for p, _ in parts)
    kp_names = tuple(k.name for k in keypoints)
    if len(set(part_names)) != len(part_names) or len(set(kp_names)) != len(kp_names):
        raise ValueError(f"{name}: duplicate part or keypoint names")
    for k in keypoints:
        if k.part not in part_names:
            raise ValueError(f"{name}: keypoint {k.name!r} on unknown part {k.part!r}")
    index = {k: i for i, k in enumerate(kp_names)}
    return CategoryInfo(
        name=name,
        part_names=part_names,
        part_material=tuple(m for _, m in parts),
        keypoint_names=kp_names,
        keypoint_groups=tuple(tuple(index[g] for g in grp) for grp in groups),
        elongated=elongated,
        optional_parts=tuple(optional_parts),
        keypoint_parts=tuple(k.part for k in keypoints),
    )


def _manifold():
    try:
        import manifold3d
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise ImportError("geocorr synth shapes need manifold3d: pip install manifold3d") from exc
    return manifold3d


def _box_area(extent: Sequence[float]) -> float:
    a, b, c = extent
    return 2.0 * (a * b + b * c + c * a)


def _min_cells(kind: str, settings: AssemblySettings) -> int:
    return 1 if kind == "box" else max(2, settings.min_cells)


def _edge_for_budget(parts: Sequence[PartSpec], settings: AssemblySettings) -> float:
    """Grid edge length whose primitives total about ``settings.target_vertices`` vertices.

    Starts from the summed (box-estimated) part areas, then rescales a few
    times using the exact grid vertex counts, which the per-axis minimum cell
    counts of small parts push above the area estimate.
    """
    area = sum(_box_area(s.extent) * _AREA_FACTOR[s.kind] for s in parts if not s.subtract)
    edge = float(np.sqrt(area / settings.target_vertices))
    for _ in range(4):
        total = 0
        for s in parts:
            if s.subtract:
                continue
            extent = np.asarray(s.extent, dtype=np.float64)
            nx, ny, nz = grid_counts(extent, edge, _min_cells(s.kind, settings))
            total += 2 * (nx * ny + ny * nz + nz * nx) + 2
        edge *= float(np.sqrt(total / settings.target_vertices))
    return edge


def _part_manifold(spec: PartSpec, part_id: int, edge: float, settings: AssemblySettings):
    m3d = _manifold()
    extent = np.asarray(spec.extent, dtype=np.float64)
    counts = grid_counts(extent, edge, _min_cells(spec.kind, settings))
    prim = unit_primitive(spec.kind, counts, extent)
    pos = spec.world(prim.template)
    # A tiny deterministic jitter keeps flat grids from being exactly flat: manifold3d
    # otherwise collapses "unnecessary" collinear/coplanar vertices near the seams,
    # leaving edges many times the grid size.
    jitter = np.random.default_rng(part_id).uniform(-1.0, 1.0, pos.shape)
    pos = pos + settings.jitter * edge * jitter
    faces = prim.faces[:, ::-1] if spec.mirror else prim.faces
    props = np.concatenate(
        [pos, prim.template, np.full((len(pos), 1), float(part_id))], axis=1
    )
    mesh = m3d.Mesh64(
        vert_properties=np.ascontiguousarray(props, dtype=np.float64),
        tri_verts=np.ascontiguousarray(faces, dtype=np.uint64),
    )
    man = m3d.Manifold(mesh)
    if man.is_empty():
        raise ValueError(
            f"part {spec.name!r}: placed primitive is not a valid closed manifold "
            f"({man.status()}); check its placement is orientation-preserving"
        )
    return man


def _components(num_vertices: int, faces: np.ndarray) -> int:
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    g = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(num_vertices, num_vertices))
    n, _ = connected_components(g, directed=False)
    return int(n)


def assemble(
    info: CategoryInfo,
    instance_id: int,
    parts: Sequence[PartSpec],
    keypoints: Sequence[KeypointSpec],
    settings: AssemblySettings | None = None,
) -> SynthShape:
    """Union placed parts into one connected watertight mesh with dense labels.

    Args:
        info: the category's public facts (part order = part ids).
        instance_id: instance index, stored on the result.
        parts: placed primitives; every non-optional part name must appear.
        keypoints: the category's keypoints, in ``info.keypoint_names`` order.
        settings: meshing density.

    Returns:
        The instance, recentred so its bounding box is centred on the origin.

    Raises:
        ValueError: unknown part names, a missing part, an invalid primitive,
            or a union that is not a single connected component.
    """
    settings = settings or AssemblySettings()
    m3d = _manifold()
    ids = {n: i for i, n in enumerate(info.part_names)}
    for spec in parts:
        if spec.name not in ids:
            raise ValueError(f"{info.name}: part {spec.name!r} not in {info.part_names}")
    present = {s.name for s in parts if not s.subtract}
    missing = set(info.part_names) - present - set(info.optional_parts)
    missing -= {s.name for s in parts if s.subtract}
    if missing:
        raise ValueError(f"{info.name}: parts missing from the build: {sorted(missing)}")

    edge = _edge_for_budget(parts, settings)
    adds = [_part_manifold(s, ids[s.name], edge, settings) for s in parts if not s.subtract]
    subs = [_part_manifold(s, ids[s.name], edge, settings) for s in parts if s.subtract]
    # Per-part collapse limit: a fraction of the part's own (possibly finer) grid edge.
    part_edge = np.full(len(info.part_names), edge)
    for s in parts:
        extent = np.asarray(s.extent, dtype=np.float64)
        cells = np.asarray(grid_counts(extent, edge, _min_cells(s.kind, settings)))
        part_edge[ids[s.name]] = min(part_edge[ids[s.name]], float((extent / cells).max()))
    solid = m3d.Manifold.batch_boolean(adds, m3d.OpType.Add)
    if subs:
        solid = m3d.Manifold.batch_boolean([solid, *subs], m3d.OpType.Subtract)
    out = solid.to_mesh64()

    props = np.asarray(out.vert_properties, dtype=np.float64)
    tri = np.asarray(out.tri_verts, dtype=np.int64)
    root = np.arange(len(props))
    merge_from = np.asarray(out.merge_from_vert, dtype=np.int64)
    merge_to = np.asarray(out.merge_to_vert, dtype=np.int64)
    root[merge_from] = merge_to
    root = root[root]  # merge targets are roots already; this guards against chains
    used = np.zeros(len(props), dtype=bool)
    used[tri.ravel()] = True
    uniq, compact = np.unique(root[used], return_inverse=True)
    remap = np.full(len(props), -1, dtype=np.int64)
    remap[np.flatnonzero(used)] = compact
    faces = remap[tri]
    vertices = props[uniq, :3]
    prop_part = np.rint(props[:, 6]).astype(np.int64)
    face_part = prop_part[tri[:, 0]].astype(np.int32)
    face_template = np.clip(props[tri, 3:6], -1.0, 1.0)  # (F, 3, 3): each corner in its face's part
    if settings.collapse_below > 0:
        clean = collapse_short_edges(
            vertices, faces, face_part, face_template, settings.collapse_below * part_edge
        )
        vertices, faces = clean.vertices, clean.faces
        face_part, face_template = clean.face_part, clean.face_template
        faces, face_template, _ = flip_edges(vertices, faces, face_part, face_template)
    # Seam rule: each vertex takes the lowest part id among its faces.
    vertex_part, vertex_template = vertex_labels(len(vertices), faces, face_part, face_template)

    if _components(len(vertices), faces) != 1:
        raise ValueError(f"{info.name} instance {instance_id}: parts do not form one component")

    centre = 0.5 * (vertices.min(axis=0) + vertices.max(axis=0))
    vertices = vertices - centre

    by_name = {s.name: s for s in parts}
    kp_vertices = np.empty(len(keypoints), dtype=np.int64)
    for k, kp in enumerate(keypoints):
        spec = by_name.get(kp.part)
        on_part = np.flatnonzero(vertex_part == ids[kp.part])
        if spec is None or len(on_part) == 0:
            raise ValueError(f"{info.name}: keypoint {kp.name!r} has no vertices on {kp.part!r}")
        target = spec.world(np.asarray([kp.template], dtype=np.float64))[0] - centre
        d = np.linalg.norm(vertices[on_part] - target, axis=1)
        kp_vertices[k] = on_part[int(np.argmin(d))]

    return SynthShape(
        category=info.name,
        instance_id=int(instance_id),
        vertices=np.ascontiguousarray(vertices),
        faces=np.ascontiguousarray(faces, dtype=np.int64),
        part_names=info.part_names,
        part_material=info.part_material,
        face_part=face_part,
        vertex_part=vertex_part,
        vertex_template=np.ascontiguousarray(vertex_template),
        keypoint_names=info.keypoint_names,
        keypoint_vertices=kp_vertices,
        keypoint_groups=info.keypoint_groups,
        face_template=np.ascontiguousarray(face_template),
    )

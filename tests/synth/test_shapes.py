"""Tests of the parametric categories: mesh validity, labels, keypoints, mirrors."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import trimesh
from scipy.spatial import cKDTree

from geocorr.data.synth.shapes import (
    CATEGORIES,
    AssemblySettings,
    category_info,
    make_shape,
)
from geocorr.data.synth.shapes.cleanup import collapse_short_edges, flip_edges, vertex_labels
from geocorr.data.synth.shapes.primitives import grid_counts, unit_primitive
from geocorr.data.synth.shapes.registry import build_parts, category_keypoints

SEED = 7


@cache
def _shape(category: str, instance: int):
    return make_shape(category, instance, SEED)


def _mesh(shape) -> trimesh.Trimesh:
    return trimesh.Trimesh(shape.vertices, shape.faces, process=False)


# ----------------------------------------------------------------- primitives


@pytest.mark.parametrize(
    ("kind", "volume", "tol", "min_angle"),
    [
        ("box", 8.0, 1e-9, 44.9),
        # The disk mapping squeezes the four cap corners (worst angle ~9 degrees).
        ("cylinder", 2 * np.pi, 0.03, 8.0),
        ("ellipsoid", 4 / 3 * np.pi, 0.03, 20.0),
    ],
)
def test_unit_primitive_closed_outward_and_analytic_volume(kind, volume, tol, min_angle):
    prim = unit_primitive(kind, (24, 24, 24))
    mesh = trimesh.Trimesh(prim.template, prim.faces, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume > 0  # outward normals
    assert abs(mesh.volume - volume) / volume < tol
    assert np.abs(prim.template).max() <= 1.0 + 1e-12
    # Every triangle reasonably shaped: the grid gives no slivers.
    assert np.degrees(mesh.face_angles.min()) > min_angle


def test_unit_primitive_lands_on_its_analytic_surface():
    cyl = unit_primitive("cylinder", (8, 8, 4))
    t = cyl.template
    wall = np.abs(np.abs(t[:, 2]) - 1.0) > 1e-9
    np.testing.assert_allclose(np.hypot(t[wall, 0], t[wall, 1]), 1.0, atol=1e-12)
    assert np.all(np.hypot(t[:, 0], t[:, 1]) <= 1.0 + 1e-12)
    sph = unit_primitive("ellipsoid", (5, 6, 7))
    np.testing.assert_allclose(np.linalg.norm(sph.template, axis=1), 1.0, atol=1e-12)
    # Vertex count of a (2, 3, 4) box grid: 2*(3*4+2*4+2*3) quads -> V = Q + 2.
    box = unit_primitive("box", (2, 3, 4))
    assert len(box.template) == 2 * (12 + 8 + 6) + 2
    assert len(box.faces) == 2 * 2 * (12 + 8 + 6)


def test_grid_counts_and_bad_input():
    assert grid_counts(np.array([1.0, 0.25, 0.05]), 0.1) == (10, 3, 2)
    with pytest.raises(ValueError, match="positive"):
        grid_counts(np.array([1.0, 0.0, 1.0]), 0.1)
    with pytest.raises(ValueError, match="unknown primitive"):
        unit_primitive("cone", (3, 3, 3))  # type: ignore[arg-type]


# ----------------------------------------------------------------- registry


def test_registry_has_required_categories():
    assert {"car", "bus", "chair", "dog", "aeroplane", "table"} <= set(CATEGORIES)
    assert all(isinstance(category_info(c).elongated, bool) for c in CATEGORIES)
    assert category_info("bus").elongated and not category_info("dog").elongated


def test_unknown_category_lists_known_ones():
    with pytest.raises(ValueError, match="car"):
        make_shape("spaceship", 0, 0)
    with pytest.raises(ValueError, match="known categories"):
        category_info("spaceship")
    with pytest.raises(ValueError, match="instance_id"):
        make_shape("car", -1, 0)


# ----------------------------------------------------------------- per category


@pytest.mark.parametrize("category", CATEGORIES)
def test_mesh_is_watertight_connected_and_sized(category):
    shape = _shape(category, 0)
    mesh = _mesh(shape)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume > 0
    labels = trimesh.graph.connected_component_labels(mesh.face_adjacency, len(mesh.faces))
    assert labels.max() == 0
    assert 3000 <= len(shape.vertices) <= 10000
    # Bounding box centred on the origin (the canonical frame's convention).
    np.testing.assert_allclose(shape.vertices.min(0) + shape.vertices.max(0), 0.0, atol=1e-9)
    # Edge-length spread: no edge many times the typical one (no long slivers).
    lengths = mesh.edges_unique_length
    assert lengths.max() < 4.0 * np.median(lengths)


@pytest.mark.parametrize("category", CATEGORIES)
def test_deterministic_and_varies(category):
    a = _shape(category, 0)
    b = make_shape(category, 0, SEED)
    for name in ("vertices", "faces", "face_part", "vertex_part", "vertex_template",
                 "keypoint_vertices"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    c = _shape(category, 1)
    ext_a = np.ptp(a.vertices, axis=0)
    ext_c = np.ptp(c.vertices, axis=0)
    assert np.abs(ext_a / ext_c - 1.0).max() > 0.02



def test_seed_changes_instances():
    a, d = _shape("chair", 0), make_shape("chair", 0, SEED + 1)
    assert not np.array_equal(np.ptp(d.vertices, axis=0), np.ptp(a.vertices, axis=0))


@pytest.mark.parametrize("category", CATEGORIES)
def test_labels_are_consistent(category):
    info = category_info(category)
    shape = _shape(category, 0)
    assert shape.part_names == info.part_names
    assert shape.part_material == info.part_material
    assert shape.keypoint_names == info.keypoint_names
    assert shape.keypoint_groups == info.keypoint_groups
    assert shape.face_part.dtype == np.int32 and shape.vertex_part.dtype == np.int32
    counts = np.bincount(shape.face_part, minlength=shape.num_parts)
    required = [i for i, n in enumerate(info.part_names) if n not in info.optional_parts]
    assert np.all(counts[required] > 0), [info.part_names[i] for i in required if counts[i] == 0]
    assert np.abs(shape.vertex_template).max() <= 1.0
    # Every vertex takes the part of one of its faces (seam rule: the lowest id).
    lowest = np.full(len(shape.vertices), np.iinfo(np.int32).max)
    np.minimum.at(lowest, shape.faces.ravel(), np.repeat(shape.face_part, 3))
    np.testing.assert_array_equal(shape.vertex_part, lowest)


@pytest.mark.parametrize("category", CATEGORIES)
def test_keypoints_and_groups(category):
    info = category_info(category)
    shape = _shape(category, 0)
    assert 10 <= len(shape.keypoint_names) <= 30
    parts = [info.part_names.index(p) for p in info.keypoint_parts]
    np.testing.assert_array_equal(shape.vertex_part[shape.keypoint_vertices], parts)
    assert len(set(shape.keypoint_vertices.tolist())) == len(shape.keypoint_vertices)
    seen: set[int] = set()
    for group in info.keypoint_groups:
        assert len(group) >= 2 and not seen & set(group)
        seen |= set(group)
        materials = {info.part_material[parts[k]] for k in group}
        assert len(materials) == 1  # a group is alike parts


def _mirror_pairs(names: tuple[str, ...]) -> list[tuple[int, int]]:
    out = []
    for i, n in enumerate(names):
        if "left" in n:
            right = n.replace("left", "right")
            if right in names:
                out.append((i, names.index(right)))
    return out


@pytest.mark.parametrize("category", CATEGORIES)
def test_mirror_parts_reflect_onto_each_other(category):
    shape = _shape(category, 0)
    diag = float(np.linalg.norm(np.ptp(shape.vertices, axis=0)))
    pairs = _mirror_pairs(shape.part_names)
    assert pairs or category not in {"car", "chair", "aeroplane", "dog"}
    for left, right in pairs:
        lv = shape.vertices[shape.vertex_part == left] * np.array([1.0, -1.0, 1.0])
        rv_idx = np.flatnonzero(shape.vertex_part == right)
        if len(lv) < 4 or len(rv_idx) < 4:
            continue
        dist, j = cKDTree(shape.vertices[rv_idx]).query(lv)
        name = shape.part_names[left]
        assert np.median(dist) < 0.01 * diag, name
        lt = shape.vertex_template[shape.vertex_part == left]
        rt = shape.vertex_template[rv_idx[j]]
        close = dist < 0.005 * diag
        assert close.mean() > 0.5, name
        err = np.linalg.norm(lt[close] - rt[close], axis=1)
        assert np.quantile(err, 0.9) < 0.1, name
        # The mirror part is the classic error: mirrored points sit on the other part.
        own = cKDTree(shape.vertices[shape.vertex_part == left]).query(lv)[0]
        assert np.median(own) > 0.05 * diag, name


@pytest.mark.parametrize("category", CATEGORIES)
def test_template_coordinates_reconstruct_the_surface(category):
    """Placing each face corner's template coordinate with its part's placement
    lands on the corner itself: the labels survived the boolean union exactly
    (up to the recentring offset, the 1e-3-edge jitter and linear interpolation
    of curved placements inside seam triangles). The only exceptions are seam
    corners moved by a sliver collapse onto a point outside the part's template
    box (clipped to [-1, 1]): rare, and off by less than the collapse length."""
    shape = _shape(category, 0)
    parts = build_parts(category, 0, SEED)
    ids = {n: i for i, n in enumerate(shape.part_names)}
    corners = shape.vertices[shape.faces]
    placed = np.zeros_like(corners)
    vplaced = np.zeros_like(shape.vertices)
    for spec in parts:
        f = shape.face_part == ids[spec.name]
        placed[f] = spec.world(shape.face_template[f].reshape(-1, 3)).reshape(-1, 3, 3)
        v = shape.vertex_part == ids[spec.name]
        vplaced[v] = spec.world(shape.vertex_template[v])
    offset = np.median((placed - corners).reshape(-1, 3), axis=0)
    edge = np.median(np.linalg.norm(corners[:, 0] - corners[:, 1], axis=1))
    err = np.linalg.norm(placed - corners - offset, axis=2)
    assert np.mean(err < 0.05 * edge) > 0.995
    assert err.max() < 0.5 * edge
    verr = np.linalg.norm(vplaced - shape.vertices - offset, axis=1)
    assert np.mean(verr < 0.05 * edge) > 0.995
    assert verr.max() < 0.5 * edge
    # Where a corner's vertex belongs to the face's own part, both records agree
    # (up to the same rare extrapolated collapse corners).
    same = shape.vertex_part[shape.faces] == shape.face_part[:, None]
    gap = np.abs(shape.face_template[same] - shape.vertex_template[shape.faces][same]).max(axis=1)
    assert np.mean(gap < 1e-6) > 0.995
    assert gap.max() < 0.25  # template units: on a 2 cm thin axis 0.25 is 2.5 mm
    assert np.abs(shape.face_template).max() <= 1.0


# ----------------------------------------------------------------- cleanup


def _box_with_short_edge():
    """A 4x4x4-cell unit-cube grid with one top-face vertex pushed next to a neighbour."""
    prim = unit_primitive("box", (4, 4, 4))
    v = prim.template.copy()
    # Interior top-face vertex (0, 0, 1) slides to within 0.04 of (0.5, 0, 1).
    i = int(np.flatnonzero(np.all(np.abs(v - [0.0, 0.0, 1.0]) < 1e-12, axis=1))[0])
    v[i] = [0.46, 0.0, 1.0]
    return v, prim.faces


def test_collapse_removes_the_short_edge_and_keeps_labels_exact():
    v, f = _box_with_short_edge()
    part = np.zeros(len(f), dtype=np.int32)
    part[v[f].mean(axis=1)[:, 2] > 0.99] = 1  # top face is another part
    template = v[f]  # template = position: an affine labelling we can check exactly
    out = collapse_short_edges(v, f, part, template, min_length=0.1)
    assert out.collapsed == 1
    assert len(out.vertices) == len(v) - 1 and len(out.faces) == len(f) - 2
    mesh = trimesh.Trimesh(out.vertices, out.faces, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume == pytest.approx(8.0)  # flat region: the shape is unchanged
    np.testing.assert_allclose(out.face_template, out.vertices[out.faces], atol=1e-12)
    lengths = mesh.edges_unique_length
    assert lengths.min() > 0.1
    # The top/side seam and the cube's creases are untouched.
    np.testing.assert_allclose(np.abs(out.vertices).max(axis=0), 1.0)
    assert np.sum(out.face_part == 1) == np.sum(part == 1) - 2


def test_collapse_keeps_creases_and_seams():
    prim = unit_primitive("box", (3, 3, 3))
    part = (prim.template[prim.faces].mean(axis=1)[:, 0] > 0.99).astype(np.int32)
    # Every edge is a candidate, but only flat-interior ends may move: a 3x3 grid
    # face has none that can reach a lower-rank neighbour without breaking topology.
    out = collapse_short_edges(prim.template, prim.faces, part, prim.template[prim.faces], 10.0)
    mesh = trimesh.Trimesh(out.vertices, out.faces, process=False)
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(8.0)
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
    assert cKDTree(out.vertices).query(corners)[0].max() < 1e-12


def test_flip_edges_fixes_caps_and_keeps_labels():
    prim = unit_primitive("box", (2, 2, 2))
    v = prim.template.copy()
    # Push the top face's centre vertex to (0.6, 0): triangle (0,-1),(1,0),(0.6,0) has a
    # smallest angle atan(1/0.6) - 45 = 14.036 deg at (0,-1); flipping its edge
    # (0,-1)-(1,0) gives (1,0),(0.6,0),(1,-1) and (0,-1),(1,-1),(0.6,0), whose smallest
    # angle is atan(0.4) = 21.801 deg at (1,-1).
    i = int(np.flatnonzero(np.all(np.abs(v - [0.0, 0.0, 1.0]) < 1e-12, axis=1))[0])
    v[i] = [0.6, 0.0, 1.0]
    part = np.zeros(len(prim.faces), dtype=np.int32)
    before = trimesh.Trimesh(v, prim.faces, process=False)
    faces, tmpl, flips = flip_edges(v, prim.faces, part, v[prim.faces])
    after = trimesh.Trimesh(v, faces, process=False)
    assert flips >= 1
    assert after.is_watertight and after.is_winding_consistent
    assert after.volume == pytest.approx(8.0)
    flipped = np.any(faces != prim.faces, axis=1)
    assert flipped.sum() == 2 * flips
    expect_before = np.degrees(np.arctan2(1.0, 0.6)) - 45.0
    expect_after = np.degrees(np.arctan(0.4))
    assert np.degrees(before.face_angles[flipped].min()) == pytest.approx(expect_before)
    assert np.degrees(after.face_angles[flipped].min()) == pytest.approx(expect_after)
    np.testing.assert_array_equal(tmpl, v[faces])  # template rides along with its corner
    # Flips never move a seam: put one face of the flipped pair in another part.
    part2 = np.zeros(len(prim.faces), dtype=np.int32)
    part2[np.flatnonzero(flipped)[0]] = 1

    def seam_edges(f):
        m = trimesh.Trimesh(v, f, process=False)
        cut = part2[m.face_adjacency[:, 0]] != part2[m.face_adjacency[:, 1]]
        return {tuple(e) for e in np.sort(m.face_adjacency_edges[cut], axis=1).tolist()}

    faces2, _, flips2 = flip_edges(v, prim.faces, part2, v[prim.faces])
    assert flips2 == 0
    assert seam_edges(faces2) == seam_edges(prim.faces)


def test_vertex_labels_take_the_lowest_part():
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    part = np.array([4, 2], dtype=np.int32)
    tmpl = np.arange(18, dtype=np.float64).reshape(2, 3, 3) / 20.0
    vp, vt = vertex_labels(4, faces, part, tmpl)
    np.testing.assert_array_equal(vp, [2, 4, 2, 2])
    np.testing.assert_allclose(vt[0], tmpl[1, 0])
    np.testing.assert_allclose(vt[1], tmpl[0, 1])
    np.testing.assert_allclose(vt[3], tmpl[1, 2])
    with pytest.raises(ValueError, match="no face"):
        vertex_labels(5, faces, part, tmpl)


@pytest.mark.parametrize("category", CATEGORIES)
def test_few_slivers(category):
    mesh = _mesh(_shape(category, 0))
    smallest = np.degrees(mesh.face_angles.min(axis=1))
    assert np.mean(smallest < 10.0) < 0.05


@pytest.mark.parametrize("category", CATEGORIES)
def test_keypoints_sit_where_the_template_puts_them(category):
    """Each keypoint's vertex is close to its template point placed on this instance
    (so it is on the exposed surface of its part, not swallowed by the union)."""
    shape = _shape(category, 0)
    parts = {p.name: p for p in build_parts(category, 0, SEED)}
    specs = {k.name: k for k in category_keypoints(category)}
    f = shape.face_part == 0
    placed = parts[shape.part_names[0]].world(shape.face_template[f].reshape(-1, 3))
    offset = np.median(placed - shape.vertices[shape.faces[f]].reshape(-1, 3), axis=0)
    diag = float(np.linalg.norm(np.ptp(shape.vertices, axis=0)))
    for name, v in zip(shape.keypoint_names, shape.keypoint_vertices, strict=True):
        kp = specs[name]
        target = parts[kp.part].world(np.asarray([kp.template]))[0] - offset
        assert np.linalg.norm(shape.vertices[v] - target) < 0.03 * diag, name


def test_settings_validation_and_density():
    with pytest.raises(ValueError, match="target_vertices"):
        AssemblySettings(target_vertices=10)
    with pytest.raises(ValueError, match="collapse_below"):
        AssemblySettings(collapse_below=0.7)
    coarse = make_shape("dog", 0, SEED, AssemblySettings(target_vertices=2000))
    assert len(coarse.vertices) < 0.6 * len(_shape("dog", 0).vertices)
    raw = make_shape("dog", 0, SEED, AssemblySettings(collapse_below=0.0))
    angles = np.degrees(_mesh(raw).face_angles.min(axis=1))
    cleaned = np.degrees(_mesh(_shape("dog", 0)).face_angles.min(axis=1))
    assert np.mean(cleaned < 10) < 0.6 * np.mean(angles < 10)  # the cleanup does something


def test_regression_two_flips_creating_one_edge():
    # This instance once had two flips in one round create the same edge (a
    # non-manifold edge shared by four faces); flips now track the edges they create.
    mesh = _mesh(make_shape("chair", 53, 102))
    assert mesh.is_watertight and mesh.is_winding_consistent

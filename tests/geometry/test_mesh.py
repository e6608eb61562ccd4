"""Tests for geocorr.geometry.mesh: loading, health checks, repairs."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from geocorr.geometry.mesh import (
    MeshError,
    bbox_diagonal,
    check_mesh,
    clean_mesh,
    face_areas,
    load_mesh,
)


def _tetra() -> trimesh.Trimesh:
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float)
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    return trimesh.Trimesh(v, f, process=False)


def test_bbox_diagonal_hand_values():
    assert bbox_diagonal(np.array([[0, 0, 0], [1, 1, 1.0]])) == pytest.approx(np.sqrt(3))
    assert bbox_diagonal(np.array([[1, 2, 3], [4, 6, 3.0], [2, 2, 3]])) == pytest.approx(5.0)
    assert bbox_diagonal(np.zeros((0, 3))) == 0.0


def test_face_areas_hand_values():
    assert face_areas(_tetra().vertices, _tetra().faces) == pytest.approx(
        [0.5, 0.5, 0.5, np.sqrt(3) / 2])


def test_load_ply_keeps_vertex_order(tmp_path):
    rng = np.random.default_rng(0)
    mesh = trimesh.creation.icosphere(1)
    perm = rng.permutation(len(mesh.vertices))
    inv = np.argsort(perm)
    shuffled = trimesh.Trimesh(mesh.vertices[perm], inv[mesh.faces], process=False)
    path = tmp_path / "m.ply"
    shuffled.export(path)
    loaded = load_mesh(path)
    np.testing.assert_allclose(loaded.vertices, shuffled.vertices, atol=1e-6)
    np.testing.assert_array_equal(loaded.faces, shuffled.faces)


def test_load_glb_scene_flattens_with_transforms(tmp_path):
    scene = trimesh.Scene()
    scene.add_geometry(trimesh.creation.box(extents=(1, 1, 1)), node_name="a",
                       transform=trimesh.transformations.translation_matrix([10, 0, 0]))
    scene.add_geometry(trimesh.creation.box(extents=(2, 2, 2)), node_name="b",
                       transform=trimesh.transformations.translation_matrix([0, -5, 0]))
    path = tmp_path / "scene.glb"
    scene.export(path)
    mesh = load_mesh(path)
    assert len(mesh.faces) == 24
    np.testing.assert_allclose(mesh.bounds, [[-1, -6, -1], [10.5, 0.5, 1]], atol=1e-6)
    assert check_mesh(mesh).n_components == 2


def test_load_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.ply"
    with pytest.raises(MeshError, match="nope.ply"):
        load_mesh(missing)
    corrupt = tmp_path / "corrupt.ply"
    corrupt.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 3\nend_header\n1 2\n")
    with pytest.raises(MeshError, match="corrupt.ply"):
        load_mesh(corrupt)
    garbage = tmp_path / "garbage.glb"
    garbage.write_bytes(b"\x00\x01not a gltf at all")
    with pytest.raises(MeshError, match="garbage.glb"):
        load_mesh(garbage)
    empty = tmp_path / "empty.obj"
    empty.write_text("")
    with pytest.raises(MeshError, match="empty.obj"):
        load_mesh(empty)
    points = tmp_path / "points.obj"
    points.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    with pytest.raises(MeshError, match="points.obj"):
        load_mesh(points)


def test_check_healthy_mesh():
    report = check_mesh(trimesh.creation.icosphere(2))
    assert report.n_components == 1
    assert report.is_watertight and report.is_edge_manifold
    assert report.n_degenerate_faces == report.n_duplicate_faces == 0
    assert report.n_unreferenced_vertices == 0
    assert report.bbox_diagonal == pytest.approx(np.sqrt(12), rel=1e-6)
    assert report.problems() == []


def test_check_counts_every_defect():
    t = _tetra()
    v = np.vstack([t.vertices, [[5, 5, 5], [0.5, 0, 0], [9, 9, 9], [9, 9, 8], [8, 9, 9]]])
    f = np.vstack([
        t.faces,
        [[1, 0, 2]],      # duplicate of face 0 with the other winding
        [[0, 1, 5]],      # zero area (collinear); also a third face on edge 0-1
        [[2, 2, 3]],      # repeated index
        [[6, 7, 8]],      # second component
    ])
    report = check_mesh(trimesh.Trimesh(v, f, process=False))
    assert report.n_vertices == 9 and report.n_faces == 8
    assert report.n_duplicate_faces == 1
    assert report.n_degenerate_faces == 2
    assert report.n_unreferenced_vertices == 1
    assert report.n_components == 2
    assert not report.is_edge_manifold
    assert not report.is_watertight
    text = " ".join(report.problems())
    for word in ("degenerate", "duplicate", "unreferenced", "non-manifold", "watertight",
                 "disconnected"):
        assert word in text


def test_open_mesh_is_manifold_but_not_watertight():
    t = _tetra()
    report = check_mesh(trimesh.Trimesh(t.vertices, t.faces[:3], process=False))
    assert report.is_edge_manifold and not report.is_watertight


def test_clean_merges_seams_and_drops_bad_faces():
    box = trimesh.creation.box()
    # split every face into its own three vertices (like an exported, unwelded mesh)
    soup_v = box.vertices[box.faces].reshape(-1, 3)
    soup_f = np.arange(len(soup_v)).reshape(-1, 3)
    extra_v = np.vstack([soup_v, [[7, 7, 7]], [[0.5, 0.5, 0.5]]])   # one unreferenced
    extra_f = np.vstack([soup_f, soup_f[:1], [[0, 0, 1]], [[0, 1, len(extra_v) - 1]]])
    extra_v[-1] = (extra_v[0] + extra_v[1]) / 2                      # makes last face zero-area
    before = check_mesh(trimesh.Trimesh(extra_v, extra_f, process=False))
    assert before.n_components > 1
    cleaned = clean_mesh(trimesh.Trimesh(extra_v, extra_f, process=False))
    report = check_mesh(cleaned)
    assert report.n_vertices == 8 and report.n_faces == 12
    assert report.is_watertight and report.problems() == []
    np.testing.assert_allclose(np.sort(cleaned.vertices, axis=0), np.sort(box.vertices, axis=0))


def test_clean_keep_largest_component():
    big = trimesh.creation.icosphere(1)
    small = _tetra()
    v = np.vstack([small.vertices + 10, big.vertices])
    f = np.vstack([small.faces, big.faces + len(small.vertices)])
    mesh = trimesh.Trimesh(v, f, process=False)
    assert len(clean_mesh(mesh).faces) == len(f)
    kept = clean_mesh(mesh, keep_largest_component=True)
    assert len(kept.faces) == len(big.faces) and len(kept.vertices) == len(big.vertices)
    np.testing.assert_allclose(kept.vertices, big.vertices)


def test_clean_raises_when_nothing_remains():
    v = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0.0]])
    with pytest.raises(MeshError, match="no faces remain"):
        clean_mesh(trimesh.Trimesh(v, [[0, 1, 2], [0, 0, 1]], process=False))


def test_bad_arrays_raise():
    with pytest.raises(MeshError, match="out of range"):
        check_mesh(trimesh.Trimesh(np.zeros((3, 3)), [[0, 1, 5]], process=False,
                                   validate=False))


def test_weld_map_groups_coincident_vertices():
    from geocorr.geometry.mesh import weld_map

    v = np.array([[0, 0, 0], [1, 0, 0], [0, 0, 0], [1, 0, 1e-13], [0, 1, 0.0]])
    np.testing.assert_array_equal(weld_map(v), [0, 1, 0, 1, 4])

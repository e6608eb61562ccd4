"""Remove the slivers a boolean union leaves along part seams.

Where an intersection curve passes close to a grid vertex, the union creates
very short edges and needle triangles (5-10 % of the faces of an instance).
:func:`collapse_short_edges` removes them by greedy, topology-safe edge
collapses that keep the labels exact:

* a vertex's *rank* is the number of distinct parts around it plus one if it
  lies on a geometric crease; a collapse always removes the lower-ranked end,
  so seams, creases and corners stay where they are; two ends of equal,
  non-zero rank are merged only along a seam or crease edge;
* the link condition (the ends share exactly the two opposite vertices) keeps
  the mesh a closed 2-manifold; no surviving face may flip or degenerate;
* each surviving face's template corner at the moved vertex becomes the kept
  vertex's corner in another face of the same part when there is one (exact),
  else it is extrapolated barycentrically within the face, so
  ``face_template`` stays in the face's own part;
* a per-part threshold keeps small parts (eyes, lamps) from being eaten.

Collapses are applied in rounds of independent sets (the 1-rings of a collapse
are locked for the rest of the round), shortest edges first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["CleanMesh", "collapse_short_edges", "flip_edges", "vertex_labels"]


@dataclass(frozen=True, eq=False)
class CleanMesh:
    """Mesh after sliver removal.

    Attributes:
        vertices: ``(V, 3)`` float64 positions (unused vertices removed).
        faces: ``(F, 3)`` int64 vertex indices.
        face_part: ``(F,)`` int32 part of each face.
        face_template: ``(F, 3, 3)`` template coordinates of each face corner in
            the face's own part.
        collapsed: number of edges collapsed.
    """

    vertices: np.ndarray
    faces: np.ndarray
    face_part: np.ndarray
    face_template: np.ndarray
    collapsed: int


def _face_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    p = vertices[faces]
    return np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])


def _ranks(vertices, faces, face_part, crease_cos: float) -> np.ndarray:
    """Per-vertex rank: distinct parts around it (0 if one) + 1 on a crease."""
    V = len(vertices)
    n = _face_normals(vertices, faces)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-300)
    flat_v = faces.ravel()
    flat_f = np.repeat(np.arange(len(faces)), 3)
    # Distinct parts per vertex.
    P = int(face_part.max()) + 1 if len(face_part) else 1
    pairs = np.unique(flat_v * P + face_part[flat_f])
    nparts = np.bincount(pairs // P, minlength=V)
    # Crease: some incident normal deviates from the mean normal by more than the limit.
    mean = np.zeros((V, 3))
    np.add.at(mean, flat_v, n[flat_f])
    mean /= np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-300)
    cos = np.einsum("ij,ij->i", n[flat_f], mean[flat_v])
    worst = np.ones(V)
    np.minimum.at(worst, flat_v, cos)
    return np.where(nparts > 1, nparts, 0) + (worst < crease_cos)


def _cross(p: list[list[float]]) -> tuple[float, float, float]:
    """Unnormalised normal of a triangle given as three points (pure Python: tiny inputs)."""
    (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = p
    ux, uy, uz, vx, vy, vz = x1 - x0, y1 - y0, z1 - z0, x2 - x0, y2 - y0, z2 - z0
    return (uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx)


def _dot(a, b) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _norm(a) -> float:
    return math.sqrt(_dot(a, a))


def _longest2(p: list[list[float]]) -> float:
    """Squared length of a triangle's longest edge."""
    best = 0.0
    for i in range(3):
        a, b = p[i], p[(i + 1) % 3]
        d = (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2
        best = max(best, d)
    return best


def _barycentric(p: list[float], tri: list[list[float]]) -> tuple[float, float, float]:
    """Barycentric coordinates of ``p`` projected onto the plane of triangle ``tri``."""
    a, b, c = tri
    v0 = (b[0] - a[0], b[1] - a[1], b[2] - a[2])
    v1 = (c[0] - a[0], c[1] - a[1], c[2] - a[2])
    v2 = (p[0] - a[0], p[1] - a[1], p[2] - a[2])
    d00, d01, d11 = _dot(v0, v0), _dot(v0, v1), _dot(v1, v1)
    d20, d21 = _dot(v2, v0), _dot(v2, v1)
    den = d00 * d11 - d01 * d01
    if den <= 0:
        return (1.0, 0.0, 0.0)
    w1 = (d11 * d20 - d01 * d21) / den
    w2 = (d00 * d21 - d01 * d20) / den
    return (1.0 - w1 - w2, w1, w2)


def collapse_short_edges(
    vertices: np.ndarray,
    faces: np.ndarray,
    face_part: np.ndarray,
    face_template: np.ndarray,
    min_length: float | np.ndarray,
    *,
    crease_deg: float = 25.0,
    max_normal_turn_deg: float = 35.0,
    min_angle_deg: float = 2.0,
    rounds: int = 2,
) -> CleanMesh:
    """Collapse edges shorter than ``min_length`` without touching seams' or creases' shape.

    Args:
        vertices: ``(V, 3)`` positions of a closed, consistently oriented mesh.
        faces: ``(F, 3)`` vertex indices.
        face_part: ``(F,)`` part id per face.
        face_template: ``(F, 3, 3)`` per-corner template coordinates.
        min_length: edges shorter than this are collapse candidates; a scalar, or
            ``(P,)`` per part id (an edge uses the smallest over its vertices' parts).
        crease_deg: a vertex whose incident normals deviate from their mean by
            more than this lies on a crease.
        max_normal_turn_deg: a surviving face may not turn its normal by more.
        min_angle_deg: a surviving face may not get a smaller angle than this
            (unless it already had one).
        rounds: rounds of independent collapses (a third round gains almost nothing:
            the remaining slivers are caps without a short edge).

    Returns:
        The cleaned mesh, with unused vertices dropped.
    """
    V = np.array(vertices, dtype=np.float64)
    Fc = np.array(faces, dtype=np.int64)
    part = np.array(face_part, dtype=np.int32)
    T = np.array(face_template, dtype=np.float64)
    alive = np.ones(len(Fc), dtype=bool)
    Vl = V.tolist()  # positions never change: collapses only re-index faces
    crease_cos = float(np.cos(np.radians(crease_deg)))
    turn_cos = float(np.cos(np.radians(max_normal_turn_deg)))
    sin_min = float(np.sin(np.radians(min_angle_deg)))
    total = 0
    for _ in range(rounds):
        live = np.flatnonzero(alive)
        F = Fc[live]
        e = np.concatenate([F[:, [0, 1]], F[:, [1, 2]], F[:, [2, 0]]])
        e = np.sort(e, axis=1)
        key = np.unique(e[:, 0] * len(V) + e[:, 1])
        e = np.stack([key // len(V), key % len(V)], axis=1)
        length = np.linalg.norm(V[e[:, 0]] - V[e[:, 1]], axis=1)
        if np.ndim(min_length) == 0:
            limit = float(min_length)
        else:
            per_part = np.asarray(min_length, dtype=np.float64)[part[live]]
            vlim = np.full(len(V), np.inf)
            np.minimum.at(vlim, F.ravel(), np.repeat(per_part, 3))
            limit = np.minimum(vlim[e[:, 0]], vlim[e[:, 1]])
        cand = np.flatnonzero(length < limit)
        if len(cand) == 0:
            break
        cand = cand[np.argsort(length[cand], kind="stable")]
        rank = _ranks(V, F, part[live], crease_cos).tolist()
        normals = _face_normals(V, F)
        Nl = normals.tolist()
        Fl = F.tolist()
        inc_l: list[list[int]] = [[] for _ in range(len(V))]
        for f, tri in enumerate(Fl):
            for v in tri:
                inc_l[v].append(f)
        fpart = part[live].tolist()
        locked = np.zeros(len(V), dtype=bool)
        done = 0
        for a, b in e[cand].tolist():
            if locked[a] or locked[b]:
                continue
            fa, fb = inc_l[a], inc_l[b]
            sfb = set(fb)
            shared = [f for f in fa if f in sfb]
            if len(shared) != 2:
                continue
            if rank[a] < rank[b]:
                a, b, fa, fb = b, a, fb, fa  # keep a, remove b
            elif rank[a] == rank[b] and rank[a] > 0:
                s0, s1 = shared
                n0, n1 = normals[s0], normals[s1]
                feature = fpart[s0] != fpart[s1] or (
                    n0 @ n1 < crease_cos * np.linalg.norm(n0) * np.linalg.norm(n1)
                )
                if not feature:
                    continue
            # Link condition: common neighbours = the two opposite vertices.
            na = {v for f in fa for v in Fl[f]}
            nb = {v for f in fb for v in Fl[f]}
            if len(na & nb) != 4:  # a, b and the two opposite vertices
                continue
            moved = [f for f in fb if f not in shared]
            if not moved:
                continue
            pa = Vl[a]
            updates = []
            for f in moved:
                tri = Fl[f]
                slot = tri.index(b)
                pts = [pa if v == b else Vl[v] for v in tri]
                n_new = _cross(pts)
                n_old = Nl[f]
                nn, no = _norm(n_new), _norm(n_old)
                if _dot(n_new, n_old) <= turn_cos * nn * no:
                    break
                # No new needle: 2 area / longest edge^2 bounds sin(smallest angle).
                q_new = nn / max(_longest2(pts), 1e-300)
                if q_new < sin_min and q_new < no / max(_longest2([Vl[v] for v in tri]), 1e-300):
                    break
                updates.append((f, slot))
            else:
                for f, slot in updates:
                    g = int(live[f])
                    # Exact when the kept vertex already touches this face's part.
                    same = [h for h in fa if fpart[h] == fpart[f] and h not in shared]
                    if same:
                        h = int(live[same[0]])
                        T[g, slot] = T[h, Fl[same[0]].index(a)]
                    else:
                        w = _barycentric(pa, [Vl[v] for v in Fl[f]])
                        tg = T[g].tolist()
                        T[g, slot] = [
                            min(1.0, max(-1.0, sum(w[i] * tg[i][k] for i in range(3))))
                            for k in range(3)
                        ]
                    Fc[g, slot] = a
                alive[live[shared]] = False
                locked[list(na | nb)] = True
                done += 1
        total += done
        if done == 0:
            break
    keep = np.flatnonzero(alive)
    Fc, part, T = Fc[keep], part[keep], T[keep]
    used = np.unique(Fc)
    remap = np.full(len(V), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return CleanMesh(
        vertices=V[used], faces=remap[Fc], face_part=part, face_template=T, collapsed=total
    )


def vertex_labels(
    num_vertices: int, faces: np.ndarray, face_part: np.ndarray, face_template: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex part and template by the seam rule (the lowest incident part id).

    Returns:
        ``(vertex_part (V,) int32, vertex_template (V, 3) float64)``; the template
        is the vertex's corner in one incident face of that part.
    """
    flat_v = faces.ravel()
    flat_p = np.repeat(face_part, 3)
    flat_t = face_template.reshape(-1, 3)
    order = np.lexsort((flat_p, flat_v))
    first = np.ones(len(order), dtype=bool)
    first[1:] = flat_v[order][1:] != flat_v[order][:-1]
    pick = order[first]
    if len(pick) != num_vertices:
        raise ValueError("vertex_labels: some vertices belong to no face")
    return flat_p[pick].astype(np.int32), np.clip(flat_t[pick], -1.0, 1.0)


def _min_angles(p: np.ndarray) -> np.ndarray:
    """Smallest interior angle (radians) of triangles ``(N, 3, 3)``."""
    e = [p[:, (i + 1) % 3] - p[:, i] for i in range(3)]
    out = np.full(len(p), np.pi)
    for i in range(3):
        u, w = -e[(i + 2) % 3], e[i]  # the two edges leaving corner i
        cos = np.einsum("ij,ij->i", u, w) / np.maximum(
            np.linalg.norm(u, axis=1) * np.linalg.norm(w, axis=1), 1e-300
        )
        out = np.minimum(out, np.arccos(np.clip(cos, -1.0, 1.0)))
    return out


def flip_edges(
    vertices: np.ndarray,
    faces: np.ndarray,
    face_part: np.ndarray,
    face_template: np.ndarray,
    *,
    max_dihedral_deg: float = 8.0,
    min_gain_deg: float = 1.0,
    bad_angle_deg: float = 20.0,
    rounds: int = 3,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Flip edges inside a part where that raises the smaller minimum angle of the pair.

    Only edges between two faces of the same part whose normals differ by less
    than ``max_dihedral_deg`` are flipped (the shape barely moves, seams never
    move), and only when the two new faces keep the old orientation (convex
    quad) and the new edge does not exist yet. Removes the "cap" slivers (an
    angle near 180 degrees) that edge collapses cannot reach.

    Args:
        vertices: ``(V, 3)`` positions.
        faces: ``(F, 3)`` closed, consistently oriented triangles.
        face_part: ``(F,)`` part per face.
        face_template: ``(F, 3, 3)`` per-corner template coordinates.
        max_dihedral_deg: largest normal angle between the two faces of a flip.
        min_gain_deg: least improvement of the pair's smallest angle.
        bad_angle_deg: only edges of a face with a smaller angle are considered.
        rounds: rounds of independent flips.

    Returns:
        ``(faces (F, 3), face_template (F, 3, 3), flips)``; same face count.
    """
    F = np.array(faces, dtype=np.int64)
    T = np.array(face_template, dtype=np.float64)
    part = np.asarray(face_part)
    V = np.asarray(vertices, dtype=np.float64)
    nV = len(V)
    cos_max = np.cos(np.radians(max_dihedral_deg))
    gain = np.radians(min_gain_deg)
    worst_angle = np.radians(bad_angle_deg)
    total = 0
    for _ in range(rounds):
        src, dst = F.ravel(), F[:, [1, 2, 0]].ravel()
        key = np.minimum(src, dst) * nV + np.maximum(src, dst)
        order = np.argsort(key, kind="stable")
        he1, he2 = order[0::2], order[1::2]  # closed manifold: each edge has two half-edges
        if not np.array_equal(key[he1], key[he2]):
            raise ValueError("flip_edges: the mesh is not a closed 2-manifold")
        f1, k1 = he1 // 3, he1 % 3
        f2, k2 = he2 // 3, he2 % 3
        a, b = F[f1, k1], F[f1, (k1 + 1) % 3]
        c, d = F[f1, (k1 + 2) % 3], F[f2, (k2 + 2) % 3]
        n = np.cross(V[F[:, 1]] - V[F[:, 0]], V[F[:, 2]] - V[F[:, 0]])
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-300)
        face_min = _min_angles(V[F])
        bad = face_min < worst_angle
        ok = (bad[f1] | bad[f2]) & (part[f1] == part[f2]) & (c != d)
        ok &= np.einsum("ij,ij->i", n[f1], n[f2]) > cos_max
        idx = np.flatnonzero(ok)
        if len(idx) == 0:
            break
        a, b, c, d, f1, f2, k1, k2 = (x[idx] for x in (a, b, c, d, f1, f2, k1, k2))
        old = np.minimum(face_min[f1], face_min[f2])
        g1, g2 = np.stack([a, d, c], 1), np.stack([b, c, d], 1)
        new = np.minimum(_min_angles(V[g1]), _min_angles(V[g2]))
        mean_n = n[f1] + n[f2]
        for g in (g1, g2):
            gn = np.cross(V[g[:, 1]] - V[g[:, 0]], V[g[:, 2]] - V[g[:, 0]])
            new = np.where(np.einsum("ij,ij->i", gn, mean_n) > 0, new, -1.0)
        good = np.flatnonzero(new > old + gain)
        existing = np.unique(key)
        cd = np.minimum(c, d) * nV + np.maximum(c, d)
        good = good[~np.isin(cd[good], existing)]
        good = good[np.argsort(-(new[good] - old[good]), kind="stable")]
        used = np.zeros(len(F), dtype=bool)
        created: set[int] = set()  # two flips in a round must not create the same edge
        done = 0
        for i in good.tolist():
            i1, i2 = f1[i], f2[i]
            if used[i1] or used[i2] or int(cd[i]) in created:
                continue
            used[i1] = used[i2] = True
            created.add(int(cd[i]))
            s1, s2 = k1[i], k2[i]
            ta, tb, tc = T[i1, [s1, (s1 + 1) % 3, (s1 + 2) % 3]]  # fancy index: copies
            td = T[i2, (s2 + 2) % 3].copy()
            F[i1], F[i2] = g1[i], g2[i]
            T[i1] = np.stack([ta, td, tc])
            T[i2] = np.stack([tb, tc, td])
            done += 1
        total += done
        if done == 0:
            break
    return F, T, total

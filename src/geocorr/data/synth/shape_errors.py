"""Shape errors of a simulated reconstruction, applied to the occupancy grid before meshing.

SAM 3D invents what it cannot see and smooths what is small. The simulator
(:func:`geocorr.data.synth.simulator.remesh`) voxelises the true mesh; this
module edits that occupancy grid, in the true canonical frame, so that
marching cubes meshes a plausible but wrong object (settings:
:class:`geocorr.data.synth.errors.ReconstructionErrors`):

1. every occupied voxel takes the part of its nearest true vertex;
2. each part is scaled about its attachment point (proportions off) and,
   for articulated parts (quadruped legs, head, tail), rotated about its
   joint; thin parts may be dropped; the object is scaled per axis. Each
   part is moved by gathering: a new voxel is occupied when the inverse
   transform of some part lands on an occupied voxel of that part (a union,
   so overlapping parts never cancel);
3. the side hidden from the camera -- behind the vertical plane through the
   object's centre facing the camera -- is replaced by the mirror image of
   the visible side, and/or displaced by a smooth random field;
4. a one-voxel closing fuses thin parts with their neighbours;
5. planes one voxel thick cut the object into disconnected components.

:func:`draw_shape_errors` draws the errors (the true values are kept for
scoring); :func:`apply_shape_errors` applies them to a grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geocorr.data.synth.errors import ReconstructionErrors
from geocorr.geometry.rotation import rotvec_matrix

__all__ = ["ShapeErrors", "draw_shape_errors", "apply_shape_errors", "articulated_groups"]

_HEAD_PARTS = ("head", "snout", "ear", "eye")


def articulated_groups(category: str, part_names: tuple[str, ...]) -> dict[str, list[int]]:
    """Parts that move together about a joint, for quadrupeds (``dog``): each leg, head, tail.

    Returns:
        ``{group name: [part ids]}``; empty for rigid categories.
    """
    if category != "dog":
        return {}
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(part_names):
        if name.startswith("leg") or name == "tail":
            groups[name] = [i]
        elif name.startswith(_HEAD_PARTS):
            groups.setdefault("head", []).append(i)
    return groups


@dataclass(frozen=True, eq=False)
class ShapeErrors:
    """The shape errors drawn for one reconstruction (true values, for scoring).

    Attributes:
        part_scale: ``(P,)`` scale of each part about its attachment point (1 = none).
        axis_scale: ``(3,)`` scale of the whole object along canonical X, Y, Z.
        articulation: ``{group: (3,) axis-angle in radians}`` about the group's joint.
        groups: ``{group: [part ids]}`` of ``articulation``.
        dropped: part ids removed.
        fused: whether a one-voxel closing was applied.
        hidden_mirror: whether the hidden side is the visible side's mirror.
        hidden_warp: amplitude of the hidden side's displacement (fraction of the diagonal).
        warp_modes: ``(M, 7)`` the displacement's modes: wave vector (3, per
            diagonal), phase, direction (3).
        view_normal: ``(3,)`` horizontal unit vector from the object's centre
            towards the camera (the hidden side is behind it).
        centre: ``(3,)`` the object's bounding-box centre (canonical frame).
        diagonal: the object's bounding-box diagonal.
        cuts: ``(C, 4)`` cutting planes ``n . x = d`` (unit ``n``), one voxel thick.
    """

    part_scale: np.ndarray
    axis_scale: np.ndarray
    articulation: dict[str, np.ndarray]
    groups: dict[str, list[int]]
    dropped: tuple[int, ...]
    fused: bool
    hidden_mirror: bool
    hidden_warp: float
    warp_modes: np.ndarray
    view_normal: np.ndarray
    centre: np.ndarray
    diagonal: float
    cuts: np.ndarray

    def record(self, part_names: tuple[str, ...]) -> dict:
        """JSON-ready summary of the true values."""
        return {
            "part_scale": {part_names[i]: float(s) for i, s in enumerate(self.part_scale)},
            "axis_scale": [float(x) for x in self.axis_scale],
            "articulation_deg": {g: [float(x) for x in np.degrees(r)]
                                 for g, r in self.articulation.items()},
            "dropped_parts": [part_names[i] for i in self.dropped],
            "fused": bool(self.fused),
            "hidden_mirror": bool(self.hidden_mirror),
            "hidden_warp": float(self.hidden_warp),
            "view_normal": [float(x) for x in self.view_normal],
            "cuts": len(self.cuts),
        }


def draw_shape_errors(category: str, vertices: np.ndarray, vertex_part: np.ndarray,
                      part_names: tuple[str, ...], camera_centre: np.ndarray,
                      errors: ReconstructionErrors, rng: np.random.Generator) -> ShapeErrors:
    """Draw one reconstruction's shape errors.

    Args:
        category: category name (articulated parts exist for ``dog``).
        vertices: ``(V, 3)`` true mesh, canonical frame.
        vertex_part: ``(V,)`` part of each vertex.
        part_names: ``(P,)`` names.
        camera_centre: ``(3,)`` the true camera's centre in the canonical frame.
        errors: magnitudes.
        rng: the image's error generator.
    """
    v = np.asarray(vertices, np.float64)
    vp = np.asarray(vertex_part, np.int64)
    lo, hi = v.min(0), v.max(0)
    centre, diag = (lo + hi) / 2, float(np.linalg.norm(hi - lo))
    P = len(part_names)
    counts = np.bincount(vp, minlength=P)
    root = int(np.argmax(counts))
    part_scale = np.exp(rng.normal(0.0, errors.part_scale_sigma, P))
    part_scale[root] = 1.0
    axis_scale = np.exp(rng.normal(0.0, errors.axis_scale_sigma, 3))
    groups = articulated_groups(category, part_names)
    articulation = {}
    for g in groups:
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis) or 1.0
        articulation[g] = axis * math.radians(rng.normal(0.0, errors.articulation_sigma_deg))
    thin = []
    for p in range(P):
        if counts[p] == 0 or p == root:
            continue
        ext = np.sort(np.ptp(v[vp == p], axis=0))
        if ext[1] < errors.thin_part_size * diag:
            thin.append(p)
    drop_draw = rng.random(len(thin))
    dropped = tuple(p for p, u in zip(thin, drop_draw, strict=True)
                    if u < errors.thin_drop_prob)
    fused = bool(rng.random() < errors.fuse_prob)
    mirror = bool(rng.random() < errors.hidden_mirror_prob)
    modes = np.concatenate([rng.normal(0.0, 4.0, (4, 3)), rng.uniform(0, 2 * np.pi, (4, 1)),
                            rng.normal(size=(4, 3))], axis=1)
    modes[:, 4:] /= np.linalg.norm(modes[:, 4:], axis=1, keepdims=True)
    n_cuts = int(rng.integers(1, 4)) if rng.random() < errors.split_prob else 0
    cuts = np.zeros((n_cuts, 4))
    for i in range(n_cuts):
        n = rng.normal(size=3)
        n /= np.linalg.norm(n)
        half = 0.5 * float(np.abs(n) @ (hi - lo))
        cuts[i, :3] = n
        cuts[i, 3] = float(n @ centre) + rng.uniform(-0.6, 0.6) * half
    d = np.asarray(camera_centre, np.float64) - centre
    d[2] = 0.0
    view = d / (np.linalg.norm(d) or 1.0)
    return ShapeErrors(part_scale=part_scale, axis_scale=axis_scale, articulation=articulation,
                       groups=groups, dropped=dropped, fused=fused, hidden_mirror=mirror,
                       hidden_warp=float(errors.hidden_warp), warp_modes=modes,
                       view_normal=view, centre=centre, diagonal=diag, cuts=cuts)


def _gather(occ: np.ndarray, points: np.ndarray, origin: np.ndarray, pitch: float) -> np.ndarray:
    """Nearest-voxel lookup of ``occ`` at ``points (N, 3)``; outside the grid = False."""
    idx = np.rint((points - origin) / pitch).astype(np.int64)
    n = np.asarray(occ.shape)
    inside = ((idx >= 0) & (idx < n)).all(axis=1)
    out = np.zeros(len(points), dtype=bool)
    i = idx[inside]
    out[inside] = occ[i[:, 0], i[:, 1], i[:, 2]]
    return out


def _anchor(v: np.ndarray, vp: np.ndarray, members: list[int], radius: float) -> np.ndarray:
    """Centroid of the members' vertices near other parts (the joint), else their centroid."""
    from scipy.spatial import cKDTree

    inside = np.isin(vp, members)
    own, other = v[inside], v[~inside]
    if len(other) and len(own):
        d, _ = cKDTree(other).query(own, distance_upper_bound=radius)
        near = own[np.isfinite(d)]
        if len(near):
            return near.mean(axis=0)
    return own.mean(axis=0) if len(own) else np.zeros(3)


def apply_shape_errors(occ: np.ndarray, origin: np.ndarray, pitch: float,
                       errors: ShapeErrors, vertices: np.ndarray,
                       vertex_part: np.ndarray) -> np.ndarray:
    """Edit an occupancy grid of the true mesh (module docstring, steps 1-5).

    Args:
        occ: ``(X, Y, Z)`` bool occupancy; voxel ``i`` is centred at ``origin + pitch * i``.
        origin: ``(3,)`` grid origin, canonical frame.
        pitch: voxel size.
        errors: from :func:`draw_shape_errors`.
        vertices: ``(V, 3)`` the true mesh (labels voxels by part).
        vertex_part: ``(V,)``.

    Returns:
        The edited ``(X, Y, Z)`` bool occupancy.
    """
    from scipy import ndimage
    from scipy.spatial import cKDTree

    v = np.asarray(vertices, np.float64)
    vp = np.asarray(vertex_part, np.int64)
    shape = occ.shape
    grid = origin + pitch * np.stack(np.meshgrid(*[np.arange(s) for s in shape],
                                                 indexing="ij"), -1).reshape(-1, 3)
    occ = occ.astype(bool)
    label = np.full(shape, -1, dtype=np.int64)
    filled = np.flatnonzero(occ.reshape(-1))
    _, j = cKDTree(v).query(grid[filled])
    label.reshape(-1)[filled] = vp[j]

    m, diag = errors.centre, errors.diagonal
    group_of = {p: g for g, ps in errors.groups.items() for p in ps}
    joints = {g: _anchor(v, vp, ps, 2.0 * pitch) for g, ps in errors.groups.items()}
    out3 = np.zeros(shape, dtype=bool)
    n = np.asarray(shape)
    for p in np.unique(vp):
        if p in errors.dropped:
            continue
        own = occ & (label == p)
        cells = np.argwhere(own)
        if len(cells) == 0:
            continue
        a = _anchor(v, vp, [int(p)], 2.0 * pitch)
        s = float(errors.part_scale[p])
        R = np.eye(3)
        g = np.zeros(3)
        if p in group_of:
            R = rotvec_matrix(errors.articulation[group_of[p]])
            g = joints[group_of[p]]
        # forward: x -> m + D (g + R (a + s (x - a) - g) - m); the part's new box from
        # its corners, then the inverse map gathers on that box only
        lo_c, hi_c = cells.min(0) - 1, cells.max(0) + 1
        corners = origin + pitch * np.array([[hi_c[i] if (c >> i) & 1 else lo_c[i]
                                               for i in range(3)] for c in range(8)])
        fwd = m + ((g + ((a + s * (corners - a)) - g) @ R.T) - m) * errors.axis_scale
        b_lo = np.clip(np.floor((fwd.min(0) - origin) / pitch).astype(np.int64) - 1, 0, n)
        b_hi = np.clip(np.ceil((fwd.max(0) - origin) / pitch).astype(np.int64) + 2, 0, n)
        if (b_hi <= b_lo).any():
            continue
        sub = origin + pitch * np.stack(np.meshgrid(
            *[np.arange(b_lo[i], b_hi[i]) for i in range(3)], indexing="ij"), -1).reshape(-1, 3)
        x2 = m + (sub - m) / errors.axis_scale
        x1 = g + (x2 - g) @ R  # R^T applied to row vectors
        x0 = a + (x1 - a) / s
        box = out3[b_lo[0]:b_hi[0], b_lo[1]:b_hi[1], b_lo[2]:b_hi[2]]
        box |= _gather(own, x0, origin, pitch).reshape(box.shape)

    side = (grid - m) @ errors.view_normal
    hidden = side < 0
    if errors.hidden_mirror and hidden.any():
        refl = grid[hidden] - 2.0 * side[hidden, None] * errors.view_normal
        flat = out3.reshape(-1).copy()
        flat[hidden] = _gather(out3, refl, origin, pitch)
        out3 = flat.reshape(shape)
    if errors.hidden_warp > 0:
        w = np.clip(-side / (0.1 * diag), 0.0, 1.0)
        busy = w > 0
        if busy.any():
            pts = grid[busy]
            modes = errors.warp_modes
            phase = (pts - m) @ modes[:, :3].T / diag + modes[:, 3]
            disp = np.sin(phase) @ modes[:, 4:] * (errors.hidden_warp * diag / 2.0)
            flat = out3.reshape(-1).copy()
            flat[busy] = _gather(out3, pts + w[busy, None] * disp, origin, pitch)
            out3 = flat.reshape(shape)
    if errors.fused:
        out3 = ndimage.binary_closing(out3, iterations=1)
    for n0, n1, n2, d in errors.cuts:
        dist = np.abs(grid @ np.array([n0, n1, n2]) - d)
        out3 = out3 & (dist >= 0.75 * pitch).reshape(shape)
    return out3

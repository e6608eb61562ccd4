"""CPU orientation estimator: compare against renders of a category reference mesh.

:class:`TemplateOrientationEstimator` renders a reference mesh (assumed
canonical: X front, Z up) at many azimuths with the same
:class:`~geocorr.reconstruct.views.ViewSettings` as the yaw vote, and answers
the azimuth of the most similar render. Renders are normal-shaded, not
silhouettes, so that front and back of shapes with a 180-degree symmetric
outline (buses, boats) differ.

The reference is chosen **without ground-truth pose** by
:func:`select_reference`: normalise every mesh of the category (bbox centre,
bbox diagonal), align every pair over the four yaw options ``k * 90`` with a
symmetric Chamfer distance, take the medoid. Its own yaw is unknown; assuming
that most reconstructions are already canonical (SAM3D's yaw is *usually*
right; the flips are the minority), the medoid's correction is the one that
makes the majority of the category's alignments the identity: the mode of the
relative corrections. The same alignment directly gives each mesh's
correction (:attr:`ReferenceChoice.direct_corrections`), a baseline to the
8-view vote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from geocorr.reconstruct.orientation import OrientationEstimate
from geocorr.reconstruct.views import ViewSettings, render_view, rotation_z

__all__ = ["TemplateSettings", "TemplateOrientationEstimator", "ReferenceChoice",
           "select_reference", "normalized_points", "yaw_chamfer"]


@dataclass(frozen=True)
class TemplateSettings:
    """Settings of the template estimator and reference selection.

    Attributes:
        num_azimuths: reference renders around the object. 72 (5 degree steps)
            is well below the 45-degree decision margin of the vote.
        descriptor_size: side of the square crop the renders are compared at;
            64 (with 128 px views; 32 and 48 lost bus front/back cues).
        points: surface samples per mesh for the Chamfer alignment.
        seed: sampling seed (results are deterministic).
        views: render settings; must equal the yaw vote's.
    """

    num_azimuths: int = 72
    descriptor_size: int = 64
    points: int = 600
    seed: int = 0
    views: ViewSettings = field(default_factory=ViewSettings)


def _descriptor(image: np.ndarray, size: int) -> np.ndarray:
    """Crop the non-white region, pad to a square with white, resize, flatten to [0, 1]."""
    import cv2

    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3), got {img.shape}")
    fg = np.any(img < 250, axis=2)
    if not fg.any():
        return np.ones(size * size * 4, np.float32)
    rows, cols = np.flatnonzero(fg.any(1)), np.flatnonzero(fg.any(0))
    crop = img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float32) / 255.0
    m = fg[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].astype(np.float32)
    h, w = m.shape
    side = max(h, w)
    canvas = np.ones((side, side, 4), np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    canvas[top:top + h, left:left + w, :3] = crop
    canvas[top:top + h, left:left + w, 3] = 1.0 - m
    out = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    return out.reshape(-1)


class TemplateOrientationEstimator:
    """Nearest reference render -> azimuth.

    Args:
        vertices: ``(V, 3)`` canonical reference mesh (X front, Y left, Z up).
        faces: ``(F, 3)`` triangle indices.
        settings: see :class:`TemplateSettings`.

    ``confidence`` is the distance gap between the best match and the best
    match at least 90 degrees away, divided by the latter (0 = ambiguous).
    ``symmetry`` is not estimated (``None``).
    """

    name = "template"

    def __init__(self, vertices: np.ndarray, faces: np.ndarray,
                 settings: TemplateSettings = TemplateSettings()) -> None:
        if settings.num_azimuths < 4:
            raise ValueError(f"num_azimuths must be >= 4, got {settings.num_azimuths}")
        self.settings = settings
        self.azimuths = np.arange(settings.num_azimuths) * (360.0 / settings.num_azimuths)
        self.bank = np.stack([
            _descriptor(render_view(vertices, faces, float(a), settings.views),
                        settings.descriptor_size) for a in self.azimuths])

    def distances(self, image: np.ndarray) -> np.ndarray:
        """``(num_azimuths,)`` mean absolute descriptor difference to each reference render."""
        d = _descriptor(image, self.settings.descriptor_size)
        return np.abs(self.bank - d[None]).mean(1)

    def estimate(self, image: np.ndarray) -> OrientationEstimate:
        """Azimuth of the nearest reference render (degrees) and a confidence."""
        dist = self.distances(image)
        j = int(np.argmin(dist))
        gap = np.abs((self.azimuths - self.azimuths[j] + 180.0) % 360.0 - 180.0)
        far = dist[gap >= 90.0]
        conf = float((far.min() - dist[j]) / max(far.min(), 1e-9)) if far.size else 0.0
        return OrientationEstimate(azimuth_deg=float(self.azimuths[j]), confidence=conf)


# ------------------------------------------------------------ reference choice
def normalized_points(vertices: np.ndarray, faces: np.ndarray, n: int, seed: int = 0
                      ) -> np.ndarray:
    """Area-weighted surface samples, centred on the bbox centre, scaled by the bbox diagonal.

    Returns:
        ``(n, 3)`` float64 points.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    if len(v) == 0 or len(f) == 0:
        raise ValueError("mesh has no vertices or no faces")
    tri = v[f]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    rng = np.random.default_rng(seed)
    p = area / area.sum() if area.sum() > 0 else None
    idx = rng.choice(len(f), size=n, p=p)
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    w = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)
    pts = np.einsum("nk,nkd->nd", w, tri[idx])
    lo, hi = v.min(0), v.max(0)
    return (pts - 0.5 * (lo + hi)) / max(float(np.linalg.norm(hi - lo)), 1e-12)


def _chamfer(a: np.ndarray, b: np.ndarray, tree_b=None) -> float:
    from scipy.spatial import cKDTree

    tree_a = cKDTree(a)
    tree_b = cKDTree(b) if tree_b is None else tree_b
    return float(tree_b.query(a)[0].mean() + tree_a.query(b)[0].mean())


def yaw_chamfer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Symmetric Chamfer distance between ``Rz(k 90) a`` and ``b`` for k = 0..3.

    Args:
        a: ``(N, 3)`` points.
        b: ``(M, 3)`` points.

    Returns:
        ``(4,)`` distances; ``argmin`` is the rotation bringing ``a`` onto ``b``.
    """
    from scipy.spatial import cKDTree

    tree_b = cKDTree(b)
    return np.array([_chamfer(a @ np.round(rotation_z(90.0 * k)).T, b, tree_b)
                     for k in range(4)])


@dataclass(frozen=True)
class ReferenceChoice:
    """Result of :func:`select_reference`.

    Attributes:
        index: position of the medoid mesh in the input list.
        reference_correction: ``k`` that makes the medoid canonical (rotate it by
            ``k * 90`` degrees about Z).
        relative: ``(N,)`` int, ``k_i`` bringing mesh ``i`` onto the medoid.
        direct_corrections: ``(N,)`` int, ``(k_i + reference_correction) % 4``:
            each mesh's correction by direct alignment (baseline to the vote).
        cost: ``(N, N)`` best-over-k Chamfer distance between normalised meshes.
    """

    index: int
    reference_correction: int
    relative: np.ndarray
    direct_corrections: np.ndarray
    cost: np.ndarray


def select_reference(meshes: Sequence[tuple[np.ndarray, np.ndarray]],
                     settings: TemplateSettings = TemplateSettings()) -> ReferenceChoice:
    """Choose a category reference without ground-truth pose (see module docstring).

    Args:
        meshes: ``N >= 1`` ``(vertices (V, 3), faces (F, 3))`` pairs of one category.
        settings: sampling size and seed.

    Returns:
        :class:`ReferenceChoice`. Ties in the majority vote for the reference's
        own correction go to ``k = 0``.
    """
    if len(meshes) == 0:
        raise ValueError("select_reference needs at least one mesh")
    pts = [normalized_points(v, f, settings.points, settings.seed) for v, f in meshes]
    n = len(pts)
    cost = np.zeros((n, n))
    best_k = np.zeros((n, n), dtype=np.int64)  # best_k[i, j]: rotate i onto j
    for i in range(n):
        for j in range(i + 1, n):
            d = yaw_chamfer(pts[i], pts[j])
            k = int(np.argmin(d))
            cost[i, j] = cost[j, i] = d[k]
            best_k[i, j] = k
            best_k[j, i] = (-k) % 4
    medoid = int(np.argmin(cost.sum(1)))
    relative = best_k[:, medoid].copy()
    counts = np.bincount(relative, minlength=4)
    mode = int(np.argmax(counts))  # argmax takes the first (smallest k) on ties
    ref_corr = (-mode) % 4
    return ReferenceChoice(index=medoid, reference_correction=ref_corr, relative=relative,
                           direct_corrections=(relative + ref_corr) % 4, cost=cost)

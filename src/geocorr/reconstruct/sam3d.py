"""SAM 3D Objects: output conversion (pure) and an in-process adapter.

SAM3D's outputs (facebookresearch/sam-3d-objects; see
``shared/reference/models.md``):

* ``rotation`` ``(1, 4)`` quaternion **wxyz**, ``translation`` ``(1, 3)``,
  ``scale`` ``(1, 3)`` (equal entries). The pose maps the raw mesh into the
  PyTorch3D camera frame (x left, y up, z forward): ``p = s R^T p_raw + t``
  with ``R = quat_to_matrix(q)``.
* ``glb``: the mesh, **Y up**, ``glb = raw @ A`` (row vectors) with
  ``A = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]``; the raw mesh is **Z up**.
* ``pointmap`` ``(H', W', 3)`` in the PyTorch3D camera frame, possibly
  downsampled (x0.5 above 1200 px, x0.25 above 1900 px). No intrinsics.

Conversion to geocorr (object frame Z up, OpenCV camera, ``F = diag(-1, -1, 1)``
from PyTorch3D to OpenCV): vertices ``V = s * raw = s * glb @ A^T``; camera
``R_cv = F R^T``, ``t_cv = F t`` (so ``R_cv V + t_cv = F (s R^T raw + t)``).
Intrinsics: least-squares fit of ``u = fx X / Z + cx``, ``v = fy Y / Z + cy`` on
``F * pointmap`` against the pointmap's pixel centres mapped to full-image
pixels (``u = (j + 0.5) W / W' - 0.5``). Which raw axis is the object's front
is not documented; the yaw vote fixes it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from geocorr.geometry.camera import Camera
from geocorr.reconstruct.reconstructor import Reconstruction
from geocorr.repo_module import load_module_file

__all__ = ["GLB_FROM_RAW", "PYTORCH3D_TO_OPENCV", "quaternion_wxyz_to_matrix",
           "fit_intrinsics", "sam3d_to_geocorr", "Sam3DReconstructor"]

GLB_FROM_RAW = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""``A``: ``glb = raw @ A`` (row vectors)."""

PYTORCH3D_TO_OPENCV = np.diag([-1.0, -1.0, 1.0])
"""``F``: PyTorch3D camera frame (x left, y up) -> OpenCV (x right, y down)."""


def quaternion_wxyz_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit quaternion ``(w, x, y, z)`` -> ``(3, 3)`` rotation (PyTorch3D's formula)."""
    q = np.asarray(q, dtype=np.float64).reshape(-1)
    if q.shape != (4,) or not np.all(np.isfinite(q)) or np.linalg.norm(q) == 0:
        raise ValueError(f"rotation must be a finite non-zero (4,) wxyz quaternion, got {q}")
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def fit_intrinsics(points_cv: np.ndarray, width: int, height: int) -> np.ndarray:
    """Fit ``K`` (no skew) to a camera-frame pointmap.

    Args:
        points_cv: ``(H', W', 3)`` OpenCV camera-frame points of a (possibly
            downsampled) pixel grid covering the whole image; NaN/inf or
            ``Z <= 0`` entries are ignored.
        width: full image width ``W``.
        height: full image height ``H``.

    Returns:
        ``(3, 3)`` intrinsics in full-image pixels.

    Raises:
        ValueError: bad shape or fewer than 2 distinct valid columns/rows.
    """
    P = np.asarray(points_cv, dtype=np.float64)
    if P.ndim != 3 or P.shape[2] != 3:
        raise ValueError(f"pointmap must have shape (H', W', 3), got {P.shape}")
    h, w = P.shape[:2]
    jj, ii = np.meshgrid(np.arange(w), np.arange(h))
    u = (jj + 0.5) * (width / w) - 0.5
    v = (ii + 0.5) * (height / h) - 0.5
    ok = np.all(np.isfinite(P), axis=2) & (P[..., 2] > 1e-9)
    if ok.sum() < 4:
        raise ValueError("pointmap has fewer than 4 valid points (finite, Z > 0)")
    X, Y = P[ok, 0] / P[ok, 2], P[ok, 1] / P[ok, 2]
    K = np.eye(3)
    for axis, (ratio, pix) in enumerate(((X, u[ok]), (Y, v[ok]))):
        A = np.stack([ratio, np.ones_like(ratio)], axis=1)
        sol, *_ = np.linalg.lstsq(A, pix, rcond=None)
        if not np.isfinite(sol).all() or sol[0] <= 0:
            raise ValueError("pointmap does not determine a positive focal length")
        K[axis, axis], K[axis, 2] = sol
    return K


def sam3d_to_geocorr(glb_vertices: np.ndarray, faces: np.ndarray, rotation_wxyz: np.ndarray,
                     translation: np.ndarray, scale: np.ndarray | float, pointmap: np.ndarray,
                     width: int, height: int) -> tuple[np.ndarray, Camera]:
    """Convert SAM3D's outputs to a geocorr mesh (Z up) and OpenCV camera.

    Args:
        glb_vertices: ``(V, 3)`` vertices of the Y-up glb mesh.
        faces: ``(F, 3)`` its faces (only checked against ``V``).
        rotation_wxyz: ``(4,)`` or ``(1, 4)`` quaternion.
        translation: ``(3,)`` or ``(1, 3)``.
        scale: scalar, ``(3,)`` or ``(1, 3)`` (equal entries expected; the mean is used).
        pointmap: ``(H', W', 3)`` PyTorch3D camera-frame points.
        width: image width ``W``.
        height: image height ``H``.

    Returns:
        ``(vertices (V, 3), camera)`` with ``camera.project(vertices)`` landing on the image.
    """
    g = np.asarray(glb_vertices, dtype=np.float64)
    if g.ndim != 2 or g.shape[1] != 3:
        raise ValueError(f"glb vertices must have shape (V, 3), got {g.shape}")
    f = np.asarray(faces)
    if f.size and (f.min() < 0 or f.max() >= len(g)):
        raise ValueError("faces index vertices outside the glb mesh")
    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    if s.size not in (1, 3) or not np.all(s > 0):
        raise ValueError(f"scale must be positive (scalar or 3 values), got {s}")
    if s.size == 3 and np.ptp(s) > 1e-3 * s.mean():
        raise ValueError(f"scale entries differ ({s}); anisotropic scale is not supported")
    t = np.asarray(translation, dtype=np.float64).reshape(-1)
    if t.shape != (3,):
        raise ValueError(f"translation must have 3 values, got {t.shape}")
    R = quaternion_wxyz_to_matrix(rotation_wxyz)
    Fm = PYTORCH3D_TO_OPENCV
    vertices = float(s.mean()) * (g @ GLB_FROM_RAW.T)  # raw (Z up), scaled
    P = np.asarray(pointmap, dtype=np.float64)
    if P.ndim != 3 or P.shape[2] != 3:
        raise ValueError(f"pointmap must have shape (H', W', 3), got {P.shape}")
    K = fit_intrinsics(P @ Fm.T, width, height)
    return vertices, Camera(K, Fm @ R.T, Fm @ t, width, height)


_SAM3D_INSTALL = (
    "SAM 3D Objects is not importable. Clone facebookresearch/sam-3d-objects, set up its "
    "environment (Python 3.11, torch 2.5.1 + CUDA, pytorch3d, kaolin, gsplat), download the "
    "gated facebook/sam-3d-objects weights into <repo>/checkpoints/hf/ and pass "
    "repo_path=<repo>. Or run SAM3D in its own environment and import its outputs with "
    "--meshes files:DIR (see geocorr.reconstruct.sam3d.sam3d_to_geocorr)."
)


class Sam3DReconstructor:
    """In-process SAM 3D Objects (lazy import; needs a >= 32 GB GPU).

    Args:
        repo_path: clone of facebookresearch/sam-3d-objects.
        config: pipeline yaml; default ``<repo>/checkpoints/hf/pipeline.yaml``.
        seed: sampling seed passed to the model.
    """

    name = "sam3d"

    def __init__(self, repo_path: str | Path, config: str | Path | None = None,
                 seed: int = 42) -> None:
        self.repo_path = Path(repo_path)
        self.config = Path(config) if config else self.repo_path / "checkpoints/hf/pipeline.yaml"
        self.seed = seed
        self._inference = None

    def _load(self):
        notebook = self.repo_path / "notebook"
        if not (notebook / "inference.py").is_file():
            raise FileNotFoundError(f"{notebook}/inference.py not found. {_SAM3D_INSTALL}")
        if not self.config.is_file():
            raise FileNotFoundError(f"{self.config}: pipeline config not found. {_SAM3D_INSTALL}")
        os.environ.setdefault("CONDA_PREFIX", sys.prefix)  # its import reads it
        try:  # under a private name: Orient Anything V2 also has a top-level `inference`
            module = load_module_file(notebook / "inference.py", notebook, "sam3d_inference")
            Inference = module.Inference
        except (ImportError, AttributeError) as exc:
            raise ImportError(f"{_SAM3D_INSTALL} ({exc})") from exc
        self._inference = Inference(str(self.config), compile=False)
        return self._inference

    def reconstruct(self, image: np.ndarray, mask: np.ndarray, category: str,
                    stem: str) -> Reconstruction:
        """Run SAM3D on the masked image and convert its output."""
        img = np.asarray(image)
        m = np.asarray(mask).astype(bool)
        if img.ndim != 3 or img.shape[:2] != m.shape:
            raise ValueError(f"image {img.shape} and mask {m.shape} disagree for {category}/{stem}")
        inf = self._inference or self._load()
        out = inf(img.astype(np.uint8), m, seed=self.seed)
        glb = out["glb"]
        pointmap = _numpy(out["pointmap"])
        vertices, camera = sam3d_to_geocorr(
            np.asarray(glb.vertices), np.asarray(glb.faces), _numpy(out["rotation"]),
            _numpy(out["translation"]), _numpy(out["scale"]), pointmap,
            width=img.shape[1], height=img.shape[0])
        return Reconstruction(vertices=vertices, faces=np.asarray(glb.faces, dtype=np.int64),
                              camera=camera, source=f"sam3d:{category}/{stem}")


def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)

"""Stand-in for SAM 3D Objects' ``notebook/inference.py``.

Same entry point as the repository: ``Inference(config_file, compile=False)``,
then ``inf(image, mask, seed=...)`` returning a dict with ``rotation`` (1, 4)
quaternion **wxyz**, ``translation`` (1, 3), ``scale`` (1, 3) (equal entries),
``glb`` (a trimesh mesh, **Y up**), ``mesh`` (raw vertices, Z up, in
[-0.5, 0.5]^3) and ``pointmap`` (H', W', 3) in the PyTorch3D camera frame
(x left, y up, z forward), downsampled x0.5 above 1200 px and x0.25 above
1900 px; no intrinsics. Importing it reads ``CONDA_PREFIX`` (older releases
failed without it).

Instead of a model it returns one known scene: the config file (the pipeline
yaml the adapter passes) names an ``.npz`` with the mesh in geocorr's object
frame (``vertices``, ``faces``, Z up) and the OpenCV camera that renders it
onto the image (``K``, ``R``, ``t``, ``width``, ``height``), plus the ``scale``
SAM3D would report. The stand-in expresses that scene in SAM3D's documented
conventions: ``raw = V / s``; ``glb = raw @ A`` with
``A = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]``; the pose maps raw into the
PyTorch3D camera as ``p = s R^T raw + t``, ``R = quat_to_matrix(q)``, and
PyTorch3D -> OpenCV is ``F = diag(-1, -1, 1)``. The pointmap is the camera's
pixel rays scaled to a depth map (the object's centre depth inside the mask,
a tilted background plane elsewhere, a few NaN holes).
"""

from __future__ import annotations

import os

_CONDA_PREFIX = os.environ["CONDA_PREFIX"]  # as the repository's import did

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import trimesh  # noqa: E402
import yaml  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

__all__ = ["Inference"]

A = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
F = np.diag([-1.0, -1.0, 1.0])


class Inference:
    def __init__(self, config_file: str, compile: bool = False):
        config = yaml.safe_load(Path(config_file).read_text())
        scene = np.load(Path(config_file).parent / config["scene"])
        self.vertices = scene["vertices"]
        self.faces = scene["faces"]
        self.K, self.R, self.t = scene["K"], scene["R"], scene["t"]
        self.size = (int(scene["height"]), int(scene["width"]))
        self.s = float(scene["scale"])
        self.compile = compile

    def merge_mask_to_rgba(self, image, mask):
        mask = mask.astype(np.uint8) * 255
        return np.concatenate([image[..., :3], mask[..., None]], axis=-1)

    def __call__(self, image, mask, seed=None, pointmap=None, export_usd_path=None,
                 usd_scale_factor=100.0, embed_textures=True) -> dict:
        rgba = self.merge_mask_to_rgba(image, mask)
        if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[-1] != 4:
            raise AssertionError(f"expected (H, W, 4) uint8 after merging, got {rgba.shape} "
                                 f"{rgba.dtype}")
        if rgba.shape[:2] != self.size:
            raise AssertionError(f"image {rgba.shape[:2]} is not the scene's {self.size}")
        if not (rgba[..., 3] > 0).any():
            raise AssertionError("empty mask")
        raw = self.vertices / self.s
        if np.abs(raw).max() > 0.5 + 1e-9:
            raise AssertionError("raw mesh must lie in [-0.5, 0.5]^3; pick a larger scale")
        R_p3d = (F @ self.R).T  # R_cv = F R^T
        t_p3d = F @ self.t
        xyzw = Rotation.from_matrix(R_p3d).as_quat()
        wxyz = np.array([xyzw[3], *xyzw[:3]])
        return {
            "rotation": torch.tensor(wxyz[None], dtype=torch.float32),
            "translation": torch.tensor(t_p3d[None], dtype=torch.float32),
            "scale": torch.full((1, 3), self.s, dtype=torch.float32),
            "glb": trimesh.Trimesh(raw @ A, self.faces, process=False),
            "mesh": [trimesh.Trimesh(raw, self.faces, process=False)],
            "pointmap": self._pointmap(rgba[..., 3] > 0),
        }

    def _pointmap(self, mask: np.ndarray) -> torch.Tensor:
        H, W = self.size
        jj, ii = np.meshgrid(np.arange(W), np.arange(H))
        x = (jj - self.K[0, 2]) / self.K[0, 0]
        y = (ii - self.K[1, 2]) / self.K[1, 1]
        depth = 2.0 * float(self.t[2]) + 0.3 * x - 0.2 * y       # background plane
        depth = np.where(mask, float(self.t[2]), depth)           # the object
        pts = np.stack([x * depth, y * depth, depth], axis=-1) @ F.T  # PyTorch3D frame
        pts[::17, ::13] = np.nan                                  # holes, as MoGe leaves
        x3 = torch.tensor(pts, dtype=torch.float32).permute(2, 0, 1)[None]
        side = max(H, W)
        factor = 0.25 if side > 1900 else 0.5 if side > 1200 else 1.0
        if factor != 1.0:  # the repository's _down_sample_img
            x3 = torch.nn.functional.interpolate(x3, scale_factor=(factor, factor),
                                                 mode="bilinear", align_corners=False,
                                                 antialias=True)
        return x3[0].permute(1, 2, 0)

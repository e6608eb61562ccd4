"""PartField part features: an in-process adapter and a reader for PartField's saved files.

PartField (nv-tlabs/PartField, NVIDIA non-commercial licence) predicts a
448-d part feature field from the shape alone. Most people run it in its own
environment (Python 3.10, torch 2.4 + CUDA, lightning, torch-scatter, pymeshlab)
with its script::

    python partfield_inference.py -c configs/final/demo.yaml \\
        --opts continue_ckpt model/model_objaverse.ckpt \\
        result_name partfield_features/X dataset.data_path DIR

which writes ``exp_results/partfield_features/X/part_feat_<uid>_0_batch.npy``:
``(F, 448)`` per face (the mean of ``n_point_per_face`` samples in each
triangle) or ``(V, 448)`` per vertex with ``vertex_feature True``. Its uid is
the mesh file name without extension; names with dots break its uid parsing
and the names ``car`` / ``complex_car`` are skipped by a hard-coded rule in
its ``predict_step`` -- rename such files before running it.

:class:`PartFieldFiles` reads those files (the path that works here);
:class:`PartField` runs the model in-process. The latter needs PartField's
repository, its checkpoint and a CUDA GPU (its PVCNN encoder is built with
``device="cuda"``); it cannot run on our CPU machines. It follows ``models.md``
and PartField's ``predict_step`` line by line, and its whole code path is
tested against an API stand-in of the repository (``tests/fakes/partfield``:
same module and attribute names, triplane layout and lookup, with an analytic
feature field), never against the real model.
"""

from __future__ import annotations

import hashlib
import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from geocorr.features.part_descriptor import face_to_vertex_features
from geocorr.geometry.mesh_arrays import check_mesh_arrays

__all__ = ["PARTFIELD_DIM", "PartFieldFiles", "PartFieldFile", "PartFieldSettings",
           "PartField", "load_partfield_features"]

PARTFIELD_DIM = 448
"""Channels of PartField's part feature field (triplane channels 512 = 64 SDF + 448 part)."""


def load_partfield_features(path: str | Path, vertices: np.ndarray, faces: np.ndarray,
                            per: Literal["auto", "face", "vertex"] = "auto") -> np.ndarray:
    """Read one saved PartField ``.npy`` and return per-vertex features.

    Args:
        path: the ``.npy`` file, ``(F, D)`` per face or ``(V, D)`` per vertex
            (any float dtype, fp16 included).
        vertices: ``(V, 3)`` the mesh PartField was run on (same vertex order).
        faces: ``(F, 3)`` its faces (same order).
        per: ``"face"``, ``"vertex"`` or ``"auto"`` (decide from the row count;
            when ``F == V`` it is read as per face, PartField's default).

    Returns:
        ``(V, D)`` float32; per-face rows are averaged onto vertices weighted
        by triangle area (:func:`face_to_vertex_features`).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: unreadable file, wrong rank, non-finite values, or a row
            count matching neither the face nor the vertex count (the message
            names the file and both counts).
    """
    path = Path(path)
    if per not in ("auto", "face", "vertex"):
        raise ValueError(f"per must be 'auto', 'face' or 'vertex', got {per!r}")
    v, f = check_mesh_arrays(vertices, faces, where=str(path))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: PartField feature file not found")
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path}: not a readable .npy array ({exc})") from None
    if x.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D (rows, channels) array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{path}: contains NaN or inf")
    n = x.shape[0]
    as_face = (per == "face") or (per == "auto" and n == len(f))
    as_vertex = (per == "vertex") or (per == "auto" and n == len(v) and not as_face)
    if as_face:
        if n != len(f):
            raise ValueError(f"{path}: {n} rows but the mesh has {len(f)} faces (per='face')")
        return face_to_vertex_features(v, f, x)
    if as_vertex:
        if n != len(v):
            raise ValueError(f"{path}: {n} rows but the mesh has {len(v)} vertices "
                             "(per='vertex')")
        return np.ascontiguousarray(x, dtype=np.float32)
    raise ValueError(f"{path}: {n} rows match neither the mesh's {len(f)} faces nor its "
                     f"{len(v)} vertices; was PartField run on this exact mesh (no "
                     "preprocess_mesh / remeshing)?")


@dataclass(frozen=True)
class PartFieldFile:
    """A :class:`~geocorr.features.part_descriptor.PartDescriptor` bound to one saved file.

    Attributes:
        path: the ``.npy`` file.
        per: how rows are read (see :func:`load_partfield_features`).
        name: source name in fusion.
    """

    path: Path
    per: Literal["auto", "face", "vertex"] = "auto"
    name: str = "partfield"

    def cache_key(self) -> str:
        st = self.path.stat()
        return f"partfield-file:{self.path.resolve()}:{st.st_size}:{st.st_mtime_ns}:{self.per}"

    def describe(self, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """``(V, D)`` float32 per-vertex features read from :attr:`path`."""
        return load_partfield_features(self.path, vertices, faces, self.per)


@dataclass(frozen=True)
class PartFieldFiles:
    """A folder of PartField outputs, one ``part_feat_<uid>_0_batch.npy`` per mesh.

    ``uid`` may contain ``/`` to address a sub-folder: ``"car/car_0001"`` ->
    ``root/car/part_feat_car_0001_0_batch.npy``. PartField's point-cloud mode
    name ``part_feat_<uid>_0.npy`` is accepted as a fallback.

    Attributes:
        root: the folder (e.g. ``exp_results/partfield_features/X``).
        per: ``"auto"`` / ``"face"`` / ``"vertex"``, see :func:`load_partfield_features`.
    """

    root: Path
    per: Literal["auto", "face", "vertex"] = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def path_for(self, uid: str) -> Path:
        """The feature file for ``uid``.

        Raises:
            FileNotFoundError: neither accepted name exists (message lists both).
        """
        rel = Path(uid)
        folder = self.root / rel.parent
        candidates = [folder / f"part_feat_{rel.name}_0_batch.npy",
                      folder / f"part_feat_{rel.name}_0.npy"]
        for c in candidates:
            if c.is_file():
                return c
        raise FileNotFoundError(f"no PartField features for {uid!r}: looked for "
                                f"{candidates[0]} and {candidates[1]}")

    def for_mesh(self, uid: str) -> PartFieldFile:
        """A part descriptor that returns the saved features of ``uid``."""
        return PartFieldFile(self.path_for(uid), self.per)

    def read(self, uid: str, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """``(V, D)`` float32 per-vertex features of ``uid`` for this mesh."""
        return load_partfield_features(self.path_for(uid), vertices, faces, self.per)


@dataclass
class PartFieldSettings:
    """How :class:`PartField` samples its feature field.

    Attributes:
        per: ``"face"`` (PartField's default: mean of ``n_point_per_face``
            samples per triangle, then area-weighted onto vertices) or
            ``"vertex"`` (sample the field at the vertices directly: cheaper,
            noisier on coarse meshes).
        n_point_per_face: samples per triangle for ``per="face"``; 1000 as in
            PartField's demo config.
        n_surface_points: surface samples fed to the encoder; 100 k as in
            PartField's dataloader.
        n_sample_each: query points per triplane lookup chunk (memory bound);
            PartField's default 10 000.
        seed: RNG seed for surface and in-face sampling (reproducible features).
    """

    per: Literal["face", "vertex"] = "face"
    n_point_per_face: int = 1000
    n_surface_points: int = 100_000
    n_sample_each: int = 10_000
    seed: int = 0


class PartField:
    """In-process PartField (needs its repository, checkpoint and a CUDA GPU).

    Follows PartField's demo inference: centre the mesh on its bounding box and
    scale by ``1.8 / max_extent``; sample ``n_surface_points`` on the surface;
    PVCNN encoder -> triplane transformer -> split the triplane channels into
    64 SDF + 448 part channels; query the part triplanes at in-face samples (or
    vertices) and average per face. PartField's own encoder needs CUDA: on a
    CPU-only machine building the model fails and the error says so; use
    :class:`PartFieldFiles` with features computed in PartField's own
    environment there.

    Args:
        repo: path to a clone of nv-tlabs/PartField (put on ``sys.path``).
        checkpoint: ``model_objaverse.ckpt`` (hub
            ``mikaelaangel/partfield-ckpt``) or a plain state-dict file.
        config: PartField's yacs config; default ``<repo>/configs/final/demo.yaml``.
        device: torch device; ``"cuda"`` for PartField's own code (any other device
            only works with a build of PartField that does not hard-code CUDA).
        settings: sampling settings.
    """

    name = "partfield"

    def __init__(self, repo: str | Path, checkpoint: str | Path, config: str | Path | None = None,
                 device: str = "cuda", settings: PartFieldSettings | None = None) -> None:
        self.repo = Path(repo)
        self.checkpoint = Path(checkpoint)
        self.config = Path(config) if config is not None else (
            self.repo / "configs" / "final" / "demo.yaml")
        self.device = device
        self.settings = settings or PartFieldSettings()
        self._model = None
        self._sample_triplane_feat = None

    def cache_key(self) -> str:
        digest = hashlib.sha1(f"{self.checkpoint.resolve()}".encode()).hexdigest()[:12]
        s = self.settings
        return (f"partfield:{digest}:{s.per}:{s.n_point_per_face}:{s.n_surface_points}:"
                f"{s.seed}")

    def _load(self):
        if self._model is not None:
            return self._model
        if not (self.repo / "partfield").is_dir():
            raise FileNotFoundError(
                f"PartField code not found at {self.repo}: clone "
                "https://github.com/nv-tlabs/PartField and pass its path (it needs its own "
                "dependencies: lightning, torch-scatter, pymeshlab, yacs), or run it in its own "
                "environment and read its .npy outputs with PartFieldFiles")
        if not self.checkpoint.is_file():
            raise FileNotFoundError(
                f"PartField checkpoint not found at {self.checkpoint}: download "
                "model_objaverse.ckpt from the hub repo mikaelaangel/partfield-ckpt")
        if not self.config.is_file():
            raise FileNotFoundError(f"PartField config not found at {self.config}")
        import torch

        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"PartField: device={self.device!r} but CUDA is not available "
                             "here; run it on a GPU machine or read its saved features with "
                             "PartFieldFiles")
        if str(self.repo) not in sys.path:
            sys.path.insert(0, str(self.repo))
        try:
            from partfield.config.defaults import _C
            from partfield.model.PVCNN.encoder_pc import sample_triplane_feat
            from partfield.model_trainer_pvcnn_only_demo import Model
        except ImportError as exc:
            raise ImportError(f"could not import PartField from {self.repo} ({exc}); install "
                              "its requirements (lightning, torch-scatter, pymeshlab, yacs, "
                              "plyfile, open3d)") from exc
        cfg = _C.clone()
        cfg.merge_from_file(str(self.config))
        cfg.merge_from_list(["vertex_feature", self.settings.per == "vertex",
                             "n_point_per_face", self.settings.n_point_per_face,
                             "n_sample_each", self.settings.n_sample_each])
        try:
            model = Model(cfg)
        except (RuntimeError, AssertionError) as exc:
            if "cuda" not in str(exc).lower():
                raise
            raise ValueError(
                f"PartField could not build its model on this machine ({exc}): its PVCNN "
                "encoder is built on 'cuda'; run it on a GPU machine or read its saved "
                "features with PartFieldFiles") from None
        # A Lightning checkpoint stores the yacs config (a dict subclass) under
        # hyper_parameters. weights_only refuses to fill a dict subclass, so that
        # class is read as a plain OrderedDict (only state_dict is used).
        cfg_names = {f"{type(cfg).__module__}.{type(cfg).__qualname__}", "yacs.config.CfgNode"}
        try:
            with torch.serialization.safe_globals([(OrderedDict, n) for n in cfg_names]):
                ckpt = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - report the file and the fix
            raise ValueError(
                f"{self.checkpoint}: could not load with weights_only=True ({exc}); in "
                "PartField's environment save its state dict alone: "
                "torch.save(torch.load(ckpt)['state_dict'], 'partfield_state.pt')") from None
        state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else ckpt
        model.load_state_dict(state, strict=True)
        self._model = model.to(self.device).eval()
        self._sample_triplane_feat = sample_triplane_feat
        return self._model

    def describe(self, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """``(V, 448)`` float32 per-vertex PartField features.

        Args:
            vertices: ``(V, 3)`` positions (any frame; normalised internally).
            faces: ``(F, 3)`` vertex indices.
        """
        v, f = check_mesh_arrays(vertices, faces, where="PartField input")
        if len(f) == 0:
            raise ValueError("PartField input: mesh has no faces")
        model = self._load()
        import torch
        import trimesh

        s = self.settings
        lo, hi = v.min(axis=0), v.max(axis=0)
        scale = 1.8 / max(float((hi - lo).max()), 1e-12)
        vn = (v - 0.5 * (lo + hi)) * scale
        mesh = trimesh.Trimesh(vn, f, process=False)
        pc, _ = trimesh.sample.sample_surface(mesh, s.n_surface_points, seed=s.seed)
        dev = torch.device(self.device)
        pc_t = torch.as_tensor(pc, dtype=torch.float32, device=dev)[None]
        with torch.no_grad():
            planes = model.triplane_transformer(model.pvcnn(pc_t, pc_t))
            _, part_planes = torch.split(planes, [64, planes.shape[2] - 64], dim=2)
            if s.per == "vertex":
                queries, per_group = torch.as_tensor(vn, dtype=torch.float32, device=dev), 1
            else:
                g = torch.Generator(device="cpu").manual_seed(s.seed)
                n = s.n_point_per_face
                u = torch.sqrt(torch.rand((len(f), n, 1), generator=g, dtype=torch.float64))
                w = torch.rand((len(f), n, 1), generator=g, dtype=torch.float64)
                tri = torch.as_tensor(vn[f])  # (F, 3, 3)
                pts = ((1 - u) * tri[:, None, 0] + u * (1 - w) * tri[:, None, 1]
                       + u * w * tri[:, None, 2])
                queries, per_group = pts.reshape(-1, 3).to(dev, torch.float32), n
            chunk = max(per_group, (s.n_sample_each // per_group) * per_group)
            out = []
            for start in range(0, queries.shape[0], chunk):
                feat = self._sample_triplane_feat(part_planes, queries[None, start:start + chunk])
                feat = feat.reshape(-1, per_group, feat.shape[-1]).mean(dim=1)
                out.append(feat.float().cpu())
            x = torch.cat(out).numpy()
        if s.per == "vertex":
            return x.astype(np.float32)
        return face_to_vertex_features(v, f, x)

"""Stand-in for PartField's ``partfield/config/defaults.py``: ``_C``, a yacs-like config.

The repository uses ``yacs.config.CfgNode``; this stand-in has the few methods
geocorr's adapter calls (``clone``, ``merge_from_file``, ``merge_from_list``)
with yacs's rules: unknown keys and type changes are errors. The keys are the
repository's that matter here, with its defaults, plus one stand-in-only key:
``pvcnn.device`` (the repository builds its PVCNN encoder with
``device="cuda"`` hard-coded; tests set ``cpu`` to run it on a CPU-only
machine, and leave ``cuda`` to see the adapter's error there).
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml


class CfgNode(dict):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.__dict__["__immutable__"] = False  # yacs keeps its flags in __dict__ too

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value

    def clone(self):
        return copy.deepcopy(self)

    def merge_from_file(self, path):
        self._merge(yaml.safe_load(Path(path).read_text()) or {}, "")

    def merge_from_list(self, items):
        if len(items) % 2:
            raise ValueError(f"merge_from_list needs key/value pairs, got {items}")
        for key, value in zip(items[0::2], items[1::2], strict=True):
            node, *parts = [self, *key.split(".")]
            for p in parts[:-1]:
                node = node[p]
            node._set(parts[-1], value, key)

    def _merge(self, other: dict, prefix: str):
        for k, v in other.items():
            if isinstance(v, dict):
                if k not in self or not isinstance(self[k], CfgNode):
                    raise KeyError(f"Non-existent config key: {prefix}{k}")
                self[k]._merge(v, f"{prefix}{k}.")
            else:
                self._set(k, v, prefix + k)

    def _set(self, key, value, full_key):
        if key not in self:
            raise KeyError(f"Non-existent config key: {full_key}")
        old = self[key]
        if old is not None and value is not None and type(old) is not type(value):
            raise ValueError(f"Type mismatch ({type(old).__name__} vs {type(value).__name__}) "
                             f"for config key: {full_key}")
        self[key] = value


_C = CfgNode()
_C.seed = 0
_C.output_dir = "results"
_C.result_name = "test_all"
_C.vertex_feature = True
_C.n_point_per_face = 2000
_C.n_sample_each = 10000
_C.is_pc = False
_C.continue_ckpt = None
_C.triplane_resolution = 128
_C.triplane_channels_low = 128
_C.triplane_channels_high = 512
_C.use_pvcnnonly = True
_C.use_2d_feat = False
_C.dataset = CfgNode()
_C.dataset.type = "Demo_Dataset"
_C.dataset.data_path = "objaverse_data/"
_C.pvcnn = CfgNode()
_C.pvcnn.point_encoder_type = "pvcnn"
_C.pvcnn.z_triplane_channels = 64
_C.pvcnn.z_triplane_resolution = 256
_C.pvcnn.device = "cuda"

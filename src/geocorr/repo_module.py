"""Import one module file of a cloned research repository under a private name.

SAM 3D Objects (``notebook/inference.py``) and Orient Anything V2
(``inference.py``) both ship their entry point as a top-level module named
``inference``. Imported the ordinary way (``from inference import ...`` with
the repository on ``sys.path``), whichever adapter loads second finds the
other's module in ``sys.modules`` and fails, so ``geocorr reconstruct
--meshes sam3d:REPO --estimator orient-anything:REPO:CKPT`` could not run in
one process. :func:`load_module_file` executes the file under a name derived
from its path instead, with the repository still on ``sys.path`` for the
module's own imports.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["load_module_file"]


def load_module_file(path: str | Path, search_path: str | Path, tag: str) -> ModuleType:
    """Execute ``path`` as a module private to geocorr (once per file).

    Args:
        path: the ``.py`` file.
        search_path: folder put first on ``sys.path`` (if absent) so that the
            module's own imports resolve, as they would with the repository's
            own scripts.
        tag: short readable part of the private module name.

    Returns:
        The module (cached in ``sys.modules`` under
        ``_geocorr_repo_<tag>_<hash of the resolved path>``).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ImportError: whatever the module's own imports raise.
    """
    file = Path(path).resolve()
    if not file.is_file():
        raise FileNotFoundError(f"{file}: module file not found")
    name = f"_geocorr_repo_{tag}_{hashlib.sha1(str(file).encode()).hexdigest()[:10]}"
    if name in sys.modules:
        return sys.modules[name]
    root = str(Path(search_path).resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"{file}: not importable as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module

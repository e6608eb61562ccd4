"""Shared fixtures: API stand-ins of the foundation models (see tests/fakes/README.md).

Suite-wide setup: the thread counts geocorr's CLI would choose
(``geocorr.threads``). Without it, tests calling the library directly would run
torch, numba and BLAS with one thread per core, as a bare ``python`` does; the
CLI and the tests see the same setting, whatever the Makefile or shell exports.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

FAKES = Path(__file__).resolve().parent / "fakes"


def pytest_configure(config) -> None:
    from geocorr.threads import set_threads

    set_threads()


@pytest.fixture()
def stand_in(tmp_path):
    """Copy a stand-in repository into ``tmp_path``; undo its imports afterwards.

    Returns a function ``stand_in(name) -> Path`` (``name`` a folder of
    ``tests/fakes``). Every module imported from a copied folder during the test
    is removed from ``sys.modules`` and ``sys.path`` is restored, so stand-ins
    never leak into other tests.
    """
    saved_path = list(sys.path)
    roots: list[Path] = []

    def install(name: str) -> Path:
        dest = tmp_path / "repos" / name
        shutil.copytree(FAKES / name, dest, ignore=shutil.ignore_patterns("__pycache__"))
        roots.append(dest.resolve())
        return dest

    yield install
    sys.path[:] = saved_path
    for key, module in list(sys.modules.items()):
        if any(_under(f, roots) for f in _module_files(module)):
            del sys.modules[key]


def _module_files(module) -> list[str]:
    files = [getattr(module, "__file__", None)]
    path = getattr(module, "__path__", None)
    if path is not None and not isinstance(path, str):
        try:
            files += [p for p in list(path) if isinstance(p, str)]
        except TypeError:  # torch's _ClassNamespace and the like
            pass
    return [f for f in files if isinstance(f, str)]


def _under(file: str, roots: list[Path]) -> bool:
    resolved = Path(file).resolve()
    return any(resolved.is_relative_to(r) for r in roots)

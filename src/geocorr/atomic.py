"""Atomic file writes: a crash leaves the old file or the new one, never half of one.

Every writer in geocorr outside ``geometry/`` (which imports nothing else from
the package and keeps its own copy in ``save_camera``) goes through here.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_file", "write_bytes_atomic", "write_text_atomic", "write_json_atomic"]


def _naming(exc: OSError, path: Path, tmp: str | None = None) -> OSError:
    """``exc`` naming ``path``, not no file (a failed ``write``) or the temp file."""
    if exc.filename is not None and exc.filename != tmp:
        return exc
    if exc.errno is None:
        return type(exc)(f"{path}: {exc}")
    return OSError(exc.errno, exc.strerror, str(path))  # OSError picks the errno's subclass


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, prefix: str | None = None,
                suffix: str = ".tmp") -> Iterator[IO[bytes]]:
    """A binary file to write ``path`` through: a temp file in the same folder, renamed on success.

    Creates missing parent folders. If the body raises (a full disk, an
    interrupt, a serialisation error), the temp file is removed and ``path``
    keeps its old content or stays absent; an ``OSError`` that names no file
    (as from ``write``) is re-raised naming ``path``.

    Args:
        path: the destination.
        prefix: temp-file name prefix (default ``.NAME.``); a dot keeps it hidden.
        suffix: temp-file name suffix.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=suffix,
                                   prefix=f".{path.name}." if prefix is None else prefix)
    except OSError as exc:
        raise _naming(exc, path) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _naming(exc, path, tmp) from exc
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via :func:`atomic_file` (creates missing parent folders)."""
    with atomic_file(path) as f:
        f.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """:func:`write_bytes_atomic` for UTF-8 text."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj: Any, indent: int = 1,
                      allow_nan: bool = True) -> None:
    """Deterministic JSON (insertion key order, trailing newline), written atomically."""
    write_text_atomic(path, json.dumps(obj, indent=indent, allow_nan=allow_nan) + "\n")

"""Atomic file writes: a crash leaves the old file or the new one, never half of one.

Every writer in geocorr outside ``geometry/`` (which imports nothing else from
the package and keeps its own copy in ``save_camera``) goes through here.

Temporary files get the permissions a plain ``open(path, "w")`` would give
(``0o666`` less the umask; ``tempfile.mkstemp`` alone makes them ``0600``),
and carry the writer's pid in their name, so that a folder's leftovers from a
killed writer can be told from a live writer's files
(:func:`remove_stale_temp_files`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_file", "write_bytes_atomic", "write_text_atomic", "write_json_atomic",
           "create_temp_file", "remove_stale_temp_files", "current_umask"]


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows.

    ``/proc/self/status`` has it on Linux; elsewhere it is set and restored at
    once (``os.umask`` has no read-only form).
    """
    with contextlib.suppress(OSError, ValueError, IndexError), open(
            "/proc/self/status", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def create_temp_file(folder: str | os.PathLike, prefix: str, suffix: str) -> tuple[int, str]:
    """A new temporary file ``<folder>/<prefix><pid>-<random><suffix>``, mode ``0o666 & ~umask``.

    Returns:
        ``(fd, path)`` as :func:`tempfile.mkstemp` (the caller closes ``fd``).
    """
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{prefix}{os.getpid()}-", suffix=suffix)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    return fd, tmp


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temp_files(folder: str | os.PathLike, prefix: str, suffix: str) -> list[Path]:
    """Delete ``<prefix>*<suffix>`` files in ``folder`` left by writers that are gone.

    A file named by :func:`create_temp_file` is kept while the process whose
    pid it carries is alive (it may be writing it); files without a pid in
    their name come from older versions and are removed.

    Returns:
        The removed paths, sorted.
    """
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for path in sorted(folder.glob(f"{prefix}*{suffix}")):
        middle = path.name[len(prefix):len(path.name) - len(suffix)]
        head, sep, _ = middle.partition("-")
        if sep and head.isdigit() and _pid_alive(int(head)):
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed


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
        fd, tmp = create_temp_file(path.parent, f".{path.name}." if prefix is None else prefix,
                                   suffix)
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

"""Paths built from a dataset's contents stay inside the dataset's root.

Annotation files name images (``src_imname``, CSV image columns,
``img_path``...), categories and pair stems; every reader and writer joins
those values to a root folder. :func:`inside` is the one place that join is
checked: the joined path, after resolving ``..`` and symbolic links, must lie
inside the resolved root, else a :class:`~geocorr.data.pairs.DatasetFormatError`
(a ``ValueError``) names the file the value came from and the value.

Rules:

- the root itself may be a symbolic link (it is resolved first): linking a
  whole dataset from another disk is fine;
- an absolute value (``"/etc/passwd"``) is refused, even one that happens to
  point inside the root: annotation values are relative to their root;
- ``..`` is accepted only while the result stays inside the root
  (``"a/../b.jpg"`` is fine, ``"../../x.jpg"`` is not);
- a symbolic link *inside* the root that leads outside it is refused (link the
  dataset root, not its sub-folders or files); links that stay inside are fine.

The check walks the components below the resolved root as the OS would
(following links that exist, applying ``..`` after them); it does not guard
against the file system changing between the check and the open.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from geocorr.data.pairs import DatasetFormatError

__all__ = ["inside", "Confined"]


def inside(root: str | os.PathLike[str], *parts: str | os.PathLike[str],
           source: str | os.PathLike[str] | None, what: str = "path") -> Path:
    """``Path(root, *parts)`` after checking that it resolves inside ``root``.

    Args:
        root: the folder the value is relative to (dataset root, output folder).
        *parts: path components, some of them taken from a dataset's contents
            (e.g. ``"JPEGImages", category, imname``).
        source: where the values came from, for the message (an annotation
            file, ``"file:line"``, an argument name).
        what: what the value is, for the message (``"image name"``).

    Returns:
        ``Path(root, *parts)`` as spelt (not resolved), so messages and caches
        keep the caller's spelling of the root.

    Raises:
        DatasetFormatError: a part is absolute or contains a NUL byte, or the
            path resolves outside ``root`` (through ``..`` or a symbolic link).
            The message names ``source``, ``what`` and the offending value.
    """
    return Confined(root).join(*parts, source=source, what=what)


class Confined:
    """A root resolved once, for joining many values to it (a reader's hot loop).

    ``Confined(root).join(*parts, source=..., what=...)`` is :func:`inside`
    without resolving ``root`` again on every call (a third of its cost): the
    root's symbolic links are taken as they were at construction.

    Args:
        root: the folder values are relative to.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = root
        self.real = os.path.realpath(root)

    def join(self, *parts: str | os.PathLike[str], source: str | os.PathLike[str] | None,
             what: str = "path") -> Path:
        """``Path(root, *parts)`` checked like :func:`inside` (same arguments and errors)."""
        root = self.root
        strs = [os.fspath(p) for p in parts]

        def fail(problem: str) -> DatasetFormatError:
            where = f"{os.fspath(source)}: " if source not in (None, "") else ""
            return DatasetFormatError(f"{where}{what} {'/'.join(strs)!r} {problem}")

        if "\0" in "".join(strs):
            raise fail("contains a NUL byte")
        if any(map(os.path.isabs, strs)):
            raise fail(f"is an absolute path; it must be relative to {root}")
        outside = _escape(self.real, strs)
        if outside == "..":
            raise fail(f"points outside {root}")
        if outside is not None:
            raise fail(f"leads through a symbolic link to {outside}, outside {root}")
        return Path(root, *strs)


def _escape(base: str, parts: list[str]) -> str | None:
    """Walk ``parts`` down from the resolved ``base`` as the OS would.

    Returns ``None`` when the path stays inside ``base``, ``".."`` when a
    ``..`` climbs above it, or the resolved target when a symbolic link leads
    out. Only the components below ``base`` are looked at (one ``lstat``
    each, none once a component does not exist), which keeps this cheap
    enough for every image of a 12k-pair split.
    """
    comps = [c for p in parts for c in p.split(os.sep)]
    path, exists = base, True
    for i, c in enumerate(comps):
        if c in ("", "."):
            continue
        if c == "..":
            if path == base:
                return ".."
            path = os.path.dirname(path)
            continue
        path = os.path.join(path, c)
        if not exists:
            continue
        try:
            mode = os.lstat(path).st_mode
        except OSError:  # missing (or below a file): nothing further can be a link
            exists = False
            continue
        if stat.S_ISLNK(mode):
            real = os.path.realpath(os.path.join(path, *comps[i + 1:]))
            inner = real == base or real.startswith(base.rstrip(os.sep) + os.sep)
            return None if inner else real
    return None

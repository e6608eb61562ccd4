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

The check is lexical plus :meth:`pathlib.Path.resolve` (which follows links
that exist); it does not guard against the file system changing between the
check and the open.
"""

from __future__ import annotations

import os
from pathlib import Path

from geocorr.data.pairs import DatasetFormatError

__all__ = ["inside"]


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
    value = "/".join(os.fspath(p) for p in parts)
    where = f"{os.fspath(source)}: " if source not in (None, "") else ""
    if "\0" in value:
        raise DatasetFormatError(f"{where}{what} {value!r} contains a NUL byte")
    for p in parts:
        if Path(p).is_absolute():
            raise DatasetFormatError(f"{where}{what} {value!r} is an absolute path; it must be "
                                     f"relative to {root}")
    base = Path(root).resolve()
    lexical = Path(os.path.normpath(base.joinpath(*parts)))
    if not lexical.is_relative_to(base):
        raise DatasetFormatError(f"{where}{what} {value!r} points outside {root}")
    resolved = base.joinpath(*parts).resolve()
    if not resolved.is_relative_to(base):
        raise DatasetFormatError(f"{where}{what} {value!r} leads through a symbolic link to "
                                 f"{resolved}, outside {root}")
    return Path(root).joinpath(*parts)

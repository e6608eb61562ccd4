"""Helpers shared by command modules: turning library errors into clean exits.

Exit codes of every command: 0 success; 2 a bad argument, bad input file or
an environment failure (missing/unreadable file, full disk, permission
denied, unavailable ``--device``, a missing optional dependency), reported as
one ``error:`` line on stderr that names the file or argument; 1 anything
else (a bug: a traceback).
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from geocorr.evaluation.canvas import DEFAULT_CANVAS

__all__ = ["console", "user_errors", "fail", "os_error_message", "check_device",
           "check_output_file", "canvas_size", "given", "USER_ERROR"]

USER_ERROR = 2

# soft_wrap: never insert line breaks into a message (a long path would be split
# mid-word at the terminal width). Callers may use rich markup in their own text;
# fail() prints the message as a Text, so "[...]" or ":x:" in a path stays as is.
console = Console(stderr=True, soft_wrap=True)

_HINTS = {
    errno.ENOSPC: "free some disk space or write somewhere else",
    errno.EDQUOT: "free some of your disk quota or write somewhere else",
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.EROFS: "choose a path on a writable file system",
    errno.EISDIR: "give a file path, not a directory",
    errno.ENOTDIR: "part of the path is a file, not a directory",
}


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` as one line on stderr; return the exit to raise (code 2)."""
    console.print(Text.assemble(("error:", "red"), " ", " ".join(message.splitlines())))
    return typer.Exit(code=USER_ERROR)


def os_error_message(exc: OSError) -> str:
    """One line for an ``OSError``: the path(s) it concerns, what went wrong, what to do."""
    what = exc.strerror or str(exc)
    where = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    hint = _HINTS.get(exc.errno) if exc.errno is not None else None
    text = f"{where}: {what}" if where else what
    return f"{text} ({hint})" if hint else text


def _pil_bomb(exc: BaseException) -> bool:
    cls = type(exc)
    return cls.__name__ == "DecompressionBombError" and cls.__module__.startswith("PIL")


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Report bad input and environment failures as one red line and exit 2.

    ``ValueError`` (bad arguments and malformed files; the library's messages
    name the file), ``OSError`` (missing or unreadable files, a full disk,
    permission denied, a read-only file system; the message names the path),
    PIL's decompression-bomb guard, and a missing optional dependency
    (geocorr's own messages say what to install). A broken stdout pipe is left to the
    caller, anything else propagates as a traceback.
    """
    try:
        yield
    except ValueError as exc:
        raise fail(str(exc)) from None
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise fail(os_error_message(exc)) from None
    except ImportError as exc:
        if (exc.name or "").split(".")[0] == "geocorr":
            raise  # geocorr's own import failing is a bug, not the environment
        raise fail(f"missing dependency: {exc}") from None
    except Exception as exc:
        if _pil_bomb(exc):
            raise fail(f"image too large to read safely ({exc})") from None
        raise


def check_output_file(path: Path | None, flag: str) -> None:
    """Refuse an output file path that is an existing directory before any work is done."""
    if path is not None and path.is_dir():
        raise ValueError(f"{flag} {path} is a directory; give a file path")


def canvas_size(size: int | None) -> int | None:
    """``--size`` -> the scorers' ``size``: ``None`` (not given) -> ``DEFAULT_CANVAS``,
    ``0`` -> ``None`` (original pixels).

    Raises:
        ValueError: a negative size, naming ``--size``.
    """
    if size is None:
        return DEFAULT_CANVAS
    if size < 0:
        raise ValueError(f"--size must be >= 0, got {size}")
    return size or None


def given(**flags: object) -> dict[str, object]:
    """The flags that were given: ``None`` means "the settings dataclass's default"."""
    return {k: v for k, v in flags.items() if v is not None}


def check_device(device: str) -> None:
    """Raise ``ValueError`` naming ``--device`` unless torch can use ``device`` here.

    ``cpu`` is accepted without importing torch. ``cuda[:N]`` needs a CUDA
    build of torch with a visible GPU ``N``; ``mps`` needs Apple's backend.
    """
    if device == "cpu":
        return
    import torch

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"--device {device!r}: not a torch device "
                         "(use cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: no CUDA GPU is available here (torch "
                             f"{torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); "
                             "use --device cpu")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"--device {device}: only {count} CUDA device(s) visible "
                             f"(cuda:0..cuda:{count - 1})")
    elif dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"--device {device}: the MPS backend is not available here; "
                             "use --device cpu")
    elif dev.type != "cpu":
        raise ValueError(f"--device {device}: geocorr runs on cpu, cuda or mps")


PART_WEIGHT_HELP = ("Share of the fused similarity given to the rendered part descriptor at "
                    "full stage-1 confidence (default 0.9, PartFusionSettings.part_weight).")
PART_CONFIDENCE_HELP = ("Scale the part weight per image by its stage-1 confidence (mask IoU, "
                        "vote margin, canonical alignment, symmetry); off: a constant weight.")


def part_fusion_settings(part_weight: float | None, confidence: bool = True):
    """``--part-weight`` / ``--part-confidence`` -> :class:`PartFusionSettings` (defaults there).

    Raises:
        ValueError: a part weight outside ``[0, 1]``, naming ``--part-weight``.
    """
    from geocorr.features.part_fusion import PartFusionSettings

    kw: dict = {} if confidence else {"confidence": None}
    if part_weight is not None:
        kw["part_weight"] = part_weight
    try:
        return PartFusionSettings(**kw)
    except ValueError as exc:
        raise ValueError(f"--part-weight: {exc}") from None


def print_pck(out: Console, result, title: str) -> None:
    """Print an :class:`~geocorr.evaluation.scorer.EvalResult` as eval and score do.

    The PCK table titled ``title`` and the twin-swap line on ``out``, the
    keypoint-group source line, and its warnings on stderr.
    """
    from geocorr.evaluation.tables import group_lines, pck_table, swap_line

    out.print(pck_table(result.report, title=title))
    line = swap_line(result.report)
    if line is not None:
        out.print(line)
    groups_line, group_warnings = group_lines(result.keypoint_groups)
    out.print(groups_line, markup=False)
    for w in group_warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")


def mesh_view_from_flags(mesh: Path | None, camera: Path | None, flag: str):
    """The :class:`~geocorr.matching.images.MeshView` of ``--meshN``/``--cameraN`` (or ``None``).

    Both or neither must be given; a camera that does not look like the
    library's frame gets a warning on stderr (:func:`geocorr.reconstruct.frame.check_frame`).
    """
    if (mesh is None) != (camera is None):
        raise ValueError(f"--mesh{flag} and --camera{flag} go together")
    if mesh is None:
        return None
    import numpy as np
    from rich.markup import escape

    from geocorr.geometry.camera import load_camera
    from geocorr.geometry.mesh import load_mesh
    from geocorr.matching.images import MeshView
    from geocorr.reconstruct.frame import check_frame

    m = load_mesh(mesh)
    cam = load_camera(camera)
    frame = check_frame(cam)
    if not frame.ok:
        console.print(f"[yellow]warning:[/yellow] {escape(frame.message(str(mesh)))}",
                      highlight=False)
    return MeshView(np.asarray(m.vertices), np.asarray(m.faces), cam)

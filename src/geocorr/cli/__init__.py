"""The ``geocorr`` command line.

Each command lives in its own module of this package and exposes
``register(app: typer.Typer) -> None``. Command modules only turn flags into
settings objects and call the library; heavy imports stay inside the command
functions so that ``geocorr --help`` is fast.

Exit codes: 0 success; 2 a usage error, bad input or an environment failure
(full disk, permission denied, unavailable ``--device``) reported as one
``error:`` line naming the file or argument; 1 an unexpected error (a bug,
with its traceback). See ``cli/_common.py``.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

app = typer.Typer(
    name="geocorr",
    help="3D-aware semantic correspondence: reconstruct, match, verify, train, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain click output: usage errors are one "Error: ..." line, never a
    # box re-wrapped to the terminal width (which splits long paths)
    rich_markup_mode=None,
)


@app.callback()
def _root(
    threads: int | None = typer.Option(
        None, "--threads", min=1,
        help="Threads for torch, numba, BLAS and OpenCV (before the command: geocorr --threads "
             "2 demo). Default: $OMP_NUM_THREADS if set, else 1, measured fastest on a shared "
             "2-core machine (benchmarks/RESULTS.md)."),
) -> None:
    """3D-aware semantic correspondence: reconstruct, match, verify, train, evaluate."""
    from geocorr.threads import set_threads

    set_threads(threads)


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_commands()


def main() -> None:
    """Console-script entry point."""
    app()

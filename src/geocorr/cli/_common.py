"""Helpers shared by command modules: turning library errors into clean exits."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from rich.console import Console

console = Console(stderr=True)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Report ``ValueError``/``FileNotFoundError`` (bad input) as one red line and exit 2."""
    try:
        yield
    except (ValueError, FileNotFoundError, NotADirectoryError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(code=2) from None

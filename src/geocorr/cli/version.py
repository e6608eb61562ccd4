"""``geocorr version``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def version() -> None:
        """Print the geocorr version."""
        from geocorr import __version__

        typer.echo(__version__)

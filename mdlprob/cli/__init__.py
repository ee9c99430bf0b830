"""Command-line interface: ``mdlprob demo | fit | impute | latent``."""

from __future__ import annotations

from ._app import app


def main() -> None:
    """Entry point of the ``mdlprob`` console script."""
    app()


__all__ = ["app", "main"]

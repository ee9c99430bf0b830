"""Command-line interface: ``mdlprob demo | fit | impute | latent | predict-outcome | head fit | head predict | bench``."""

from __future__ import annotations

from . import _outcomes  # noqa: F401 - registers `head` and `predict-outcome` on the app
from ._app import app


def main() -> None:
    """Entry point of the ``mdlprob`` console script."""
    app()


__all__ = ["app", "main"]

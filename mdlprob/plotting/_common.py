"""Shared plumbing of the figures: a new Figure or a caller's Axes, and crash-safe PNG writes."""

from __future__ import annotations

import os
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .._utils import atomic_path


def axes(ax: Axes | None, size: tuple[float, float] = (5.0, 4.0)) -> tuple[Figure, Axes]:
    """``ax``'s figure and ``ax``, or a new Figure (not registered with pyplot) with one Axes."""
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def save(fig: Figure, path: str | os.PathLike | None, **kwargs: Any) -> None:
    """Write ``fig`` as PNG to ``path`` atomically (nothing when ``path`` is None)."""
    if path is not None:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=kwargs.get("dpi", 110))

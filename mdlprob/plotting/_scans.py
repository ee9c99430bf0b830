"""Panels of scans: observed sequences, imputed mean and uncertainty, truth and error."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .._utils import atomic_path

_PANEL_INCHES = 1.6
_DPI = 100


def scan_panel(
    observed: Mapping[str, Any] | None,
    imputed_mean: Any,
    imputed_sd: Any,
    truth: Any | None = None,
    *,
    image_shape: Sequence[int],
    n_subjects: int = 4,
    label: str = "imputed",
    path: str | os.PathLike | None = None,
) -> Figure:
    """A grid of scans: one row per subject, one column per view.

    Columns, left to right: each observed sequence, the imputed mean, its sd map and, when
    ``truth`` is given, the true scan and the absolute error of the mean. Intensity panels
    share one grey scale; sd and error share one colour scale, with a colour bar.

    Parameters
    ----------
    observed
        Sequence name to the scans the model was given, ``(n_obs, C * H * W)`` (or
        ``(n_obs, C, H, W)``) with rows aligned with ``imputed_mean``; an all-NaN row marks
        a subject without that sequence (drawn as "absent"). None or empty: no such column.
    imputed_mean, imputed_sd
        Imputed mean and sd scans (``impute`` layers ``mean`` and ``std``), same layout.
    truth
        True scans of the imputed sequence (e.g. from ``hidden_truth``), same layout.
    image_shape
        ``(C, H, W)`` of one scan with C = 1 (grey) or 3 (RGB; sd and error are averaged
        over channels).
    n_subjects
        Number of rows: the first ``n_subjects`` observations (all if fewer).
    label
        Name of the imputed sequence in the column titles.
    path
        Where to write the figure as PNG (atomically: a failed write leaves any file there).

    Returns
    -------
    matplotlib.figure.Figure
        The figure, not registered with pyplot (show it in a notebook by leaving it as the
        cell's value, or save it with ``fig.savefig``).

    Raises
    ------
    ValueError
        On a bad ``image_shape``, ``n_subjects`` < 1, or arrays whose rows or pixels do not
        match ``imputed_mean``.
    """
    shape = _check_shape(image_shape)
    mean = _scans(imputed_mean, "imputed_mean", shape)
    n = mean.shape[0]
    sd = _scans(imputed_sd, "imputed_sd", shape, n)
    obs = {name: _scans(x, f"observed[{name!r}]", shape, n) for name, x in (observed or {}).items()}
    true = None if truth is None else _scans(truth, "truth", shape, n)
    if isinstance(n_subjects, bool) or not isinstance(n_subjects, (int, np.integer)) or n_subjects < 1:
        msg = f"Expected n_subjects to be an int >= 1, got {n_subjects!r}."
        raise ValueError(msg)
    rows = min(int(n_subjects), n)
    columns = [(name, x, "grey") for name, x in obs.items()]
    columns += [(f"{label} mean", mean, "grey"), (f"{label} sd", sd, "map")]
    if true is not None:
        columns += [(f"true {label}", true, "grey"), ("|error|", np.abs(mean - true), "map")]
    grey = _finite_range([x[:rows] for _, x, kind in columns if kind == "grey"])
    heat = (0.0, _finite_range([x[:rows] for _, x, kind in columns if kind == "map"])[1])
    fig, axes, bars = _grid(rows, len(columns))
    for j, (title, x, kind) in enumerate(columns):
        image = None
        for i in range(rows):
            ax = axes[i][j]
            if i == 0:
                ax.set_title(title, fontsize=9)
            if j == 0:
                ax.set_ylabel(f"subject {i}", fontsize=8)
            if np.isnan(x[i]).all():
                ax.text(0.5, 0.5, "absent", ha="center", va="center", transform=ax.transAxes, fontsize=8)
                continue
            image = _show(ax, x[i], kind, grey if kind == "grey" else heat)
        if kind == "map" and image is not None:
            bar = fig.colorbar(image, cax=fig.add_subplot(bars[j]), orientation="horizontal")
            bar.ax.tick_params(labelsize=7)
            bar.locator = MaxNLocator(nbins=3)
            bar.update_ticks()
    if path is not None:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png")
    return fig


def _grid(rows: int, cols: int):
    """Figure, ``rows x cols`` image axes, and a thin colour-bar slot under each column."""
    width, height = _PANEL_INCHES * cols + 0.3, _PANEL_INCHES * rows + 0.75
    fig = Figure(figsize=(width, height), dpi=_DPI)  # fixed margins: a layout engine costs seconds
    grid = fig.add_gridspec(rows + 1, cols, height_ratios=[1.0] * rows + [0.08], left=0.3 / width,
                            right=1.0 - 0.05 / width, bottom=0.3 / height, top=1.0 - 0.25 / height,
                            wspace=0.05, hspace=0.05)
    axes = [[fig.add_subplot(grid[i, j], xticks=[], yticks=[]) for j in range(cols)] for i in range(rows)]
    return fig, axes, [grid[rows, j] for j in range(cols)]


def _check_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(v) for v in np.asarray(image_shape).reshape(-1))
    if len(shape) != 3 or shape[0] not in (1, 3) or min(shape) < 1:
        msg = f"Expected image_shape (C, H, W) with C = 1 (grey) or 3 (RGB), got {tuple(np.asarray(image_shape))}."
        raise ValueError(msg)
    return shape


def _scans(x: Any, name: str, shape: tuple[int, int, int], n: int | None = None) -> np.ndarray:
    """``x`` as a float ``(n_obs, C, H, W)`` array, checked against ``shape`` and ``n`` rows."""
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    a = np.asarray(x, dtype=np.float64)
    size = int(np.prod(shape))
    if a.ndim < 2 or int(np.prod(a.shape[1:])) != size:
        msg = f"`{name}` must hold one scan of {size} pixels {shape} per row, got shape {a.shape}."
        raise ValueError(msg)
    if n is not None and a.shape[0] != n:
        msg = f"`{name}` must have one row per row of `imputed_mean` ({n}), got {a.shape[0]}."
        raise ValueError(msg)
    return a.reshape(a.shape[0], *shape)


def _finite_range(arrays: list[np.ndarray]) -> tuple[float, float]:
    values = np.concatenate([a[np.isfinite(a)] for a in arrays]) if arrays else np.empty(0)
    if values.size == 0:
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    return (low, high) if high > low else (low, low + 1.0)


def _show(ax, scan: np.ndarray, kind: str, limits: tuple[float, float]):
    if kind == "map":
        return ax.imshow(scan.mean(0), cmap="magma", vmin=limits[0], vmax=limits[1], interpolation="nearest")
    if scan.shape[0] == 3:
        rgb = np.clip((np.moveaxis(scan, 0, -1) - limits[0]) / (limits[1] - limits[0]), 0.0, 1.0)
        return ax.imshow(rgb, interpolation="nearest")
    return ax.imshow(scan[0], cmap="gray", vmin=limits[0], vmax=limits[1], interpolation="nearest")

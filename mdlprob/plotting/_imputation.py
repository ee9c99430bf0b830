"""Imputation figures: imputed vs true values with intervals, and interval calibration."""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._common import axes, save


def _arrays(truth: Any, imputed: Any, mask: Any | None) -> tuple[np.ndarray, np.ndarray]:
    truth = np.asarray(truth.toarray() if hasattr(truth, "toarray") else truth, dtype=np.float64)
    mean = np.asarray(imputed.layers["mean"], dtype=np.float64)
    if truth.shape != mean.shape:
        msg = f"Expected truth of shape {mean.shape} (the imputation's), got {truth.shape}."
        raise ValueError(msg)
    keep = np.isfinite(truth) if mask is None else np.asarray(mask, dtype=bool) & np.isfinite(truth)
    if keep.shape != truth.shape:
        msg = f"Expected mask of shape {truth.shape}, got {keep.shape}."
        raise ValueError(msg)
    if not keep.any():
        msg = "No entry to score: mask (and the finite entries of truth) select nothing."
        raise ValueError(msg)
    return truth, keep


def imputation(truth: Any, imputed: Any, *, mask: Any | None = None, feature: str | int | None = None,
               level: float = 0.9, ax: Axes | None = None, path: str | os.PathLike | None = None) -> Figure:
    """Imputed mean against the true value of one feature, with central intervals.

    Parameters
    ----------
    truth
        True values ``(n_obs, n_vars)`` (e.g. from :func:`mdlprob.datasets.hidden_truth`).
    imputed
        The AnnData of ``model.impute``: layers ``mean`` and the quantiles of ``level``.
    mask
        Entries to draw (e.g. the hidden ones); default every finite truth.
    feature
        Name or position of the feature; default the one whose imputation correlates best.
    level
        Interval drawn: layers ``q{(1-level)/2}`` and ``q{(1+level)/2}`` (``q05``/``q95`` for 0.9).
    ax, path
        Draw into this Axes (default a new Figure); write a PNG there.

    Returns
    -------
    The Figure; points are blue when the interval covers the truth, red otherwise.
    """
    t_all, keep = _arrays(truth, imputed, mask)
    lo_name, hi_name = _layer(imputed, (1 - level) / 2), _layer(imputed, (1 + level) / 2)
    mean_all = np.asarray(imputed.layers["mean"], dtype=np.float64)
    if feature is None:
        r = [np.corrcoef(t_all[keep[:, g], g], mean_all[keep[:, g], g])[0, 1] if keep[:, g].sum() > 2 else np.nan
             for g in range(t_all.shape[1])]
        g = int(np.nanargmax(r)) if np.isfinite(r).any() else 0
    else:
        g = list(imputed.var_names).index(feature) if isinstance(feature, str) else int(feature)
    rows = keep[:, g]
    t, m = t_all[rows, g], mean_all[rows, g]
    lo = np.asarray(imputed.layers[lo_name], dtype=np.float64)[rows, g]
    hi = np.asarray(imputed.layers[hi_name], dtype=np.float64)[rows, g]
    inside = (t >= lo) & (t <= hi)
    fig, ax = axes(ax)
    ax.errorbar(t, m, yerr=[np.maximum(m - lo, 0), np.maximum(hi - m, 0)], fmt="none", ecolor="0.75", lw=0.8, zorder=1)
    ax.scatter(t[inside], m[inside], s=12, c="tab:blue", label=f"inside {level:.0%} interval", zorder=2)
    ax.scatter(t[~inside], m[~inside], s=12, c="tab:red", label="outside", zorder=2)
    lims = [float(min(t.min(), lo.min())), float(max(t.max(), hi.max()))]
    ax.plot(lims, lims, "k--", lw=0.8)
    r_g = np.corrcoef(t, m)[0, 1] if len(t) > 2 else np.nan
    ax.set(xlabel="true value", ylabel=f"imputed mean, {level:.0%} interval",
           title=f"{imputed.var_names[g]}: r = {r_g:.2f}, coverage {inside.mean():.2f}")
    ax.legend(fontsize=8, loc="upper left")
    save(fig, path)
    return fig


def calibration(truth: Any, imputed: Any, *, mask: Any | None = None, label: str = "mdlprob",
                ax: Axes | None = None, path: str | os.PathLike | None = None) -> Figure:
    """Empirical against nominal coverage of every central interval the imputation holds.

    Each pair of quantile layers ``q{a}``/``q{1-a}`` of ``imputed`` (e.g. from
    ``model.impute(..., quantiles=(0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95))``) gives one point:
    the share of masked true values inside it against its nominal level ``1 - 2a``.
    Points on the diagonal are calibrated; below it, intervals are too narrow.

    Parameters
    ----------
    truth, mask
        As for :func:`imputation`.
    label
        Legend entry (draw several imputations into one ``ax``).
    ax, path
        Draw into this Axes (default a new Figure); write a PNG there.
    """
    t, keep = _arrays(truth, imputed, mask)
    levels = sorted(_quantile_layers(imputed))
    pairs = [(q, _layer(imputed, 1 - q)) for q in levels if q < 0.5 and _has(imputed, 1 - q)]
    if not pairs:
        msg = ("The imputation holds no pair of symmetric quantile layers (q05/q95, ...); impute with "
               "quantiles=(0.05, 0.25, 0.75, 0.95) or more.")
        raise ValueError(msg)
    nominal, empirical = [], []
    for q, hi_name in pairs:
        lo = np.asarray(imputed.layers[_layer(imputed, q)], dtype=np.float64)
        hi = np.asarray(imputed.layers[hi_name], dtype=np.float64)
        nominal.append(1 - 2 * q)
        empirical.append(float(((t >= lo) & (t <= hi))[keep].mean()))
    fig, ax = axes(ax, (4.2, 4.0))
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.plot(nominal, empirical, "o-", label=label)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="nominal coverage", ylabel="empirical coverage",
           title=f"Interval calibration ({int(keep.sum()):,} entries)")
    ax.legend(fontsize=8, loc="upper left")
    save(fig, path)
    return fig


def _quantile_layers(imputed: Any) -> dict[float, str]:
    out = {}
    for name in imputed.layers:
        match = re.fullmatch(r"q(\d+(?:\.\d+)?)", name)
        if match:
            out[round(float(match.group(1)) / 100, 6)] = name
    return out


def _has(imputed: Any, q: float) -> bool:
    return round(q, 6) in _quantile_layers(imputed)


def _layer(imputed: Any, q: float) -> str:
    layers = _quantile_layers(imputed)
    if round(q, 6) not in layers:
        msg = (f"The imputation has no layer for quantile {q:g} (it has {sorted(layers.values())}); "
               f"impute with quantiles that include {q:g}.")
        raise ValueError(msg)
    return layers[round(q, 6)]

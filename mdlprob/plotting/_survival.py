"""Survival curves with bands, by group, beside the Kaplan–Meier estimate."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._common import axes, save


def survival(times: Any, surv: Any, lower: Any | None = None, upper: Any | None = None, *,
             groups: Any | None = None, observed: tuple[Any, Any] | None = None, labels: Sequence[str] | None = None,
             xlabel: str = "time", ax: Axes | None = None, path: str | os.PathLike | None = None) -> Figure:
    """Mean predicted survival curve per group with its band, and the Kaplan–Meier curve.

    Parameters
    ----------
    times
        Evaluation times ``(n_times,)``.
    surv, lower, upper
        Curves ``(n_obs, n_times)``, e.g. ``LatentHead.predict_survival_function(mdata, times,
        return_interval=True)``; a group's curve and band are the means over its observations.
    groups
        Group of each observation (e.g. ``"RNA measured"`` / ``"RNA missing"``); default one group.
    observed
        ``(time, event)`` arrays of the same observations: their Kaplan–Meier curve is drawn in grey,
        and the x axis runs to the last observed time.
    labels
        Order (and subset) of the groups to draw.
    ax, path
        Draw into this Axes (default a new Figure); write a PNG there.
    """
    t = np.asarray(times, dtype=float)
    surv = np.atleast_2d(np.asarray(surv, dtype=float))
    if surv.shape[1] != len(t):
        msg = f"Expected surv of shape (n_obs, {len(t)}) (one column per time), got {surv.shape}."
        raise ValueError(msg)
    g = np.asarray(groups) if groups is not None else np.full(surv.shape[0], "all")
    if len(g) != surv.shape[0]:
        msg = f"Expected one group per observation ({surv.shape[0]}), got {len(g)}."
        raise ValueError(msg)
    names = list(labels) if labels is not None else list(dict.fromkeys(g.tolist()))
    fig, ax = axes(ax, (6.0, 4.2))
    if observed is not None:
        from sksurv.nonparametric import kaplan_meier_estimator

        time, event = (np.asarray(a) for a in observed)
        km_t, km_s = kaplan_meier_estimator(event.astype(bool), time.astype(float))
        ax.step(km_t, km_s, where="post", color="0.4", label="Kaplan–Meier (observed)")
        ax.set_xlim(0, float(time.max()))
    colours = [f"C{k}" for k in range(10)]
    for k, name in enumerate(names):
        rows = g == name
        n = int(rows.sum())
        ax.plot(t, surv[rows].mean(0), color=colours[k % 10], label=f"{name} (n={n})")
        if lower is not None and upper is not None:
            lo, hi = np.asarray(lower, dtype=float)[rows].mean(0), np.asarray(upper, dtype=float)[rows].mean(0)
            ax.fill_between(t, lo, hi, color=colours[k % 10], alpha=0.18, lw=0)
    ax.set(xlabel=xlabel, ylabel="survival probability", ylim=(0, 1.02), title="Predicted survival by group")
    ax.legend(fontsize=8, loc="lower left")
    save(fig, path)
    return fig

"""Which modality matters and which to measure next: acquisition value, modality Shapley values, cost curve."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ._common import axes, save

_GAINS = ("decision_change", "interval_width_gain", "latent_entropy_gain")
_LABELS = {"decision_change": "probability the decision changes", "interval_width_gain": "expected interval narrowing",
           "latent_entropy_gain": "expected latent entropy reduction (nats)"}


def acquisition_value(gains: pd.DataFrame, *, by: str | None = None, top: int = 30, ax: Axes | None = None,
                      path: str | os.PathLike | None = None) -> Figure:
    """Per-observation value of measuring a view: the ``top`` observations, best first.

    Parameters
    ----------
    gains
        The output of ``mdlprob.interpret.expected_information_gain`` (one modality) or of
        ``acquisition_table`` (bars coloured by modality, one per observation and view).
    by
        The gain shown (default the decision change when there is a head, else the latent
        entropy reduction).
    top
        Observations (rows) shown.
    ax, path
        Draw into this Axes (default a new Figure); write a PNG there.
    """
    if not isinstance(gains, pd.DataFrame) or "latent_entropy_gain" not in gains:
        msg = "Expected gains to be the output of expected_information_gain or acquisition_table."
        raise ValueError(msg)
    col = by or next(c for c in _GAINS if c in gains)
    if col not in gains:
        msg = f"Expected by to be one of {[c for c in _GAINS if c in gains]}, got {by!r}."
        raise ValueError(msg)
    frame = gains if "obs" in gains else gains.rename_axis("obs").reset_index()
    frame = frame.sort_values(col, ascending=False, kind="stable").head(top)
    fig, ax = axes(ax, (6.0, max(3.0, 0.22 * len(frame) + 1.0)))
    labels = frame["obs"].astype(str) + (" · " + frame["modality"].astype(str) if "modality" in frame else "")
    mods = list(dict.fromkeys(frame["modality"])) if "modality" in frame else [gains.attrs.get("modality", "view")]
    colours = {m: f"C{k}" for k, m in enumerate(mods)}
    colour = [colours[m] for m in frame["modality"]] if "modality" in frame else "C0"
    y = np.arange(len(frame))[::-1]
    ax.barh(y, frame[col].to_numpy(dtype=float), color=colour)
    ax.set_yticks(y, labels, fontsize=7)
    ax.legend(handles=[Patch(color=c, label=m) for m, c in colours.items()], fontsize=8, title="view",
              loc="lower right")
    ax.set(xlabel=_LABELS[col], title="Value of measuring a missing view")
    save(fig, path)
    return fig


def _contributions(contrib: Any) -> None:
    if not all(hasattr(contrib, a) for a in ("subsets", "shapley", "metric")):
        msg = "Expected the result of mdlprob.interpret.modality_contributions."
        raise ValueError(msg)


def shapley(contrib: Any, *, ax: Axes | None = None, path: str | os.PathLike | None = None) -> Figure:
    """Shapley value of each modality for the metric, with its bootstrap interval.

    Parameters
    ----------
    contrib
        The result of ``mdlprob.interpret.modality_contributions``.
    ax, path
        Draw into this Axes (default a new Figure); write a PNG there.
    """
    _contributions(contrib)
    table = contrib.shapley.sort_values("value", kind="stable")
    fig, ax = axes(ax, (5.0, 1.0 + 0.5 * len(table)))
    value = table["value"].to_numpy(dtype=float)
    err = np.abs(np.vstack([value - table["lower"].to_numpy(dtype=float), table["upper"].to_numpy(dtype=float) - value]))
    y = np.arange(len(table))
    ax.barh(y, value, xerr=np.nan_to_num(err), color=["C0" if v >= 0 else "C3" for v in value], capsize=3)
    ax.set_yticks(y, table.index.astype(str))
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set(xlabel=f"Shapley value ({contrib.metric})", title=f"Modality contributions ({contrib.level:.0%} intervals)")
    save(fig, path)
    return fig


def cost_curve(contrib: Any, *, x: str = "n_modalities", ax: Axes | None = None,
               path: str | os.PathLike | None = None) -> Figure:
    """The metric of every subset of modalities against its size (or cost), the best of each size joined.

    Parameters
    ----------
    contrib
        The result of ``mdlprob.interpret.modality_contributions``.
    x
        ``"n_modalities"`` or ``"cost"`` on the horizontal axis.
    ax, path
        Draw into this Axes (default a new Figure); write a PNG there.
    """
    _contributions(contrib)
    if x not in ("n_modalities", "cost"):
        msg = f"Expected x to be 'n_modalities' or 'cost', got {x!r}."
        raise ValueError(msg)
    fig, ax = axes(ax, (5.5, 4.0))
    subsets = contrib.subsets
    ax.scatter(subsets[x], subsets["value"], color="0.6", s=14, label="every subset", zorder=2)
    best = contrib.cost_curve()
    xs = best.index.to_numpy() if x == "n_modalities" else best["cost"].to_numpy()
    ax.fill_between(xs, best["lower"], best["upper"], color="C0", alpha=0.2, lw=0)
    ax.plot(xs, best["value"], "o-", color="C0", label="best of each size", zorder=3)
    for xi, (name, v) in zip(xs, zip(best["subset"], best["value"], strict=True), strict=True):
        ax.annotate(name, (xi, v), textcoords="offset points", xytext=(4, 4), fontsize=7)
    if x == "n_modalities":
        ax.set_xticks(xs)
    ax.set(xlabel="number of modalities" if x == "n_modalities" else "cost", ylabel=contrib.metric,
           title="Metric against the modalities measured")
    ax.legend(fontsize=8, loc="lower right")
    save(fig, path)
    return fig

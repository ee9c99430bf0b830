"""Training curves."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._common import axes, save


def history(model_or_history: Any, *, ax: Axes | None = None, path: str | os.PathLike | None = None) -> Figure:
    """Training and validation loss per epoch, with the epoch early stopping kept.

    Parameters
    ----------
    model_or_history
        A trained model (its ``history_``) or such a dictionary (``train_loss``, ``val_loss``,
        optional ``best_epoch``, ``diverged_epoch``).
    ax, path
        Draw into this Axes (default a new Figure); write a PNG there.
    """
    hist = getattr(model_or_history, "history_", model_or_history)
    if not isinstance(hist, dict) or not hist.get("train_loss"):
        msg = "Expected a trained model or its history_ (a dict with a non-empty 'train_loss')."
        raise ValueError(msg)
    fig, ax = axes(ax)
    train = np.asarray(hist["train_loss"], dtype=float)
    ax.plot(np.arange(1, len(train) + 1), train, color="tab:blue", label="training")
    val = np.asarray(hist.get("val_loss") or [], dtype=float)
    if len(val):
        ax.plot(np.arange(len(train) - len(val) + 1, len(train) + 1), val, color="tab:orange", label="validation")
    if hist.get("best_epoch"):
        best = int(hist["best_epoch"][-1]) + len(train) - len(val)
        ax.axvline(best, color="0.3", ls=":", lw=1, label=f"kept (epoch {best})")
    if hist.get("diverged_epoch"):
        ax.axvline(int(hist["diverged_epoch"][-1]), color="tab:red", ls="--", lw=1, label="diverged")
    finite = np.concatenate([train[np.isfinite(train)], val[np.isfinite(val)]])
    if finite.size > 10:  # the first epochs' loss dwarfs the rest: zoom on what matters
        ax.set_ylim(np.percentile(finite, 0.5) - 0.02 * np.ptp(finite), np.percentile(finite, 90))
    ax.set(xlabel="epoch", ylabel="loss per observation", title="Training curve")
    ax.legend(fontsize=8)
    save(fig, path)
    return fig

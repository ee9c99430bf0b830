"""Small MuData helpers shared by the scenarios, methods and scoring of the benchmark."""

from __future__ import annotations

import mudata as md
import numpy as np

from ..data._table import TYPE_KEY


def dense_values(mdata: md.MuData, modality: str) -> np.ndarray:
    """Values of ``modality`` for every observation of ``mdata``, NaN rows where it is absent.

    Returns
    -------
    Float64 array ``(n_obs, n_vars)`` in the order of ``mdata.obs_names``.
    """
    if modality not in mdata.mod:
        msg = f"Modality {modality!r} is not in the MuData; it has {list(mdata.mod)}."
        raise KeyError(msg)
    X = np.full((mdata.n_obs, mdata.mod[modality].n_vars), np.nan)
    rows = np.asarray(mdata.obsmap[modality]).astype(np.int64) - 1
    vals = mdata.mod[modality].X
    vals = vals.toarray() if hasattr(vals, "toarray") else np.asarray(vals)
    X[rows >= 0] = np.asarray(vals, dtype=np.float64)[rows[rows >= 0]]
    return X


def presence(mdata: md.MuData, modality: str) -> np.ndarray:
    """Bool ``(n_obs,)``: which observations hold ``modality``."""
    return np.asarray(mdata.obsmap[modality]) > 0


def continuous_columns(mdata: md.MuData, modality: str) -> np.ndarray:
    """Bool ``(n_vars,)``: columns that are not categorical codes (those are not scored as numbers)."""
    var = mdata.mod[modality].var
    if TYPE_KEY not in var:
        return np.ones(var.shape[0], dtype=bool)
    return (var[TYPE_KEY] != "categorical").to_numpy()

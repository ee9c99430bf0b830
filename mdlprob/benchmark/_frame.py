"""Small MuData helpers shared by the scenarios, methods and scoring of the benchmark."""

from __future__ import annotations

import mudata as md
import numpy as np

from ..data._mudata import dense_values, presence
from ..data._table import TYPE_KEY

__all__ = ["continuous_columns", "dense_values", "presence"]


def continuous_columns(mdata: md.MuData, modality: str) -> np.ndarray:
    """Bool ``(n_vars,)``: columns that are not categorical codes (those are not scored as numbers)."""
    var = mdata.mod[modality].var
    if TYPE_KEY not in var:
        return np.ones(var.shape[0], dtype=bool)
    return (var[TYPE_KEY] != "categorical").to_numpy()

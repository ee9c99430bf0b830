"""Covariates read from ``mdata.obs``: a batch, other categorical and continuous covariates.

Models condition their encoders and decoders on them (a conditional VAE, as scVI does with
its batch). Every observation gets one vector: the one-hot codes of each categorical
covariate (the batch first), then the continuous covariates standardised with their
training mean and sd. The registry records the categories, so a category never seen at
training raises an error instead of being read as another one's code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import RegistrationError

_MAX_NAMED_ROWS = 5


def check_covariates(mdata, *, batch_key: str | None, categorical_covariate_keys: Sequence[str] | None,
                     continuous_covariate_keys: Sequence[str] | None) -> dict[str, Any] | None:
    """Validate the covariate arguments of :func:`setup_mudata` and return their registry entry.

    The entry is ``{"batch_key", "categorical_keys", "categories": {key: labels},
    "continuous_keys", "continuous_mean", "continuous_sd"}`` (flat lists and dicts, so it
    survives an ``.h5mu`` round trip) with the batch (if any) the first categorical key,
    or ``None`` when no covariate is given.
    """
    cat_keys = _keys("categorical_covariate_keys", categorical_covariate_keys)
    cont_keys = _keys("continuous_covariate_keys", continuous_covariate_keys)
    if batch_key is not None and (not isinstance(batch_key, str) or not batch_key):
        msg = f"Expected batch_key to be the name of a column of mdata.obs (a non-empty str), got {batch_key!r}."
        raise TypeError(msg)
    keys = ([batch_key] if batch_key else []) + cat_keys
    dup = sorted({k for k in keys + cont_keys if (keys + cont_keys).count(k) > 1})
    if dup:
        msg = (f"Covariate columns {dup} are given more than once (batch_key, categorical_covariate_keys and "
               "continuous_covariate_keys must name distinct columns).")
        raise ValueError(msg)
    if not keys and not cont_keys:
        return None
    absent = [k for k in keys + cont_keys if k not in mdata.obs.columns]
    if absent:
        msg = f"Covariate columns {absent} are not columns of mdata.obs; available: {list(mdata.obs.columns)[:20]}."
        raise KeyError(msg)
    categories = {}
    for key in keys:
        values = categorical_values(mdata.obs, key)
        column = mdata.obs[key]
        order = [str(c) for c in column.cat.categories] if isinstance(column.dtype, pd.CategoricalDtype) else None
        seen = set(values)
        categories[key] = [c for c in order if c in seen] if order is not None else sorted(seen)
    means, sds = [], []
    for key in cont_keys:
        values = _continuous_values(mdata.obs, key)
        sd = float(values.std())
        means.append(float(values.mean()))
        sds.append(sd if sd > 1e-8 else 1.0)
    return {"batch_key": batch_key or "", "categorical_keys": keys, "categories": categories,
            "continuous_keys": cont_keys, "continuous_mean": means, "continuous_sd": sds}


def n_covariates(entry: Mapping[str, Any] | None) -> int:
    """Width of the covariate vector: one column per category of each categorical covariate, one per continuous."""
    if not entry:
        return 0
    return sum(len(entry["categories"][k]) for k in entry["categorical_keys"]) + len(entry["continuous_keys"])


def batch_column(entry: Mapping[str, Any] | None, batch: Any) -> tuple[slice, int]:
    """Columns of the batch's one-hot block in the covariate vector, and the column of category ``batch``.

    Raises
    ------
    ValueError
        No batch was registered, or ``batch`` is not one of its training categories.
    """
    if not entry or not entry.get("batch_key"):
        msg = ("transform_batch needs a batch: register one with setup_mudata(mdata, ..., batch_key='batch') "
               "before building the model.")
        raise ValueError(msg)
    categories = entry["categories"][entry["batch_key"]]
    if str(batch) not in categories:
        msg = (f"Expected transform_batch to be one of the training batches of {entry['batch_key']!r} "
               f"({categories}), got {batch!r}.")
        raise ValueError(msg)
    return slice(0, len(categories)), categories.index(str(batch))


def observation_batches(tensors, entry: Mapping[str, Any]) -> np.ndarray:
    """Each observation's batch (its label) from the one-hot block of ``tensors.covariates``."""
    categories = entry["categories"][entry["batch_key"]]
    codes = tensors.covariates[:, : len(categories)].argmax(1).cpu().numpy()
    return np.asarray(categories, dtype=object)[codes]


def batch_support(tensors, registry: Mapping[str, Any]) -> dict[str, list[str]]:
    """Modality to the batches in which some observation of ``tensors`` has it (empty without a batch)."""
    entry = registry.get("covariates")
    if not entry or not entry.get("batch_key"):
        return {}
    batches = observation_batches(tensors, entry)
    presence = tensors.presence.cpu().numpy()
    return {mod: sorted({str(b) for b in batches[presence[:, j]]}) for j, mod in enumerate(registry["modalities"])}


def covariate_array(obs: pd.DataFrame, entry: Mapping[str, Any]) -> np.ndarray:
    """The ``(n_obs, n_covariates)`` float32 covariate vectors of ``obs`` under the registry ``entry``.

    Raises
    ------
    KeyError
        A covariate column is absent.
    RegistrationError
        A categorical covariate holds categories the model never saw at training.
    ValueError
        A missing (NaN) categorical value, or a non-finite continuous one; the message names the rows.
    """
    blocks = []
    for key in entry["categorical_keys"]:
        categories = entry["categories"][key]
        _require(obs, key)
        values = categorical_values(obs, key)
        unseen = sorted(set(values) - set(categories))
        if unseen:
            msg = (f"Covariate column {key!r} of mdata.obs has categories the model never saw at training: "
                   f"{unseen[:10]} (it knows {categories}). Map them to known categories, or train a model on "
                   "data that include them.")
            raise RegistrationError(msg)
        lookup = {c: i for i, c in enumerate(categories)}
        codes = np.fromiter((lookup[v] for v in values), dtype=np.int64, count=len(values))
        block = np.zeros((len(obs), len(categories)), dtype=np.float32)
        block[np.arange(len(obs)), codes] = 1.0
        blocks.append(block)
    for key, mean, sd in zip(entry["continuous_keys"], entry["continuous_mean"], entry["continuous_sd"], strict=True):
        _require(obs, key)
        values = _continuous_values(obs, key)
        blocks.append(((values - mean) / sd).astype(np.float32)[:, None])
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(obs), 0), dtype=np.float32)


def _keys(name: str, keys: Sequence[str] | None) -> list[str]:
    if keys is None:
        return []
    if isinstance(keys, str) or not all(isinstance(k, str) and k for k in keys):
        msg = f"Expected {name} to be a list of column names of mdata.obs, got {keys!r}; e.g. {name}=[{str(keys)!r}]."
        raise TypeError(msg)
    return list(keys)


def _require(obs: pd.DataFrame, key: str) -> None:
    if key not in obs.columns:
        msg = (f"Covariate column {key!r} is not in mdata.obs, but the model was trained with it; add it "
               f"(mdata.obs[{key!r}] = ...). Available: {list(obs.columns)[:20]}.")
        raise KeyError(msg)


def _rows(obs: pd.DataFrame, bad: np.ndarray) -> str:
    names = [str(o) for o in obs.index[bad][:_MAX_NAMED_ROWS]]
    return f"{int(bad.sum())} row(s) ({', '.join(names)}{', ...' if bad.sum() > _MAX_NAMED_ROWS else ''})"


def categorical_values(obs: pd.DataFrame, key: str) -> list[str]:
    """The column's values as strings; a missing value raises an error naming the rows."""
    column = obs[key]
    missing = column.isna().to_numpy()
    if missing.any():
        msg = (f"Covariate column {key!r} of mdata.obs is missing (NaN) for {_rows(obs, missing)}; a batch or "
               "categorical covariate must be known for every observation. Fill it (e.g. with an 'unknown' "
               "category) or drop those observations.")
        raise ValueError(msg)
    return [str(v) for v in column.astype(object).tolist()]


def _continuous_values(obs: pd.DataFrame, key: str) -> np.ndarray:
    column = obs[key]
    if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
        msg = (f"Continuous covariate column {key!r} of mdata.obs holds {column.dtype} values; expected numbers. "
               f"Pass it in categorical_covariate_keys if it is categorical.")
        raise TypeError(msg)
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        msg = (f"Continuous covariate column {key!r} of mdata.obs is missing or infinite for {_rows(obs, bad)}; "
               "covariates must be finite for every observation. Impute them or drop those observations.")
        raise ValueError(msg)
    return values

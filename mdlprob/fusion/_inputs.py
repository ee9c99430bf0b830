"""Inputs of the fusion baselines: validation, NaN-aware standardisation, MuData conversion.

``X`` is a mapping modality name → 2-D float array ``(n_obs, p_m)``; which observation has
which modality is given explicitly by ``presence`` (modality → bool ``(n_obs,)``), never
guessed from the values. Rows of absent modalities are ignored (they may hold anything).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from ..data._setup import get_matrix, get_registry, presence_mask
from ..distributions import LIKELIHOODS
from ..exceptions import DataWarning

Arrays = dict[str, np.ndarray]


def check_inputs(X: Any, presence: Any, *, modalities: list[str] | None = None) -> tuple[Arrays, Arrays]:
    """Validate ``X`` and ``presence``; return float64 arrays and bool masks per modality.

    At fit (``modalities=None``) every modality of ``X`` is used. At prediction,
    ``modalities`` lists those seen at fit: another name raises, and a fitted modality left
    out of ``X`` counts as absent for every observation (its block is filled with NaN).
    """
    if not isinstance(X, Mapping) or not X:
        msg = (f"Expected `X` to be a non-empty dict modality name -> 2-D array (n_obs, n_vars), "
               f"got {type(X).__name__}. For a MuData use mdlprob.fusion.fusion_inputs(mdata).")
        raise TypeError(msg)
    if modalities is not None:
        unknown = [m for m in X if m not in modalities]
        if unknown:
            msg = f"`X` holds modalities {unknown} that were not seen at fit; expected a subset of {modalities}."
            raise KeyError(msg)
    arrays = {str(m): _as_matrix(v, m) for m, v in X.items()}
    n_obs = {m: a.shape[0] for m, a in arrays.items()}
    if len(set(n_obs.values())) != 1:
        msg = f"Expected every modality of `X` to have the same number of rows (n_obs), got {n_obs}."
        raise ValueError(msg)
    n = next(iter(n_obs.values()))
    if n == 0:
        msg = "Expected at least one observation in `X`, got 0 rows."
        raise ValueError(msg)
    masks = _check_presence(presence, arrays, n)
    for m in modalities or []:
        if m not in arrays:
            arrays[m] = np.full((n, 0), np.nan)  # width fixed by the standardiser
            masks[m] = np.zeros(n, dtype=bool)
    order = modalities or list(arrays)
    arrays = {m: arrays[m] for m in order}
    masks = {m: masks[m] for m in order}
    none = ~np.column_stack(list(masks.values())).any(axis=1)
    if none.any():
        msg = (f"{int(none.sum())} observation(s) have no present modality (e.g. rows "
               f"{np.flatnonzero(none)[:5].tolist()}); every observation needs at least one. "
               "Drop them or mark a modality present in `presence`.")
        raise ValueError(msg)
    for m, a in arrays.items():
        if a.shape[1] and np.isinf(a[masks[m]]).any():
            msg = f"Modality {m!r} of `X` contains infinite values in present rows; use NaN for missing entries."
            raise ValueError(msg)
    return arrays, masks


def _as_matrix(value: Any, mod: str) -> np.ndarray:
    if sp.issparse(value):
        value = value.toarray()
    elif isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        msg = f"Expected modality {mod!r} of `X` to hold numbers, got dtype {arr.dtype}."
        raise TypeError(msg)
    if arr.ndim != 2 or arr.shape[1] == 0:
        msg = f"Expected modality {mod!r} of `X` to be a 2-D array (n_obs, n_vars) with n_vars >= 1, got shape {arr.shape}."
        raise ValueError(msg)
    return arr.astype(np.float64)


def _check_presence(presence: Any, arrays: Arrays, n: int) -> Arrays:
    if presence is None:
        return {m: np.ones(n, dtype=bool) for m in arrays}
    if not isinstance(presence, Mapping):
        msg = f"Expected `presence` to be a dict modality name -> bool array (n_obs,), got {type(presence).__name__}."
        raise TypeError(msg)
    unknown = [m for m in presence if m not in arrays]
    if unknown:
        msg = f"`presence` names modalities {unknown} that are not in `X` ({list(arrays)})."
        raise KeyError(msg)
    masks = {}
    for m in arrays:
        mask = np.asarray(presence.get(m, np.ones(n, dtype=bool)))
        if mask.dtype != bool or mask.shape != (n,):
            msg = f"Expected presence[{m!r}] to be a boolean array of shape ({n},), got {mask.dtype} {mask.shape}."
            raise ValueError(msg)
        masks[m] = mask
    return masks


class Standardiser:
    """NaN-aware standardisation with training statistics over the present rows.

    ``transform`` returns, per modality, float32 ``(n_obs, p_m + k_m)``: standardised values
    with NaN entries set to 0 (the training mean), followed by ``k_m`` missing-entry
    indicators for the features that had NaN in the training data (as
    ``SimpleImputer(add_indicator=True)``). Rows of absent modalities are all zero.
    """

    def fit(self, arrays: Arrays, masks: Arrays) -> Standardiser:
        self.mean_, self.scale_, self.indicator_ = {}, {}, {}
        for m, a in arrays.items():
            rows = a[masks[m]]
            if rows.shape[0] == 0:
                msg = (f"Modality {m!r} is absent for every training observation; it cannot be learned. "
                       "Drop it from `X` or provide observations that have it.")
                raise ValueError(msg)
            nan = np.isnan(rows)
            count = (~nan).sum(axis=0)
            if (count == 0).any():
                names = np.flatnonzero(count == 0)[:5].tolist()
                msg = (f"Modality {m!r}: {int((count == 0).sum())} feature(s) are NaN in every present training row "
                       f"(columns {names}); they are set to 0 and carry no information.")
                warnings.warn(msg, DataWarning, stacklevel=4)
            filled = np.where(nan, 0.0, rows)
            mean = filled.sum(axis=0) / np.maximum(count, 1)
            var = (np.where(nan, 0.0, rows - mean) ** 2).sum(axis=0) / np.maximum(count, 1)
            scale = np.sqrt(var)
            self.mean_[m] = mean
            self.scale_[m] = np.where(scale > 1e-12, scale, 1.0)
            self.indicator_[m] = np.flatnonzero(nan.any(axis=0))
        return self

    def n_inputs(self, mod: str) -> int:
        """Width of a modality's block after :meth:`transform`."""
        return self.mean_[mod].size + self.indicator_[mod].size

    def transform(self, arrays: Arrays, masks: Arrays) -> dict[str, torch.Tensor]:
        out = {}
        for m in self.mean_:
            present = masks[m]
            block = np.zeros((present.size, self.n_inputs(m)), dtype=np.float32)
            if present.any():
                rows = arrays[m][present]
                if rows.shape[1] != self.mean_[m].size:
                    msg = (f"Modality {m!r} of `X` has {rows.shape[1]} features, but the model was fitted "
                           f"with {self.mean_[m].size}.")
                    raise ValueError(msg)
                nan = np.isnan(rows)
                z = np.where(nan, 0.0, (rows - self.mean_[m]) / self.scale_[m])
                block[present] = np.hstack([z, nan[:, self.indicator_[m]]])
            out[m] = torch.from_numpy(block)
        return out


def fusion_inputs(mdata: Any, *, log1p: bool = True) -> tuple[Arrays, Arrays]:
    """``X`` and ``presence`` of a MuData registered with :func:`mdlprob.data.setup_mudata`.

    Parameters
    ----------
    mdata
        Registered data; each registered modality becomes one block of ``X``.
    log1p
        Apply :math:`\\log(1 + x)` to count modalities (likelihoods ``nb``, ``zinb``, ``poisson``).

    Returns
    -------
    X
        Modality → float64 ``(n_obs, p_m)`` aligned to ``mdata.obs_names``; rows of absent
        observations are NaN. Categorical columns of ``mixed`` modalities are one-hot encoded
        (``n_categories`` columns, NaN where the code is missing).
    presence
        Modality → bool ``(n_obs,)``, from :func:`mdlprob.data.presence_mask`.

    Raises
    ------
    RegistrationError
        ``mdata`` was not registered with ``setup_mudata``.
    """
    registry = get_registry(mdata)
    pres = presence_mask(mdata, registry)
    X, presence = {}, {}
    for j, (mod, entry) in enumerate(registry["modalities"].items()):
        block = np.full((mdata.n_obs, int(entry["n_vars"])), np.nan)
        if mod in mdata.mod:
            values = get_matrix(mdata.mod[mod], entry.get("layer") or None, mod)
            rows = np.asarray(mdata.obsmap[mod]).astype(np.int64) - 1
            keep = pres[:, j]
            sub = values[rows[keep]]
            block[keep] = sub.toarray() if sp.issparse(sub) else np.asarray(sub, dtype=np.float64)
        if log1p and LIKELIHOODS[entry["likelihood"]].is_count:
            block = np.log1p(block)
        if LIKELIHOODS[entry["likelihood"]].is_table:
            block = _one_hot(block, entry["column_types"], entry["n_categories"])
        X[mod], presence[mod] = block, pres[:, j].copy()
    return X, presence


def _one_hot(block: np.ndarray, types: list[str], n_categories: list[int]) -> np.ndarray:
    cols = []
    for j, (kind, k) in enumerate(zip(types, n_categories, strict=True)):
        col = block[:, j]
        if kind != "categorical":
            cols.append(col[:, None])
            continue
        codes = np.where(np.isnan(col), -1, col).astype(np.int64)
        onehot = (codes[:, None] == np.arange(int(k))[None, :]).astype(np.float64)
        onehot[np.isnan(col)] = np.nan
        cols.append(onehot)
    return np.hstack(cols)

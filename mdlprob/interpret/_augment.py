"""Copies of observations in which a view they lack is filled with draws from the model's predictive."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd

from ..data import make_mudata, presence_mask

#: Separates an observation's name from the number of its predictive draw in augmented copies.
DRAW_SEP = "|draw"


def presence(model: Any, mdata: md.MuData) -> np.ndarray:
    """Bool ``(n_obs, n_modalities)`` in the model's registry order, from the registered presence masks."""
    return presence_mask(mdata, model.registry_)


def augmented(model: Any, mdata: md.MuData, modality: str, draws: np.ndarray) -> md.MuData:
    r"""``S`` copies of every observation of ``mdata``, copy ``s`` with ``modality`` set to ``draws[s]``.

    The copies keep every other modality, ``obs`` column and ``obsm`` entry of their
    observation (the registry's presence mask, if any, marks ``modality`` present), so the
    model and a head see exactly the observation plus the drawn view. Copy ``s`` of
    observation ``name`` is named ``f"{name}|draw{s}"``; the copies are ordered draw-major
    (all observations of draw 0, then of draw 1, ...), so per-observation results reshape
    to ``(S, n_obs)``.

    Parameters
    ----------
    draws
        ``(S, n_obs, n_vars)`` values of ``modality`` on the data scale, e.g. from
        ``model.sample_predictive(mdata, modality, n_samples=S)``.
    """
    n_draws, n_obs = draws.shape[:2]
    registry = model.registry_
    entry = registry["modalities"][modality]
    names = [f"{o}{DRAW_SEP}{s}" for s in range(n_draws) for o in mdata.obs_names]
    tiled = np.tile(np.arange(n_obs), n_draws)
    mods: dict[str, ad.AnnData] = {}
    for name, adata in mdata.mod.items():
        if name == modality:
            continue
        rows = np.asarray(mdata.obsmap[name]).astype(np.int64)[tiled] - 1
        have = rows >= 0
        with warnings.catch_warnings():  # repeated rows are renamed at once below
            warnings.filterwarnings("ignore", "Observation names are not unique", UserWarning)
            part = adata[rows[have]].copy()
        part.obs_names = pd.Index(np.asarray(names, dtype=object)[have])
        mods[name] = part
    values = draws.reshape(n_draws * n_obs, -1).astype(np.float32)
    template = mdata.mod[modality] if modality in mdata.mod else None
    var = template.var.copy() if template is not None else pd.DataFrame(index=model.var_names_[modality])
    layer = entry.get("layer") or None
    view = ad.AnnData(None if layer else values, obs=pd.DataFrame(index=names), var=var,
                      uns=copy.deepcopy(dict(template.uns)) if template is not None else {})
    if layer:
        view.layers[layer] = values
    mods[modality] = view
    out = make_mudata(mods, obs_order=names)
    for col in mdata.obs.columns:
        out.obs[col] = mdata.obs[col].to_numpy()[tiled]
    for key, value in mdata.obsm.items():
        out.obsm[key] = (value.iloc[tiled].set_axis(out.obs_names) if isinstance(value, pd.DataFrame)
                         else np.asarray(value)[tiled])
    key = registry.get("mask_key") or ""
    if key:
        mask = out.obsm[key]
        j = list(registry["modalities"]).index(modality)
        if isinstance(mask, pd.DataFrame):
            mask[modality] = True
        else:
            mask = np.array(mask, dtype=bool)
            mask[:, j] = True
        out.obsm[key] = mask
    out.uns.update(copy.deepcopy(dict(mdata.uns)))  # registered like its source (as hide_modality copies)
    return out

"""Building MuData objects without mudata's transition warnings."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import anndata as ad
import mudata as md
import numpy as np


def make_mudata(mods: Mapping[str, ad.AnnData], *, obs_order: Sequence[str] | None = None) -> md.MuData:
    """An outer-join MuData of ``mods`` (a modality holds only the observations that have it).

    ``obs_order`` fixes the order of the global observations (MuData otherwise orders them
    by first appearance across modalities). Built with ``pull_on_update=False``, the
    behaviour mudata adopts in 0.4, so no ``FutureWarning`` is emitted.
    """
    with md.set_options(pull_on_update=False):
        mdata = md.MuData(dict(mods))
        if obs_order is not None and list(mdata.obs_names) != list(obs_order):
            mdata = mdata[list(obs_order)].copy()
    return mdata


def subset(mdata: md.MuData, index) -> md.MuData:
    """A copy of the observations ``index`` of ``mdata``, **in that order**.

    ``mdata[index].copy()`` with mudata's default (legacy) options rebuilds the global
    observations modality by modality, so when the first modality lacks some observations
    the copy lists them in another order than ``mdata`` does, and labels kept in a separate
    array (``y[index]``) silently stop matching their observations. This copies with
    ``pull_on_update=False`` (mudata's announced default), which keeps the order.

    Parameters
    ----------
    index
        Boolean mask over ``mdata.obs_names``, integer positions, or observation names.
    """
    if not isinstance(mdata, md.MuData):
        msg = f"Expected mdata to be a mudata.MuData, got {type(mdata).__name__}."
        raise TypeError(msg)
    index = np.asarray(index)
    if index.dtype == bool:
        if index.shape != (mdata.n_obs,):
            msg = f"Expected a boolean index of shape ({mdata.n_obs},), got {index.shape}."
            raise ValueError(msg)
        names = mdata.obs_names[index]
    elif index.dtype.kind in "iu":
        names = mdata.obs_names[index]
    else:
        names = mdata.obs_names[mdata.obs_names.get_indexer(index.astype(str))] if len(index) else mdata.obs_names[:0]
        missing = ~np.isin(index.astype(str), mdata.obs_names)
        if missing.any():
            msg = f"{int(missing.sum())} name(s) are not observations of mdata (e.g. {list(index[missing][:5])})."
            raise KeyError(msg)
    with md.set_options(pull_on_update=False):
        out = mdata[names].copy()
    if list(out.obs_names) != list(names):  # never silently reordered
        msg = "mudata reordered the observations of the subset; please report this with your mudata version."
        raise RuntimeError(msg)
    return out


def hide_modality(mdata: md.MuData, modality: str, hide: np.ndarray) -> md.MuData:
    """A copy of ``mdata`` in which the observations flagged by ``hide`` lack ``modality``.

    The global observations, their order, ``obs`` columns, ``obsm``, ``obsp`` and ``uns``
    (copies; e.g. the registry and a synthetic data set's truth) are kept; other modalities
    and the input are left untouched. Use it to mask a modality for scoring imputation.

    Parameters
    ----------
    hide
        Boolean ``(n_obs,)`` over ``mdata.obs_names``.
    """
    hide = np.asarray(hide)
    if hide.dtype != bool or hide.shape != (mdata.n_obs,):
        msg = f"Expected hide to be a boolean array of shape ({mdata.n_obs},), got {hide.dtype} {hide.shape}."
        raise ValueError(msg)
    if modality not in mdata.mod:
        msg = f"Modality {modality!r} is not in the MuData; it has {list(mdata.mod)}."
        raise KeyError(msg)
    others = np.zeros(mdata.n_obs, dtype=bool)
    for name in mdata.mod:
        if name != modality:
            others |= np.asarray(mdata.obsmap[name]) > 0
    orphans = mdata.obs_names[hide & ~others]
    if len(orphans):
        msg = (f"Hiding {modality!r} would leave {len(orphans)} observation(s) with no modality at all "
               f"(e.g. {list(orphans[:5])}); a MuData cannot hold them. Do not hide those.")
        raise ValueError(msg)
    drop = set(mdata.obs_names[hide])
    mods = {}
    for name, adata in mdata.mod.items():
        keep = ~adata.obs_names.isin(drop) if name == modality else np.ones(adata.n_obs, dtype=bool)
        mods[name] = adata[keep].copy()
    out = make_mudata(mods, obs_order=mdata.obs_names)
    for col in mdata.obs.columns:
        out.obs[col] = mdata.obs[col].to_numpy()
    for key, value in mdata.obsm.items():
        out.obsm[key] = value.copy()
    for key, value in mdata.obsp.items():
        out.obsp[key] = value.copy()
    out.uns.update(copy.deepcopy(dict(mdata.uns)))
    return out


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


def fill_missing(mdata: md.MuData, imputed, *, key: str | None = None) -> np.ndarray:
    """Write a complete matrix of a modality into ``mdata.obsm``: observed values kept, the rest imputed.

    Observations that lack the modality, and NaN entries of those that have it, take the
    imputed mean; every measured value is kept as it is. The modality itself is not
    touched (its AnnData holds only the observations that have it).

    Parameters
    ----------
    imputed
        The AnnData of ``model.impute(mdata, modality)`` (same observations, in order).
    key
        ``obsm`` key; default ``"<modality>_filled"``. ``obsm[key + "_imputed"]`` (boolean)
        marks the imputed entries and ``obsm[key + "_std"]`` holds the predictive sd there
        (0 where measured).

    Returns
    -------
    The filled ``(n_obs, n_vars)`` float array (also in ``mdata.obsm[key]``).
    """
    modality = _imputed_modality(mdata, imputed)
    observed = dense_values(mdata, modality) if modality in mdata.mod else np.full(imputed.shape, np.nan)
    missing = np.isnan(observed)
    mean = np.asarray(imputed.layers["mean"], dtype=np.float64)
    sd = np.asarray(imputed.layers["std"], dtype=np.float64)
    key = key or f"{modality}_filled"
    filled = np.where(missing, mean, observed)
    mdata.obsm[key] = filled
    mdata.obsm[f"{key}_imputed"] = missing
    mdata.obsm[f"{key}_std"] = np.where(missing, sd, 0.0)
    return filled


def _imputed_modality(mdata: md.MuData, imputed) -> str:
    """The modality ``imputed`` (``model.impute``'s AnnData) predicts, after checking it matches ``mdata``."""
    info = imputed.uns.get("mdlprob_impute", {}) if hasattr(imputed, "uns") else {}
    modality = info.get("modality")
    if modality is None or "mean" not in getattr(imputed, "layers", {}):
        msg = "Expected imputed to be the AnnData returned by model.impute(mdata, modality)."
        raise ValueError(msg)
    if list(imputed.obs_names) != list(mdata.obs_names):
        msg = (f"imputed has other observations than mdata ({imputed.n_obs} vs {mdata.n_obs}, or another order); "
               "impute the same MuData you write into.")
        raise ValueError(msg)
    return modality


#: Prefix of the layers :func:`write_imputation` (``model.impute(..., inplace=True)``) writes.
IMPUTE_LAYER_PREFIX = "mdlprob_"


def write_imputation(mdata: md.MuData, imputed, *, fill: bool = False) -> list[str]:
    """Write ``model.impute(mdata, modality)``'s layers into ``mdata[modality]``, where scverse tools look.

    Each layer of ``imputed`` (``mean``, ``std``, one per quantile such as ``q05``, ``q95``)
    becomes ``mdata[modality].layers["mdlprob_<name>"]`` for the observations the modality's
    AnnData holds (those that have the modality, matched by name). Observations that lack
    the modality are not in that AnnData; ``fill`` gives them a place.

    Parameters
    ----------
    imputed
        The AnnData of ``model.impute(mdata, modality)`` (same observations, in order).
    fill
        Also fill only the missing entries: ``layers["mdlprob_filled"]`` holds the measured
        values with NaN entries replaced by the imputed mean, and :func:`fill_missing` writes
        the complete ``(n_obs, n_vars)`` matrix, absent observations included, into
        ``mdata.obsm["<modality>_filled"]`` (with ``_imputed`` and ``_std``).

    Returns
    -------
    The names of the layers written (``obsm`` keys not included).
    """
    modality = _imputed_modality(mdata, imputed)
    adata = mdata.mod.get(modality)
    rows = None
    if adata is not None:  # every check before anything is written
        if adata.is_view:
            msg = f"mdata[{modality!r}] is a view; write into a copy (mdata = mdata.copy()) so the layers are kept."
            raise ValueError(msg)
        rows = imputed.obs_names.get_indexer(adata.obs_names)
        if (rows < 0).any():
            msg = f"mdata[{modality!r}] holds observations that mdata.obs lacks; call mdata.update() first."
            raise ValueError(msg)
    filled = fill_missing(mdata, imputed) if fill else None
    if adata is None:
        return []
    written = []
    for name, values in imputed.layers.items():
        key = f"{IMPUTE_LAYER_PREFIX}{name}"
        adata.layers[key] = np.asarray(values)[rows]
        written.append(key)
    if filled is not None:
        adata.layers[f"{IMPUTE_LAYER_PREFIX}filled"] = filled[rows]
        written.append(f"{IMPUTE_LAYER_PREFIX}filled")
    return written

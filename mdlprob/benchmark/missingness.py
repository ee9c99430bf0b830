r"""Missingness scenarios: seeded functions ``MuData -> (MuData with values hidden, HiddenTruth)``.

Each scenario returns a new MuData (the input is never modified) and a :class:`HiddenTruth`
record of what it hid, so that imputation can be scored on exactly those entries.

:func:`mcar`
    A modality missing completely at random for a fraction of the observations that have it.
:func:`block`
    A whole cohort lacks a modality (a site, a recruitment period: a train/test shift).
:func:`mnar`
    The chance of missing depends on the label, an outcome or the true latent
    (sicker patients skip a scan).
:func:`entry_mcar`
    Single entries (e.g. clinical fields) set to NaN completely at random.

Rates are fractions of the observations that hold the modality (of the known entries for
:func:`entry_mcar`). An observation is never left without any modality, so it is not
eligible to lose its only one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mudata as md
import numpy as np
import pandas as pd

from ..data import hide_modality, make_mudata
from ._frame import dense_values, presence


@dataclass(frozen=True)
class HiddenTruth:
    """What a scenario hid.

    Attributes
    ----------
    scenario
        Scenario name (``mcar``, ``block``, ``mnar``, ``entry_mcar``).
    modality
        The modality with hidden values.
    rate
        Requested fraction.
    achieved_rate
        Hidden observations over observations holding the modality (hidden entries over
        known entries for ``entry_mcar``).
    seed
        Seed of the draw.
    rows
        Bool ``(n_obs,)``: observations that lost the modality (or at least one entry).
    entries
        Bool ``(n_obs, n_vars)``: hidden entries whose true value is known.
    values
        ``(n_obs, n_vars)`` values of the input, NaN where the input had none.
    params
        The scenario's other options.
    """

    scenario: str
    modality: str
    rate: float
    achieved_rate: float
    seed: int
    rows: np.ndarray
    entries: np.ndarray
    values: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)


def _check(mdata: md.MuData, modality: str, rate: float, seed: int) -> None:
    if not isinstance(mdata, md.MuData):
        msg = f"Expected mdata to be a MuData, got {type(mdata).__name__}."
        raise TypeError(msg)
    if modality not in mdata.mod:
        msg = f"Expected modality to be one of {list(mdata.mod)}, got {modality!r}."
        raise KeyError(msg)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        msg = f"Expected rate in [0, 1), got {rate!r}."
        raise ValueError(msg)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        msg = f"Expected seed to be a non-negative int, got {seed!r}."
        raise ValueError(msg)


def _eligible(mdata: md.MuData, modality: str) -> tuple[np.ndarray, int]:
    """Observations that may lose ``modality`` (they keep another one), and how many hold it."""
    has = presence(mdata, modality)
    others = np.zeros(mdata.n_obs, dtype=bool)
    for name in mdata.mod:
        if name != modality:
            others |= presence(mdata, name)
    return has & others, int(has.sum())


def _n_to_hide(rate: float, n_present: int, eligible: np.ndarray, modality: str) -> int:
    k = round(rate * n_present)
    if k > eligible.sum():
        msg = (f"Cannot hide {modality!r} for {k} observations (rate {rate} of {n_present}): only "
               f"{int(eligible.sum())} hold another modality. Use a rate <= {eligible.sum() / max(n_present, 1):.2f}.")
        raise ValueError(msg)
    return k


def _row_result(mdata: md.MuData, modality: str, hide: np.ndarray, name: str, rate: float, seed: int,
                n_present: int, params: dict[str, Any]) -> tuple[md.MuData, HiddenTruth]:
    values = dense_values(mdata, modality)
    out = hide_modality(mdata, modality, hide)
    for key in mdata.obsm:
        out.obsm[key] = np.asarray(mdata.obsm[key]).copy()
    truth = HiddenTruth(scenario=name, modality=modality, rate=float(rate),
                        achieved_rate=float(hide.sum() / max(n_present, 1)), seed=int(seed), rows=hide,
                        entries=hide[:, None] & ~np.isnan(values), values=values, params=params)
    return out, truth


def mcar(mdata: md.MuData, *, modality: str, rate: float, seed: int = 0) -> tuple[md.MuData, HiddenTruth]:
    """Hide ``modality`` for a uniformly random ``rate`` of the observations holding it.

    Examples
    --------
    >>> from mdlprob.datasets import synthetic
    >>> hidden, truth = mcar(synthetic(100, missing={}), modality="protein", rate=0.3, seed=0)
    >>> int(truth.rows.sum()), hidden["protein"].n_obs
    (30, 70)
    """
    _check(mdata, modality, rate, seed)
    eligible, n_present = _eligible(mdata, modality)
    k = _n_to_hide(rate, n_present, eligible, modality)
    rng = np.random.default_rng(seed)
    hide = np.zeros(mdata.n_obs, dtype=bool)
    hide[rng.choice(np.flatnonzero(eligible), size=k, replace=False)] = True
    return _row_result(mdata, modality, hide, "mcar", rate, seed, n_present, {})


def block(mdata: md.MuData, *, modality: str, rate: float, by: str | None = None,
          seed: int = 0) -> tuple[md.MuData, HiddenTruth]:
    """Hide ``modality`` for whole cohorts (a train/test shift).

    Parameters
    ----------
    by
        ``obs`` column defining cohorts: cohorts are drawn in a seeded random order until at
        least ``rate`` of the observations holding ``modality`` are hidden (so the achieved
        rate can exceed ``rate``). ``None``: the cohort is a run of consecutive observations
        (in ``obs_names`` order, wrapping around) starting at a random position, like a
        recruitment period without the assay.
    """
    _check(mdata, modality, rate, seed)
    eligible, n_present = _eligible(mdata, modality)
    k = _n_to_hide(rate, n_present, eligible, modality)
    rng = np.random.default_rng(seed)
    hide = np.zeros(mdata.n_obs, dtype=bool)
    if by is None:
        order = np.roll(np.flatnonzero(eligible), -int(rng.integers(max(int(eligible.sum()), 1))))
        hide[order[:k]] = True
    else:
        groups = _obs_column(mdata, by).astype(str).to_numpy()
        for level in rng.permutation(np.unique(groups[eligible])):
            if hide.sum() >= k:
                break
            hide |= eligible & (groups == level)
    return _row_result(mdata, modality, hide, "block", rate, seed, n_present, {"by": by})


def mnar(mdata: md.MuData, *, modality: str, rate: float, by: str = "label", strength: float = 2.0,
         level: str | None = None, seed: int = 0) -> tuple[md.MuData, HiddenTruth]:
    r"""Hide ``modality`` with a chance that grows with a hidden score.

    Observations are drawn without replacement with weights :math:`\exp(\text{strength}\, s_i)`,
    where :math:`s_i` is 1 for observations whose ``by`` column equals ``level`` (categorical
    columns), the z-scored value (numeric columns, e.g. ``event`` or ``time``), or the first
    coordinate of the true latent ``obsm["z_true"]`` for ``by="latent"`` (synthetic data).

    Parameters
    ----------
    by
        ``obs`` column, or ``"latent"``.
    strength
        Log odds ratio per unit of the score; 0 gives MCAR.
    level
        Level of a categorical ``by`` that is more often missing (default: the last one).
    """
    _check(mdata, modality, rate, seed)
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not np.isfinite(strength):
        msg = f"Expected strength to be a finite number, got {strength!r}."
        raise ValueError(msg)
    score = _mnar_score(mdata, by, level)
    eligible, n_present = _eligible(mdata, modality)
    k = _n_to_hide(rate, n_present, eligible, modality)
    idx = np.flatnonzero(eligible)
    w = np.exp(strength * (score[idx] - score[idx].max()))
    rng = np.random.default_rng(seed)
    hide = np.zeros(mdata.n_obs, dtype=bool)
    if k:
        hide[rng.choice(idx, size=k, replace=False, p=w / w.sum())] = True
    return _row_result(mdata, modality, hide, "mnar", rate, seed, n_present,
                       {"by": by, "strength": float(strength), "level": level})


def entry_mcar(mdata: md.MuData, *, modality: str, rate: float, seed: int = 0) -> tuple[md.MuData, HiddenTruth]:
    """Set a uniformly random ``rate`` of the known entries of ``modality`` to NaN.

    Meant for tables (a clinical modality with a ``mixed`` likelihood, which accepts NaN
    entries); the modality is stored dense in the result.
    """
    _check(mdata, modality, rate, seed)
    values = dense_values(mdata, modality)
    known = ~np.isnan(values)
    k = round(rate * int(known.sum()))
    rng = np.random.default_rng(seed)
    entries = np.zeros(values.shape, dtype=bool)
    flat = np.flatnonzero(known)
    entries.flat[rng.choice(flat, size=k, replace=False)] = True
    mods = {name: adata.copy() for name, adata in mdata.mod.items()}
    target = mods[modality]
    rows = np.asarray(mdata.obsmap[modality]).astype(np.int64) - 1
    X = np.array(target.X.toarray() if hasattr(target.X, "toarray") else target.X, dtype=np.float32)
    present = rows >= 0
    block_ = X[rows[present]]
    block_[entries[present]] = np.nan
    X[rows[present]] = block_
    target.X = X
    out = make_mudata(mods, obs_order=mdata.obs_names)
    for col in mdata.obs.columns:
        out.obs[col] = mdata.obs[col].to_numpy()
    for key in mdata.obsm:
        out.obsm[key] = np.asarray(mdata.obsm[key]).copy()
    truth = HiddenTruth(scenario="entry_mcar", modality=modality, rate=float(rate),
                        achieved_rate=float(k / max(int(known.sum()), 1)), seed=int(seed),
                        rows=entries.any(1), entries=entries, values=values, params={})
    return out, truth


def _obs_column(mdata: md.MuData, key: str) -> pd.Series:
    if key not in mdata.obs:
        msg = f"Expected by to name an obs column ({list(mdata.obs.columns)}) or 'latent', got {key!r}."
        raise KeyError(msg)
    return mdata.obs[key]


def _mnar_score(mdata: md.MuData, by: str, level: str | None) -> np.ndarray:
    if by == "latent":
        if "z_true" not in mdata.obsm:
            msg = "by='latent' needs obsm['z_true'] (data from mdlprob.datasets.synthetic); use an obs column instead."
            raise KeyError(msg)
        z = np.asarray(mdata.obsm["z_true"], dtype=np.float64)[:, 0]
        return (z - z.mean()) / (z.std() or 1.0)
    col = _obs_column(mdata, by)
    if pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype):
        x = col.to_numpy(dtype=np.float64)
        x = (x - np.nanmean(x)) / (np.nanstd(x) or 1.0)
        return np.nan_to_num(x, nan=0.0)
    values = col.astype(str).to_numpy()
    levels = list(col.cat.categories.astype(str)) if isinstance(col.dtype, pd.CategoricalDtype) else sorted(set(values))
    chosen = levels[-1] if level is None else str(level)
    if chosen not in levels:
        msg = f"Expected level to be one of {levels} (levels of obs[{by!r}]), got {level!r}."
        raise ValueError(msg)
    return (values == chosen).astype(np.float64)


Scenario = Callable[..., tuple[md.MuData, HiddenTruth]]
SCENARIOS: dict[str, Scenario] = {"mcar": mcar, "block": block, "mnar": mnar, "entry_mcar": entry_mcar}


def apply_scenario(name: str, mdata: md.MuData, *, modality: str, rate: float, seed: int = 0,
                   **params: Any) -> tuple[md.MuData, HiddenTruth]:
    """Run the scenario called ``name`` (a key of :data:`SCENARIOS`) with ``params``."""
    if name not in SCENARIOS:
        msg = f"Expected scenario to be one of {sorted(SCENARIOS)}, got {name!r}."
        raise ValueError(msg)
    return SCENARIOS[name](mdata, modality=modality, rate=rate, seed=seed, **params)

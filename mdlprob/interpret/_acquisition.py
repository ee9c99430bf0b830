"""Which view to measure next, for whom: modality rankings and a cost-weighted acquisition order under a budget."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import mudata as md
import numpy as np
import pandas as pd

from ..base._validate import check_subset
from ._gain import QUANTITIES, expected_information_gain


def _check_costs(costs: Mapping[str, float] | None, modalities: Sequence[str]) -> dict[str, float]:
    if costs is None:
        return dict.fromkeys(modalities, 1.0)
    if not isinstance(costs, Mapping):
        msg = f"Expected costs to be a dict modality -> cost, e.g. {{'rna': 1.0}}, got {type(costs).__name__}."
        raise TypeError(msg)
    missing = [m for m in modalities if m not in costs]
    if missing:
        msg = f"costs lacks modalities {missing}; give every valued modality a cost, e.g. costs={{{missing[0]!r}: 1.0}}."
        raise KeyError(msg)
    out = {}
    for m in modalities:
        c = costs[m]
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c) or c <= 0:
            msg = f"Expected costs[{m!r}] to be a finite number > 0, got {c!r}."
            raise ValueError(msg)
        out[m] = float(c)
    return out


def acquisition_table(model: Any, mdata: md.MuData, *, modalities: Sequence[str] | None = None,
                      target: Any = "latent", costs: Mapping[str, float] | None = None, n_samples: int = 20,
                      risk_threshold: float | None = None) -> pd.DataFrame:
    """Expected value of every (observation, missing modality) pair, with its cost.

    One :func:`expected_information_gain` per modality, stacked.

    Parameters
    ----------
    modalities
        Views to value (default every registered one).
    costs
        Modality to the cost of measuring it for one observation (default 1 each).
    target, n_samples, risk_threshold
        As in :func:`expected_information_gain`.

    Returns
    -------
    Long DataFrame, one row per observation lacking a valued modality: ``obs``,
    ``modality``, ``cost`` and the gain columns of :func:`expected_information_gain`.
    """
    chosen = check_subset("modalities", modalities, model.modalities)
    price = _check_costs(costs, chosen)
    parts = []
    for mod in chosen:
        gain = expected_information_gain(model, mdata, mod, target=target, n_samples=n_samples,
                                         risk_threshold=risk_threshold)
        gain.insert(0, "cost", price[mod])
        gain.insert(0, "modality", mod)
        parts.append(gain.rename_axis("obs").reset_index())
    return pd.concat(parts, ignore_index=True)


def _value_column(table: pd.DataFrame, by: str | None) -> str:
    if by is None:
        return "decision_change" if "decision_change" in table else "latent_entropy_gain"
    if by not in QUANTITIES or by not in table:
        present = [q for q in QUANTITIES if q in table]
        msg = f"Expected by to be one of the table's gains {present}, got {by!r}."
        raise ValueError(msg)
    return by


def _check_table(table: Any) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame) or not {"obs", "modality", "cost", "latent_entropy_gain"} <= set(table):
        msg = "Expected table to be the output of acquisition_table(model, mdata, ...)."
        raise ValueError(msg)
    return table


def rank_modalities(table: pd.DataFrame, *, by: str | None = None) -> pd.DataFrame:
    """Modalities ranked by their mean expected value over the observations that lack them.

    Parameters
    ----------
    table
        The output of :func:`acquisition_table`.
    by
        The gain to rank by (default ``decision_change`` with a head, else
        ``latent_entropy_gain``).

    Returns
    -------
    DataFrame indexed by modality, best first: ``n_lacking``, ``cost``, the mean of each
    gain, and ``value_per_cost`` (mean ``by`` over cost).
    """
    table = _check_table(table)
    col = _value_column(table, by)
    gains = [q for q in QUANTITIES if q in table]
    out = table.groupby("modality", sort=False).agg(n_lacking=("obs", "size"), cost=("cost", "first"),
                                                    **{q: (q, "mean") for q in gains})
    out["value_per_cost"] = out[col] / out["cost"]
    return out.sort_values(col, ascending=False, kind="stable")


def acquisition_order(table: pd.DataFrame, *, budget: float | None = None, by: str | None = None,
                      max_per_observation: int | None = 1) -> pd.DataFrame:
    """Which views to measure for whom, best value per cost first, within ``budget``.

    Greedy on expected value over cost. Each gain is that of one view added to what the
    observation has now: gains of two views for one observation do not add up (the second
    tells less once the first is known), hence at most ``max_per_observation`` views per
    observation by default; value again after measuring to plan a further round.

    Parameters
    ----------
    table
        The output of :func:`acquisition_table`.
    budget
        Total cost allowed (default: no limit, the full ranking). A pair that does not fit
        in what is left is skipped and cheaper ones after it may still fit.
    by
        The gain to value (see :func:`rank_modalities`).
    max_per_observation
        Views measured per observation at most (None: no limit).

    Returns
    -------
    The chosen rows of ``table`` in order, with ``value_per_cost`` and ``cumulative_cost``.
    """
    table = _check_table(table)
    col = _value_column(table, by)
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget < 0):
        msg = f"Expected budget to be a number >= 0 or None, got {budget!r}."
        raise ValueError(msg)
    if max_per_observation is not None and (not isinstance(max_per_observation, int) or max_per_observation < 1):
        msg = f"Expected max_per_observation to be an int >= 1 or None, got {max_per_observation!r}."
        raise ValueError(msg)
    ranked = table.assign(value_per_cost=table[col] / table["cost"])
    ranked = ranked.sort_values(["value_per_cost", col], ascending=False, kind="stable")
    left = math.inf if budget is None else float(budget)
    taken: dict[str, int] = {}
    keep = []
    for i, row in zip(ranked.index, ranked.itertuples(index=False), strict=True):
        if row.cost > left or (max_per_observation is not None and taken.get(row.obs, 0) >= max_per_observation):
            continue
        keep.append(i)
        left -= row.cost
        taken[row.obs] = taken.get(row.obs, 0) + 1
    out = ranked.loc[keep].reset_index(drop=True)
    out["cumulative_cost"] = np.cumsum(out["cost"].to_numpy()) if len(out) else np.zeros(0)
    return out

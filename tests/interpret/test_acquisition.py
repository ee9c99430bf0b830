"""Ranking modalities and ordering acquisitions under a budget."""

from __future__ import annotations

import pandas as pd
import pytest

from mdlprob.interpret import acquisition_order, acquisition_table, rank_modalities


def _table() -> pd.DataFrame:
    return pd.DataFrame({
        "obs": ["a", "a", "b", "c", "c"],
        "modality": ["rna", "mri", "rna", "rna", "mri"],
        "cost": [1.0, 3.0, 1.0, 1.0, 3.0],
        "latent_entropy_gain": [0.5, 2.4, 0.2, 0.9, 1.2],
    })


def test_table_stacks_one_valuation_per_modality(trained, mdata):
    table = acquisition_table(trained, mdata, costs={"rna": 2.0, "protein": 1.0, "clinical": 0.5}, n_samples=2)
    assert set(table["modality"]) == {"protein"}  # only protein is ever missing in these data
    assert (table["cost"] == 1.0).all() and table["obs"].is_unique
    with pytest.raises(KeyError, match="costs lacks modalities \\['clinical'\\]"):
        acquisition_table(trained, mdata, costs={"rna": 2.0, "protein": 1.0})
    with pytest.raises(ValueError, match=r"costs\['rna'\] to be a finite number > 0"):
        acquisition_table(trained, mdata, costs={"rna": 0, "protein": 1.0, "clinical": 1.0})


def test_modalities_rank_by_mean_gain():
    ranking = rank_modalities(_table())
    assert list(ranking.index) == ["mri", "rna"]
    assert ranking.loc["mri", "latent_entropy_gain"] == pytest.approx(1.8)
    assert ranking.loc["rna", "n_lacking"] == 3
    assert ranking.loc["mri", "value_per_cost"] == pytest.approx(0.6)


def test_order_is_by_value_per_cost_within_budget_one_view_each():
    order = acquisition_order(_table(), budget=5.0)
    # value per cost: c/rna 0.9, a/mri 0.8, b/rna 0.2 (a/mri 0.8 > a/rna 0.5, and one view per observation)
    assert list(zip(order["obs"], order["modality"], strict=True)) == [("c", "rna"), ("a", "mri"), ("b", "rna")]
    assert order["cumulative_cost"].iloc[-1] == 5.0
    tight = acquisition_order(_table(), budget=2.0)
    # a/mri does not fit in what is left; the cheaper a/rna (0.5 per cost) after it does
    assert list(zip(tight["obs"], tight["modality"], strict=True)) == [("c", "rna"), ("a", "rna")]
    everything = acquisition_order(_table(), max_per_observation=None)
    assert len(everything) == 5


def test_bad_orders_are_refused():
    with pytest.raises(ValueError, match="budget to be a number >= 0"):
        acquisition_order(_table(), budget=-1)
    with pytest.raises(ValueError, match="Expected by to be one of"):
        acquisition_order(_table(), by="decision_change")
    with pytest.raises(ValueError, match="output of acquisition_table"):
        rank_modalities(pd.DataFrame({"x": [1]}))

"""Modality contributions: subset metrics, Shapley values with bootstrap intervals, the cost curve."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sksurv.util import Surv

from mdlprob.heads import ClassifierHead, CoxPHHead, LatentHead
from mdlprob.interpret import modality_contributions
from mdlprob.interpret._contributions import _coalitions, _shapley


def _additive(players, weights):
    return {frozenset(c): np.array([sum(weights[m] for m in c)])
            for k in range(len(players) + 1) for c in itertools.combinations(players, k)}


def test_shapley_of_an_additive_game_is_each_players_weight():
    players = ["a", "b", "c"]
    weights = {"a": 0.1, "b": 0.5, "c": -0.2}
    exact = _shapley(_additive(players, weights), players, None)[:, 0]
    np.testing.assert_allclose(exact, [0.1, 0.5, -0.2])
    subsets, perms = _coalitions(players, 0, 7, np.random.default_rng(0))
    assert len(perms) == 7 and frozenset(players) in subsets and frozenset() in subsets
    sampled = _shapley(_additive(players, weights), players, perms)[:, 0]
    np.testing.assert_allclose(sampled, [0.1, 0.5, -0.2])


def test_shapley_splits_an_interaction_equally():
    players = ["a", "b"]
    values = {frozenset(): np.array([0.0]), frozenset("a"): np.array([0.0]), frozenset("b"): np.array([0.0]),
              frozenset("ab"): np.array([1.0])}
    np.testing.assert_allclose(_shapley(values, players, None)[:, 0], [0.5, 0.5])


def test_classifier_contributions_cover_every_subset_and_add_up(trained, mdata):
    y = mdata.obs["label"].to_numpy()
    head = LatentHead(trained, ClassifierHead(max_epochs=30), n_samples=3, modality_latents=False).fit(mdata, y)
    c = modality_contributions(trained, mdata, target=head, y=y, n_bootstrap=20, n_samples=3)
    assert len(c.subsets) == 8 and c.metric == "accuracy"
    assert c.subsets.loc["rna+protein+clinical", "n_modalities"] == 3
    assert c.subsets["value"].between(0, 1).all()
    full, none = c.subsets.loc["rna+protein+clinical", "value"], c.subsets.loc["none", "value"]
    assert c.shapley["value"].sum() == pytest.approx(full - none)  # efficiency
    assert (c.shapley["lower"] <= c.shapley["upper"]).all()
    curve = c.cost_curve()
    assert list(curve.index) == [0, 1, 2, 3] and curve.loc[3, "subset"] == "rna+protein+clinical"
    assert curve.loc[1, "value"] == c.subsets.query("n_modalities == 1")["value"].max()


def test_survival_contributions_with_sampled_orders_and_costs(trained, mdata):
    y = Surv.from_arrays(mdata.obs["event"].to_numpy().astype(bool), mdata.obs["time"].to_numpy())
    head = CoxPHHead(max_epochs=30).fit_from_model(trained, mdata, y, n_samples=3)
    c = modality_contributions(trained, mdata, target=head, y=y, max_exact=1, n_permutations=4, n_bootstrap=10,
                               n_samples=3, costs={"rna": 3.0, "protein": 2.0, "clinical": 0.5})
    assert c.metric == "c_index" and c.subsets["value"].between(0, 1).all()
    assert c.subsets.loc["rna+protein+clinical", "cost"] == 5.5
    full, none = c.subsets.loc["rna+protein+clinical", "value"], c.subsets.loc["none", "value"]
    assert c.shapley["value"].sum() == pytest.approx(full - none)


def test_imputation_contributions_and_a_custom_metric(trained, mdata):
    c = modality_contributions(trained, mdata, impute="protein", n_bootstrap=5, n_samples=3)
    assert c.metric == "imputation_r" and list(c.shapley.index) == ["rna", "clinical"]
    assert c.subsets.loc["none", "value"] == 0.0

    def neg_mse(truth, pred):
        return -float(np.nanmean((truth - pred) ** 2))

    c = modality_contributions(trained, mdata, impute="protein", metric=neg_mse, modalities=["rna"], n_bootstrap=0,
                               n_samples=3)
    assert c.metric == "neg_mse" and list(c.subsets.index) == ["none", "rna"]
    assert np.isnan(c.shapley.loc["rna", "lower"])  # no resamples, no interval


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "Pass target"),
        ({"impute": "mri"}, "impute to be one of"),
        ({"impute": "protein", "metric": "c_index"}, "metric to be 'imputation_r'"),
        ({"impute": "protein", "modalities": ["protein"]}, "modalities to be a non-empty list"),
        ({"impute": "protein", "level": 1.5}, "level in"),
    ],
)
def test_bad_arguments_are_named(trained, mdata, kwargs, match):
    with pytest.raises(ValueError, match=match):
        modality_contributions(trained, mdata, **kwargs)

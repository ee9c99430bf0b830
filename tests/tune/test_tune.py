"""mdlprob.tune: cross-validated search on Optuna, reproducible, recorded on the refitted model."""

from __future__ import annotations

import numpy as np
import pytest

import mdlprob
from mdlprob.tune import tune

SPACE = {"n_latent": ("int", 2, 6), "weight_decay": ("float_log", 1e-4, 1.0)}
FAST = {"max_epochs": 3, "n_hidden": 16}


def test_search_is_reproducible_and_recorded_on_the_model(mdata, tmp_path):
    first = tune("PoEVAE", mdata, search_space=SPACE, fixed=FAST, n_trials=3, n_folds=2, progress_bar=False)
    mdlprob.settings.seed = 0
    again = tune("PoEVAE", mdata, search_space=SPACE, fixed=FAST, n_trials=3, n_folds=2, progress_bar=False)
    assert first.best_params == again.best_params and first.best_value == again.best_value
    assert first.best_params["model_cls"] == "PoEVAE"
    assert set(first.best_params["model"]) == {"n_latent", "n_hidden"}
    assert first.best_params["train"]["max_epochs"] == 3 and "weight_decay" in first.best_params["train"]
    assert len(first.trials) == 3 and np.isfinite(first.best_value)
    model = first.model
    assert model.is_trained_ and model.tuning_["best_params"] == first.best_params
    model.save(tmp_path / "m")
    assert mdlprob.PoEVAE.load(tmp_path / "m", mdata).tuning_ == model.tuning_


def test_the_search_finds_a_better_configuration_than_a_bad_one(mdata):
    """A latent of size 1 explains these data worse than one of size 4 (3-d ground truth)."""
    res = tune("PoEVAE", mdata, search_space={"n_latent": ("categorical", [1, 4])},
               fixed={"max_epochs": 40, "n_hidden": 32, "lr": 3e-3}, n_trials=6, n_folds=2, refit=False,
               progress_bar=False)
    assert res.best_params["model"]["n_latent"] == 4 and res.model is None
    values = res.trials.groupby("params_n_latent")["value"].max()
    assert values[4] > values[1]


@pytest.mark.parametrize("scoring", ["loglik", "pearson"])
def test_imputation_objective_scores_the_hidden_target(mdata, scoring):
    res = tune(["PoEVAE", "MoPoEVAE"], mdata, objective="imputation", target="protein", given=["rna", "clinical"],
               scoring=scoring, search_space={"n_latent": ("int", 2, 4)}, fixed=FAST, n_trials=3, n_folds=2,
               refit=False, progress_bar=False)
    assert res.best_params["model_cls"] in ("PoEVAE", "MoPoEVAE")
    if scoring == "pearson":
        assert -1 <= res.best_value <= 1
    else:
        assert res.best_value < 0  # log-density of NB counts


def test_bad_searches_fail_clearly(mdata):
    with pytest.raises(ValueError, match=r"\['n_heads'\] are arguments neither of the constructors nor of train"):
        tune("PoEVAE", mdata, search_space={"n_heads": ("int", 1, 2)}, n_trials=1)
    with pytest.raises(ValueError, match="Search space entry 'lr' must be"):
        tune("PoEVAE", mdata, search_space={"lr": ("float_log", 0.0, 1.0)}, n_trials=1)
    with pytest.raises(ValueError, match="objective='imputation' needs target"):
        tune("PoEVAE", mdata, objective="imputation", n_trials=1)
    with pytest.raises(ValueError, match="name a model of mdlprob.models"):
        tune("Transformer", mdata, n_trials=1)
    with pytest.raises(ValueError, match="n_folds to be an int >= 2"):
        tune("PoEVAE", mdata, n_folds=1)


def test_start_from_configurations_are_tried_first(mdata):
    res = tune(["PoEVAE", "MoPoEVAE"], mdata, search_space=SPACE, fixed=FAST, n_trials=3, n_folds=2, refit=False,
               progress_bar=False, start_from=[{"model_cls": "MoPoEVAE", "n_latent": 5},
                                               {"model_cls": mdlprob.PoEVAE, "weight_decay": 0.5}])
    first, second = res.study.trials[0].params, res.study.trials[1].params
    assert first["model_cls"] == "MoPoEVAE" and first["n_latent"] == 5
    assert second["model_cls"] == "PoEVAE" and second["weight_decay"] == 0.5
    with pytest.raises(ValueError, match="not in the search space"):
        tune("PoEVAE", mdata, search_space=SPACE, n_trials=1, refit=False, progress_bar=False, start_from=[{"depth": 3}])

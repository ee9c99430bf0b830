"""Ensemble: members trained from different seeds, predicting as an equal-weight mixture."""

from __future__ import annotations

import numpy as np
import pytest

import mdlprob
from mdlprob.exceptions import NotTrainedError
from mdlprob.models import Ensemble, PoEVAE


@pytest.fixture
def ensemble(mdata):
    ens = Ensemble(PoEVAE, mdata, n_models=3, n_latent=4, n_hidden=16)
    ens.train(max_epochs=3, batch_size=64, progress_bar=False)
    return ens


def test_members_differ_and_the_seed_in_force_is_restored(ensemble):
    assert mdlprob.settings.seed == 0
    weights = [next(iter(m.module.state_dict().values())) for m in ensemble.members_]
    assert not np.allclose(weights[0].numpy(), weights[1].numpy())


def test_imputation_is_the_mixture_of_the_members(ensemble, mdata):
    mdlprob.settings.seed = 1
    imp = ensemble.impute(mdata, "protein", n_samples=300, quantiles=(0.05, 0.95))
    means = []
    for member in ensemble.members_:
        means.append(member.impute(mdata, "protein", n_samples=400).layers["mean"])
    rel = np.abs(imp.layers["mean"] / np.mean(means, 0) - 1)
    assert np.median(rel) < 0.05 and rel.max() < 0.5, (np.median(rel), rel.max())
    assert (imp.layers["q05"] <= imp.layers["q95"]).all() and set(imp.layers) == {"mean", "std", "q05", "q95"}
    assert imp.uns["mdlprob_impute"]["n_models"] == 3 and imp.uns["mdlprob_impute"]["n_samples"] == 300
    draws = ensemble.sample_predictive(mdata, "protein", n_samples=7)
    assert draws.shape == (7, mdata.n_obs, mdata.mod["protein"].n_vars)


def test_log_likelihood_averages_member_likelihoods(ensemble, mdata):
    mdlprob.settings.seed = 2
    ll = ensemble.log_likelihood(mdata, n_samples=10)
    assert ll.shape == (mdata.n_obs,) and np.isfinite(ll).all()


def test_save_load_round_trip(ensemble, mdata, tmp_path):
    ensemble.save(tmp_path / "ens")
    loaded = Ensemble.load(tmp_path / "ens", mdata, accelerator="cpu")
    assert len(loaded.members_) == 3 and loaded.model_cls is PoEVAE
    mdlprob.settings.seed = 5
    a = ensemble.impute(mdata, "rna", n_samples=6).layers["mean"]
    mdlprob.settings.seed = 5
    np.testing.assert_allclose(loaded.impute(mdata, "rna", n_samples=6).layers["mean"], a, rtol=1e-5)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ensemble.save(tmp_path / "ens")


def test_bad_use_fails_clearly(mdata):
    with pytest.raises(ValueError, match="Expected model_cls to name a model of mdlprob.models"):
        Ensemble("Resnet", mdata)
    with pytest.raises(ValueError, match="n_models to be an int >= 1"):
        Ensemble(PoEVAE, mdata, n_models=0)
    with pytest.raises(NotTrainedError, match="not trained yet"):
        Ensemble(PoEVAE, mdata, n_models=2, n_latent=2).impute(mdata, "rna")

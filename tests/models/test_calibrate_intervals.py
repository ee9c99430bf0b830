"""Split-conformal calibration of predictive intervals on held-out observations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mdlprob
from mdlprob.base._calibration import conformal_scale, widen
from mdlprob.data import hide_modality, setup_mudata
from tests.conftest import LIKELIHOODS


def test_the_factor_gives_the_level_on_the_calibration_entries():
    gen = torch.Generator().manual_seed(0)
    truth = 2.0 * torch.randn(400, 5, generator=gen)  # the truth is twice as spread as the predictive
    draws = torch.randn(200, 400, 5, generator=gen)
    scale = conformal_scale(truth, draws, torch.ones_like(truth, dtype=torch.bool), level=0.9, discrete=False)
    assert 1.8 < scale < 2.2
    wide = widen(draws, scale, "gaussian")
    lo, hi = wide.quantile(0.05, 0), wide.quantile(0.95, 0)
    assert abs(((truth >= lo) & (truth <= hi)).float().mean().item() - 0.9) < 0.02
    torch.testing.assert_close(wide.median(0).values, draws.median(0).values)
    assert (widen(draws.abs(), 3.0, "nb") >= 0).all()


@pytest.fixture(scope="module")
def split_data():
    """100 training observations (all views), fitted long enough to overfit; two held-out sets of 400."""
    full = mdlprob.datasets.synthetic(900, missing={"protein": 0.0}, n_vars={"rna": 60, "protein": 15}, seed=4)
    setup_mudata(full, likelihoods=LIKELIHOODS)
    train, calib, test = full[:100].copy(), full[100:500].copy(), full[500:].copy()
    mdlprob.settings.seed = 0
    model = mdlprob.PoEVAE(train, n_latent=8, n_hidden=64)  # in-sample noise: over-confident (about 79%)
    model.train(max_epochs=300, batch_size=64, lr=3e-3, progress_bar=False)
    return model, calib, test


def _coverage(model, data) -> float:
    hidden = hide_modality(data, "protein", np.ones(data.n_obs, dtype=bool))
    imp = model.impute(hidden, "protein", n_samples=200)
    truth = data.mod["protein"].X
    return mdlprob.metrics.interval_coverage(truth, imp.layers["q05"], imp.layers["q95"], discrete=True)


def test_calibrated_intervals_cover_the_level_on_new_observations(split_data, tmp_path):
    model, calib, test = split_data
    before = _coverage(model, test)
    mdlprob.settings.seed = 1
    mean_before = model.impute(hide_modality(test, "protein", np.ones(test.n_obs, dtype=bool)), "protein",
                               n_samples=50).layers["mean"]
    factors = model.calibrate_intervals(calib, modalities=["protein"])
    assert set(factors) == {"protein"} and model.interval_scale_ == factors
    after = _coverage(model, test)
    assert abs(after - 0.9) < 0.03 and abs(after - 0.9) < abs(before - 0.9), (before, after)
    mdlprob.settings.seed = 1
    mean_after = model.impute(hide_modality(test, "protein", np.ones(test.n_obs, dtype=bool)), "protein",
                              n_samples=50).layers["mean"]
    np.testing.assert_allclose(mean_after, mean_before, rtol=1e-5)  # only the spread changes
    model.save(tmp_path / "m")
    assert mdlprob.PoEVAE.load(tmp_path / "m", test).interval_scale_ == factors


def test_the_validation_split_is_the_default_calibration_set(mdata):
    model = mdlprob.PoEVAE(mdata, n_latent=2, n_hidden=8)
    model.train(max_epochs=2, progress_bar=False)
    with pytest.raises(ValueError, match="no validation observations to calibrate on"):
        model.calibrate_intervals()
    model.train(max_epochs=2, train_size=0.6, progress_bar=False)
    factors = model.calibrate_intervals()
    assert set(factors) == {"rna", "protein"} and all(f > 0 for f in factors.values())  # not the mixed table
    with pytest.raises(ValueError, match="modalities"):
        model.calibrate_intervals(modalities=["clinical"])


def test_an_ensemble_calibrates_its_mixture_on_the_shared_split(mdata, tmp_path):
    ens = mdlprob.models.Ensemble("PoEVAE", mdata, n_models=2, n_latent=2, n_hidden=8)
    ens.train(max_epochs=3, train_size=0.7, progress_bar=False)
    assert ens.members_[0].val_indices_ == ens.members_[1].val_indices_
    factors = ens.calibrate_intervals()
    assert set(factors) == {"rna", "protein"}
    ens.save(tmp_path / "e")
    assert mdlprob.models.Ensemble.load(tmp_path / "e", mdata).interval_scale_ == factors
    assert ens.sample_predictive(mdata, "protein", n_samples=4).min() >= 0


def test_per_feature_factors_follow_each_feature():
    gen = torch.Generator().manual_seed(1)
    spread = torch.tensor([0.5, 1.0, 3.0])
    truth = spread * torch.randn(300, 3, generator=gen)
    draws = torch.randn(200, 300, 3, generator=gen)
    observed = torch.ones_like(truth, dtype=torch.bool)
    factors = conformal_scale(truth, draws, observed, level=0.9, discrete=False, per_feature=True)
    np.testing.assert_allclose(factors, spread.numpy(), rtol=0.2)
    few = observed.clone()
    few[3:, 2] = False  # three entries cannot give a 90% conformal quantile: the pooled factor
    pooled = conformal_scale(truth, draws, few, level=0.9, discrete=False)
    assert conformal_scale(truth, draws, few, level=0.9, discrete=False, per_feature=True)[2] == pooled

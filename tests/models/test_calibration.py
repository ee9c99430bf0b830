"""Every model on ground truth: protein hidden for 40%, imputed from RNA + clinical.

One training per model (cached) serves two checks: imputation beats the per-feature mean,
and the 50/80/90/95% central intervals cover within 5 points of nominal (2 points in the
slow test with more data). The mixture models refit their likelihoods' noise under the
model posterior after training (``refit_noise``, on by default for them): without it, at
n=3000, MoPoEVAE's 50/80/90/95% intervals covered 54.8/83.8/92.4/96.3% (with importance
resampling) and MoEVAE's 57.2/85.8/93.8/97.1%.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

import mdlprob
from mdlprob.base._base_model import _q_name
from mdlprob.data import setup_mudata
from mdlprob.models import all_models
from tests.conftest import LIKELIHOODS

LEVELS = (0.5, 0.8, 0.9, 0.95)
#: Training budgets tuned per model; a registered model without one runs in the slow tier at 150 epochs.
EPOCHS = {"PoEVAE": 100, "MoPoEVAE": 300, "MoEVAE": 300, "FactorModel": 150}


@cache
def _fit(model_name: str, n_obs: int, epochs: int) -> dict:
    mdlprob.settings.seed = 0
    mdata = mdlprob.datasets.synthetic(n_obs, missing={"protein": 0.4}, n_vars={"rna": 100, "protein": 20}, seed=2)
    setup_mudata(mdata, likelihoods=LIKELIHOODS)
    cls = all_models()[model_name].cls
    model = cls(mdata, n_latent=8, n_hidden=64)
    model.train(max_epochs=epochs, batch_size=128, lr=3e-3, progress_bar=False)
    qs = sorted({round((1 - lv) / 2, 4) for lv in LEVELS} | {round((1 + lv) / 2, 4) for lv in LEVELS})
    imp = model.impute(mdata, "protein", given=["rna", "clinical"], n_samples=400, quantiles=qs)
    values, hidden = mdlprob.datasets.hidden_truth(mdata, "protein")
    rows = hidden.all(1)
    truth, pred = np.log1p(values[rows]), np.log1p(imp.layers["mean"][rows])
    baseline = np.log1p(values[~rows]).mean(0)
    coverage = {
        lv: mdlprob.metrics.interval_coverage(
            values[rows], imp.layers[_q_name(round((1 - lv) / 2, 4))][rows],
            imp.layers[_q_name(round((1 + lv) / 2, 4))][rows], discrete=True)
        for lv in LEVELS
    }
    return {
        "r": float(np.nanmean(mdlprob.metrics.pearson_per_feature(truth, pred))),
        "rmse_ratio": mdlprob.metrics.rmse(truth, pred) / mdlprob.metrics.rmse(truth, np.broadcast_to(baseline, truth.shape)),
        "coverage": coverage,
    }


MODELS = [name if name in EPOCHS else pytest.param(name, marks=pytest.mark.slow) for name in all_models()]


@pytest.mark.parametrize("model_name", MODELS)
def test_imputation_beats_the_feature_mean(model_name):
    res = _fit(model_name, 800, EPOCHS.get(model_name, 150))
    assert res["r"] > 0.5, res
    assert res["rmse_ratio"] < 0.8, res


@pytest.mark.parametrize("model_name", MODELS)
def test_central_intervals_cover_within_five_points(model_name):
    cov = _fit(model_name, 800, EPOCHS.get(model_name, 150))["coverage"]
    assert all(abs(cov[lv] - lv) <= 0.05 for lv in LEVELS), cov


#: Measured 2026-12-02 (n=3000, coverage at 50/80/90/95%): the central 50% interval of the count
#: models over-covers by about 3 points (PoEVAE 52.9/82.1/91.2/95.7, MoEVAE 53.3/82.6/91.6/95.9, MoPoEVAE 54.3/83.1/91.7/95.8);
#: the outer levels are within 2 points. Not a matter of scale: without the library-size draw of
#: count imputation (``module.library_sd`` set to 0 for PoEVAE) every level under-covers
#: (47.2/76.4/87.0/92.5), so the depth draw is needed in the tails and widens the centre; the
#: predictive's shape is off, which one conformal scale cannot mend (issue 13).
OVER_COVERED_CENTRE = {"PoEVAE", "MoEVAE", "MoPoEVAE"}


@pytest.mark.slow
@pytest.mark.parametrize("model_name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason="50% interval over-covers by ~3 points"))
    if name in OVER_COVERED_CENTRE else name for name in all_models()])
def test_intervals_cover_within_two_points_with_enough_data(model_name):
    cov = _fit(model_name, 3000, EPOCHS.get(model_name, 150))["coverage"]
    assert all(abs(cov[lv] - lv) <= 0.02 for lv in LEVELS), cov


def test_discrete_coverage_counts_the_expected_randomised_overlap():
    truth = np.array([0.0, 3.0, 5.0])
    lower, upper = np.array([-0.25, 2.5, 6.0]), np.array([0.25, 3.5, 7.0])
    assert mdlprob.metrics.interval_coverage(truth, lower, upper, discrete=True) == pytest.approx((0.5 + 1 + 0) / 3)
    assert mdlprob.metrics.interval_coverage(truth, lower, upper) == pytest.approx(2 / 3)

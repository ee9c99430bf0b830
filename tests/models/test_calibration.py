"""Calibration of every model's predictive intervals on ground truth (protein hidden for 40%)."""

from __future__ import annotations

import numpy as np
import pytest

import mdlprob
from mdlprob.base._base_model import _q_name
from mdlprob.data import setup_mudata
from tests.conftest import LIKELIHOODS

LEVELS = (0.5, 0.8, 0.9, 0.95)


def _coverages(model_name: str, n_obs: int, epochs: int) -> dict[float, float]:
    mdata = mdlprob.datasets.synthetic(n_obs, missing={"protein": 0.4}, n_vars={"rna": 100, "protein": 20}, seed=2)
    setup_mudata(mdata, likelihoods=LIKELIHOODS)
    cls = getattr(mdlprob.models, model_name)
    size = {"n_factors": 8} if model_name == "FactorModel" else {"n_latent": 8}
    model = cls(mdata, n_hidden=64, **size)
    model.train(max_epochs=epochs, batch_size=128, lr=3e-3, progress_bar=False)
    qs = sorted({round((1 - lv) / 2, 4) for lv in LEVELS} | {round((1 + lv) / 2, 4) for lv in LEVELS})
    imp = model.impute(mdata, "protein", n_samples=400, quantiles=qs)
    values, hidden = mdlprob.datasets.hidden_truth(mdata, "protein")
    rows = hidden.all(1)
    return {
        lv: mdlprob.metrics.interval_coverage(
            values[rows], imp.layers[_q_name(round((1 - lv) / 2, 4))][rows],
            imp.layers[_q_name(round((1 + lv) / 2, 4))][rows], discrete=True)
        for lv in LEVELS
    }


MOPOE_OVERCOVERS = pytest.mark.xfail(
    reason="measured 55.0-55.6% coverage of the 50% interval (other levels within 5 points): the mixture "
    "keeps the weak clinical-only component, which widens the predictive; open in issue 3",
    strict=False,
)


@pytest.mark.parametrize(("model_name", "epochs"), [("PoEVAE", 100), pytest.param("MoPoEVAE", 300, marks=MOPOE_OVERCOVERS),
                                                    ("MoEVAE", 300), ("FactorModel", 150)])
def test_central_intervals_cover_within_five_points(model_name, epochs):
    cov = _coverages(model_name, 800, epochs)
    assert all(abs(cov[lv] - lv) <= 0.05 for lv in LEVELS), cov


@pytest.mark.slow
def test_poe_vae_intervals_cover_within_two_points_with_enough_data():
    cov = _coverages("PoEVAE", 3000, 100)
    assert all(abs(cov[lv] - lv) <= 0.02 for lv in LEVELS), cov


def test_discrete_coverage_counts_the_expected_randomised_overlap():
    truth = np.array([0.0, 3.0, 5.0])
    lower, upper = np.array([-0.25, 2.5, 6.0]), np.array([0.25, 3.5, 7.0])
    assert mdlprob.metrics.interval_coverage(truth, lower, upper, discrete=True) == pytest.approx((0.5 + 1 + 0) / 3)
    assert mdlprob.metrics.interval_coverage(truth, lower, upper) == pytest.approx(2 / 3)

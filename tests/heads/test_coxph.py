"""Tests for mdlprob.heads.CoxPHHead."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sksurv.util import Surv

from mdlprob.heads import CoxPHHead
from mdlprob.metrics import harrell_c

BETA = np.array([1.0, -0.7, 0.0, 0.5])
FAST = {"max_epochs": 200, "n_posterior_samples": 100, "random_state": 0}


def _weibull(n: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, BETA.size))
    T = (-np.log(rng.random(n)) / (0.1 * np.exp(X @ BETA))) ** (1 / 1.5)
    C = rng.exponential(2 * np.median(T), size=n)
    return X, Surv.from_arrays(T <= C, np.round(np.minimum(T, C), 1))  # rounding creates ties


@pytest.fixture(scope="module")
def fitted():
    X, y = _weibull(300, 0)
    return CoxPHHead(**FAST).fit(X, y)


def test_recovers_coefficients_and_ranks(fitted):
    X_te, y_te = _weibull(300, 1)
    big = np.abs(BETA) > 0.3
    assert (np.sign(fitted.coef_[big]) == np.sign(BETA[big])).all()
    assert fitted.score(X_te, y_te) > 0.7
    assert fitted.score(X_te, y_te) == harrell_c(y_te["event"], y_te["time"], fitted.predict(X_te))
    assert fitted.coef_samples_.shape == (100, 4) and (fitted.coef_scale_ > 0).all()


def test_survival_function(fitted):
    X_te, _ = _weibull(50, 2)
    times = np.linspace(0, 8, 30)
    surv, lower, upper = fitted.predict_survival_function(X_te, times, return_interval=True)
    assert surv.shape == lower.shape == upper.shape == (50, 30)
    assert ((surv >= 0) & (surv <= 1)).all()
    assert (np.diff(surv, axis=1) <= 1e-12).all()
    np.testing.assert_allclose(surv[:, 0], 1.0)  # before the first event time
    assert ((lower <= surv + 1e-12) & (surv <= upper + 1e-12)).all()
    np.testing.assert_allclose(fitted.predict_survival_function(X_te, times), surv)
    risk, r_lo, r_hi = fitted.predict_risk(X_te, return_interval=True)
    assert ((r_lo <= risk) & (risk <= r_hi)).all()
    # higher risk -> lower survival
    order = np.argsort(risk)
    assert (np.diff(surv[order, -5]) <= 1e-12).all()


def test_latent_uncertainty_widens_risk_intervals(fitted):
    rng = np.random.default_rng(3)
    spread = np.where(np.arange(40) < 20, 0.02, 1.5)[None, :, None]
    X3 = np.zeros((40, 4))[None] + spread * rng.normal(size=(30, 40, 4))
    _, lower, upper = fitted.predict_risk(X3, return_interval=True)
    width = upper - lower
    assert width[20:].mean() > 2 * width[:20].mean()


def test_fit_on_samples(fitted):
    X, y = _weibull(300, 0)
    X3 = X[None] + 0.05 * np.random.default_rng(0).normal(size=(4, *X.shape))
    head = CoxPHHead(**FAST).fit(X3, y)
    # copies weighted 1/S: the posterior is about as wide as with one copy
    assert 0.6 < np.median(head.coef_scale_ / fitted.coef_scale_) < 1.6
    np.testing.assert_allclose(head.coef_, fitted.coef_, atol=0.15)

    class _Stub:
        def get_latent(self, mdata, *, n_samples):
            return X3[:n_samples]

    head2 = CoxPHHead(**FAST).fit_from_model(_Stub(), None, y, n_samples=2)
    assert head2.n_features_in_ == 4 and head2.score(X, y) > 0.7


def test_errors(fitted):
    X, y = _weibull(30, 4)
    with pytest.raises(NotFittedError):
        CoxPHHead().predict_risk(X)
    with pytest.raises(ValueError, match="structured array"):
        CoxPHHead(**FAST).fit(X, y["time"])
    with pytest.raises(ValueError, match="non-negative times"):
        CoxPHHead(**FAST).fit(X, Surv.from_arrays(y["event"], y["time"] - 100))
    with pytest.raises(ValueError, match="at least one observed event"):
        CoxPHHead(**FAST).fit(X, Surv.from_arrays(np.zeros(30, bool), y["time"]))
    with pytest.raises(ValueError, match="one entry per observation"):
        CoxPHHead(**FAST).fit(X, y[:-1])
    with pytest.raises(ValueError, match="prior_scale"):
        CoxPHHead(prior_scale=0).fit(X, y)
    with pytest.raises(ValueError, match="expecting 4 features"):
        fitted.predict_risk(X[:, :3])
    with pytest.raises(ValueError, match="times"):
        fitted.predict_survival_function(X, [-1.0])

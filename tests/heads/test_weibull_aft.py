"""Tests for mdlprob.heads.WeibullAFTHead."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.exceptions import NotFittedError
from sksurv.util import Surv

from mdlprob.heads import WeibullAFTHead
from mdlprob.metrics import harrell_c

BETA = np.array([0.8, -0.5, 0.0])
MU, SIGMA = 1.0, 0.7
FAST = {"max_epochs": 300, "n_posterior_samples": 100, "random_state": 0}


def _weibull_aft(n: int, seed: int):
    """log T = x beta + mu + sigma * eps, eps ~ Gumbel(min) (= log of an Exp(1)); ~40% censored."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, BETA.size))
    T = np.exp(X @ BETA + MU + SIGMA * np.log(rng.exponential(size=n)))
    C = rng.exponential(2 * np.median(T), size=n)
    return X, Surv.from_arrays(T <= C, np.minimum(T, C))


def _mle(X: np.ndarray, event: np.ndarray, time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference maximum likelihood (scipy BFGS, analytic gradient) of (beta, mu, log sigma) and its SEs."""
    log_t, ev, p = np.log(time), event.astype(float), X.shape[1]

    def nll(theta):
        s = np.exp(theta[p + 1])
        z = (log_t - X @ theta[:p] - theta[p]) / s
        d = ev - np.exp(z)
        value = -(ev * (z - theta[p + 1]) - np.exp(z)).sum()
        return value, np.r_[X.T @ d / s, d.sum() / s, (d * z).sum() + ev.sum()]

    res = minimize(nll, np.r_[np.zeros(p), log_t.mean(), 0.0], jac=True, method="BFGS")
    assert res.success, res.message
    eps = 1e-5
    hess = np.array([(nll(res.x + eps * e)[1] - nll(res.x - eps * e)[1]) / (2 * eps) for e in np.eye(p + 2)])
    return res.x, np.sqrt(np.diag(np.linalg.inv(hess)))


@pytest.fixture(scope="module")
def data():
    return _weibull_aft(500, 0)


@pytest.fixture(scope="module")
def fitted(data):
    return WeibullAFTHead(**FAST).fit(*data)


def test_recovers_truth_and_matches_the_mle(data, fitted):
    X, y = data
    theta, se = _mle(X, y["event"], y["time"])
    # truth: ~3 standard errors (SE ~0.045 here)
    np.testing.assert_allclose(fitted.coef_, BETA, atol=0.15)
    assert abs(fitted.intercept_ - MU) < 0.15
    assert abs(fitted.scale_ - SIGMA) < 0.1
    # the posterior mean sits near the MLE (weak prior, n = 500), posterior sd near the MLE's SE
    np.testing.assert_allclose(fitted.coef_, theta[:3], atol=0.06)
    assert abs(fitted.intercept_ - theta[3]) < 0.06
    assert abs(np.log(fitted.scale_) - theta[4]) < 0.06
    assert ((fitted.coef_scale_ / se[:3] > 0.6) & (fitted.coef_scale_ / se[:3] < 1.6)).all()
    assert fitted.coef_samples_.shape == (100, 3)
    assert fitted.scale_samples_.shape == (100,) and (fitted.scale_samples_ > 0).all()


def test_risk_and_concordance(fitted):
    X_te, y_te = _weibull_aft(300, 1)
    assert fitted.score(X_te, y_te) > 0.65
    risk, lower, upper = fitted.predict_risk(X_te, return_interval=True)
    assert risk.shape == lower.shape == upper.shape == (300,)
    assert ((lower <= risk) & (risk <= upper)).all()
    # risk = -E[log T | x] = -(x beta + mu - gamma sigma), averaged over draws
    expected = -(X_te @ fitted.coef_samples_.T + fitted.intercept_samples_
                 - np.euler_gamma * fitted.scale_samples_).mean(1)
    np.testing.assert_allclose(risk, expected, rtol=1e-10)
    assert fitted.score(X_te, y_te) == harrell_c(y_te["event"], y_te["time"], fitted.predict(X_te))


def test_survival_function(fitted):
    X_te, _ = _weibull_aft(40, 2)
    times = np.r_[0.0, np.linspace(0.1, 15, 25)]
    surv, lower, upper = fitted.predict_survival_function(X_te, times, return_interval=True)
    assert surv.shape == lower.shape == upper.shape == (40, 26)
    assert ((lower >= 0) & (upper <= 1)).all()
    assert (np.diff(surv, axis=1) <= 1e-12).all() and (np.diff(lower, axis=1) <= 1e-12).all()
    np.testing.assert_allclose(surv[:, 0], 1.0)
    assert ((lower <= surv) & (surv <= upper)).all()
    # the posterior-mean curve is close to the Weibull survival at the posterior means
    z = (np.log(times[1:])[None] - (X_te @ fitted.coef_ + fitted.intercept_)[:, None]) / fitted.scale_
    np.testing.assert_allclose(surv[:, 1:], np.exp(-np.exp(z)), atol=0.05)


def test_latent_uncertainty_widens_risk_intervals(fitted):
    rng = np.random.default_rng(3)
    spread = np.where(np.arange(40) < 20, 0.02, 1.5)[None, :, None]
    X3 = spread * rng.normal(size=(30, 40, 3))
    _, lower, upper = fitted.predict_risk(X3, return_interval=True)
    width = upper - lower
    assert width[20:].mean() > 2 * width[:20].mean()


def test_fit_on_samples_and_from_model(data, fitted):
    X, y = data
    X3 = X[None] + 0.05 * np.random.default_rng(0).normal(size=(4, *X.shape))
    head = WeibullAFTHead(**{**FAST, "max_epochs": 200}).fit(X3, y)
    # copies weighted 1/S: about as wide as with one copy, not 2x narrower
    assert 0.6 < np.median(head.coef_scale_ / fitted.coef_scale_) < 1.6
    np.testing.assert_allclose(head.coef_, fitted.coef_, atol=0.1)

    class _Stub:
        def get_latent(self, mdata, *, n_samples):
            return X3[:n_samples]

    head2 = WeibullAFTHead(max_epochs=100, random_state=0).fit_from_model(_Stub(), None, y, n_samples=2)
    assert head2.n_features_in_ == 3 and head2.score(X, y) > 0.65


def test_time_unit_does_not_change_the_fit(data):
    X, y = data
    years = WeibullAFTHead(max_epochs=30, random_state=0).fit(X, y)
    days = WeibullAFTHead(max_epochs=30, random_state=0).fit(X, Surv.from_arrays(y["event"], 365.0 * y["time"]))
    np.testing.assert_allclose(days.coef_, years.coef_, atol=1e-6)
    np.testing.assert_allclose(days.intercept_, years.intercept_ + np.log(365.0), atol=1e-6)
    np.testing.assert_allclose(days.scale_, years.scale_, atol=1e-6)


def test_errors(fitted):
    X, y = _weibull_aft(30, 4)
    with pytest.raises(NotFittedError):
        WeibullAFTHead().predict_risk(X)
    with pytest.raises(ValueError, match="structured array"):
        WeibullAFTHead(**FAST).fit(X, y["time"])
    with pytest.raises(ValueError, match="non-negative times"):
        WeibullAFTHead(**FAST).fit(X, Surv.from_arrays(y["event"], y["time"] - 100))
    with pytest.raises(ValueError, match="positive times"):
        WeibullAFTHead(**FAST).fit(X, Surv.from_arrays(y["event"], np.r_[0.0, y["time"][1:]]))
    with pytest.raises(ValueError, match="at least one observed event"):
        WeibullAFTHead(**FAST).fit(X, Surv.from_arrays(np.zeros(30, bool), y["time"]))
    with pytest.raises(ValueError, match="one entry per observation"):
        WeibullAFTHead(**FAST).fit(X, y[:-1])
    with pytest.raises(ValueError, match="prior_scale"):
        WeibullAFTHead(prior_scale=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="expecting 3 features"):
        fitted.predict_risk(X[:, :2])
    with pytest.raises(ValueError, match="times"):
        fitted.predict_survival_function(X, [-1.0])

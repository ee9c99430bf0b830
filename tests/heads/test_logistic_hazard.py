"""Tests for mdlprob.heads.LogisticHazardHead."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sksurv.nonparametric import kaplan_meier_estimator
from sksurv.util import Surv

from mdlprob.heads import CoxPHHead, LogisticHazardHead
from mdlprob.metrics import harrell_c

FAST = {"max_epochs": 200, "n_posterior_samples": 100, "random_state": 0}


def _exponential(n: int, seed: int, *, effect: float = 1.5):
    """Exponential times with log-hazard ``effect * x0`` (x1 is noise); ~30% censored."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    T = rng.exponential(np.exp(-effect * X[:, 0]))
    C = rng.exponential(2.0, size=n)
    return X, Surv.from_arrays(T <= C, np.minimum(T, C))


def _km_at(y, times: np.ndarray) -> np.ndarray:
    t, km = kaplan_meier_estimator(y["event"], y["time"])
    return np.r_[1.0, km][np.searchsorted(t, times, side="right")]


@pytest.fixture(scope="module")
def strong():
    X, y = _exponential(300, 0)
    return X, y, LogisticHazardHead(**FAST).fit(X, y)


def test_bins_shapes_and_concordance(strong):
    X, y, head = strong
    edges = head.time_bins_
    assert edges.shape == (11,) and edges[0] == 0.0 and (np.diff(edges) > 0).all()
    assert edges[-1] == y["time"][y["event"]].max()
    np.testing.assert_allclose(edges[5], np.quantile(y["time"][y["event"]], 0.5))
    assert head.coef_.shape == (10, 2) and head.coef_samples_.shape == (100, 10, 2)
    assert head.baseline_logit_.shape == (10,)
    assert (head.coef_[:, 0] > 0.7).all() and (np.abs(head.coef_[:, 1]) < 0.5).all()
    X_te, y_te = _exponential(300, 1)
    assert head.score(X_te, y_te) > 0.65
    assert head.score(X_te, y_te) == harrell_c(y_te["event"], y_te["time"], head.predict(X_te))


def test_survival_function_and_risk(strong):
    _, _, head = strong
    X_te, _ = _exponential(40, 2)
    times = np.r_[0.0, np.linspace(0.01, 1.2 * head.time_bins_[-1], 300)]
    surv, lower, upper = head.predict_survival_function(X_te, times, return_interval=True)
    assert surv.shape == lower.shape == upper.shape == (40, times.size)
    assert ((lower >= 0) & (upper <= 1)).all()
    assert (np.diff(surv, axis=1) <= 1e-12).all() and (np.diff(upper, axis=1) <= 1e-12).all()
    assert ((lower <= surv) & (surv <= upper)).all()
    np.testing.assert_allclose(surv[:, 0], 1.0)
    after = times > head.time_bins_[-1]
    np.testing.assert_allclose(surv[:, after], surv[:, after][:, :1].repeat(after.sum(), 1))  # flat
    # risk = -(restricted mean survival time up to the last edge) = -integral of the mean curve
    risk, r_lo, r_hi = head.predict_risk(X_te, return_interval=True)
    assert ((r_lo <= risk) & (risk <= r_hi)).all()
    grid = np.linspace(0.0, head.time_bins_[-1], 4001)
    s_grid = head.predict_survival_function(X_te, grid)
    rmst = ((s_grid[:, 1:] + s_grid[:, :-1]) / 2 * np.diff(grid)).sum(1)
    np.testing.assert_allclose(risk, -rmst, rtol=1e-3)
    # higher x0 -> higher risk, lower survival
    assert harrell_c(np.ones(40, bool), -X_te[:, 0], risk) > 0.9


def test_no_signal_reproduces_kaplan_meier():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 2))
    T = 10.0 * rng.weibull(1.5, size=300)
    C = rng.uniform(0.0, np.quantile(T, 0.9), size=300)
    y = Surv.from_arrays(T <= C, np.minimum(T, C))
    head = LogisticHazardHead(**{**FAST, "max_epochs": 500}).fit(X, y)
    edges = head.time_bins_[1:-1]  # KM at the last event time rests on a handful at risk
    marginal = head.predict_survival_function(X, edges).mean(0)  # population curve, not the curve at x = 0
    np.testing.assert_allclose(marginal, _km_at(y, edges), atol=0.03)


def test_crossing_hazards_are_captured():
    """Group 1 fails late (Weibull shape 4), group 0 early (shape 0.7): survival curves cross."""
    rng = np.random.default_rng(6)
    g = rng.random(400) < 0.5
    X = np.column_stack([g - 0.5, rng.normal(size=400)])
    T = np.where(g, 2.0 * rng.weibull(4.0, 400), 2.0 * rng.weibull(0.7, 400))
    y = Surv.from_arrays(T <= (C := rng.uniform(0.0, 6.0, 400)), np.minimum(T, C))
    head = LogisticHazardHead(**FAST).fit(X, y)
    assert head.coef_[0, 0] < -0.5 < 0.5 < head.coef_[-1, 0]  # the group effect reverses over time
    early, late = head.time_bins_[2], head.time_bins_[-2]
    s = head.predict_survival_function(np.array([[0.5, 0.0], [-0.5, 0.0]]), [early, late])
    assert s[0, 0] > s[1, 0] + 0.05 and s[0, 1] < s[1, 1] - 0.05
    for row, grp in ((0, g), (1, ~g)):
        np.testing.assert_allclose(s[row], _km_at(y[grp], np.array([early, late])), atol=0.12)
    # a proportional-hazards model can only order the two groups one way at every time
    cox = CoxPHHead(**FAST).fit(X, y)
    s_cox = cox.predict_survival_function(np.array([[0.5, 0.0], [-0.5, 0.0]]), [early, late])
    assert np.sign(s_cox[0, 0] - s_cox[1, 0]) == np.sign(s_cox[0, 1] - s_cox[1, 1])


def test_fit_on_samples_and_from_model(strong):
    X, y, head = strong
    X3 = X[None] + 0.05 * np.random.default_rng(0).normal(size=(4, *X.shape))
    h3 = LogisticHazardHead(**FAST).fit(X3, y)
    scale = h3.posterior_scale_["ab"] / head.posterior_scale_["ab"]
    assert 0.6 < np.median(scale) < 1.6  # copies weighted 1/S
    np.testing.assert_allclose(h3.coef_, head.coef_, atol=0.2)

    class _Stub:
        def get_latent(self, mdata, *, n_samples):
            return X3[:n_samples]

    h2 = LogisticHazardHead(n_bins=4, max_epochs=100, random_state=0).fit_from_model(_Stub(), None, y, n_samples=2)
    assert h2.n_features_in_ == 2 and h2.time_bins_.shape == (5,) and h2.score(X, y) > 0.65
    rng = np.random.default_rng(3)
    spread = np.where(np.arange(40) < 20, 0.02, 1.5)[None, :, None]
    _, lower, upper = head.predict_risk(spread * rng.normal(size=(30, 40, 2)), return_interval=True)
    assert (upper - lower)[20:].mean() > 2 * (upper - lower)[:20].mean()


def test_errors(strong):
    X, y = _exponential(30, 4)
    with pytest.raises(NotFittedError):
        LogisticHazardHead().predict_risk(X)
    with pytest.raises(ValueError, match="structured array"):
        LogisticHazardHead(**FAST).fit(X, y["time"])
    with pytest.raises(ValueError, match="non-negative times"):
        LogisticHazardHead(**FAST).fit(X, Surv.from_arrays(y["event"], y["time"] - 100))
    with pytest.raises(ValueError, match="at least one observed event"):
        LogisticHazardHead(**FAST).fit(X, Surv.from_arrays(np.zeros(30, bool), y["time"]))
    with pytest.raises(ValueError, match="one entry per observation"):
        LogisticHazardHead(**FAST).fit(X, y[:-1])
    with pytest.raises(ValueError, match="n_bins"):
        LogisticHazardHead(n_bins=0).fit(X, y)
    with pytest.raises(ValueError, match="drift_scale"):
        LogisticHazardHead(drift_scale=0.0).fit(X, y)
    with pytest.raises(ValueError, match="expecting 2 features"):
        strong[2].predict_risk(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="times"):
        strong[2].predict_survival_function(X, [np.nan])

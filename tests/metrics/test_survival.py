"""Tests for mdlprob.metrics survival metrics, cross-checked against scikit-survival."""

from __future__ import annotations

import numpy as np
import pytest
import sksurv.metrics as skm
import torch
from sksurv.util import Surv

from mdlprob.metrics import (
    brier_score,
    cumulative_dynamic_auc,
    harrell_c,
    integrated_brier_score,
    uno_c,
)


def _simulate(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    event_time = rng.exponential(np.exp(-x))
    cens_time = rng.exponential(1.5, size=n)
    time = np.round(np.minimum(event_time, cens_time), 1) + 0.1  # rounding creates tied times
    risk = x + rng.normal(scale=0.5, size=n)
    risk[:15] = np.round(risk[:15])  # tied risks
    return risk, Surv.from_arrays(event_time <= cens_time, time)


@pytest.fixture
def surv() -> dict:
    _, y_train = _simulate(300, 1)
    risk, y_test = _simulate(150, 2)
    times = np.array([0.2, 0.45, 0.7, 1.0, 1.6])  # inside the test follow-up [0.1, 4.2]
    surv_probs = np.exp(-np.exp(risk)[:, None] * times[None, :])
    return {"train": y_train, "test": y_test, "risk": risk, "times": times, "surv_probs": surv_probs}


def test_harrell_matches_sksurv(surv):
    y, r = surv["test"], surv["risk"]
    expected = skm.concordance_index_censored(y["event"], y["time"], r)[0]
    assert harrell_c(y["event"], y["time"], r) == pytest.approx(expected, abs=1e-12)
    assert harrell_c(y["event"].astype(int), y["time"], r) == pytest.approx(expected, abs=1e-12)


def test_harrell_known_values():
    event = np.array([1, 1, 0, 1])
    time = np.array([1.0, 2.0, 2.0, 3.0])
    # comparable pairs: (0,1) (0,2) (0,3) (1,2: censored at same time) (1,3)
    assert harrell_c(event, time, np.array([4.0, 3.0, 2.0, 1.0])) == 1.0
    assert harrell_c(event, time, np.array([1.0, 2.0, 3.0, 4.0])) == 0.0
    assert harrell_c(event, time, np.zeros(4)) == 0.5


@pytest.mark.parametrize("tau", [None, "q80"])
def test_uno_matches_sksurv(surv, tau):
    y_tr, y, r = surv["train"], surv["test"], surv["risk"]
    if tau is None:  # without truncation, test events must lie within the training follow-up
        keep = y["time"] < y_tr["time"].max()
        y, r = y[keep], r[keep]
    else:
        tau = float(np.quantile(y["time"], 0.8))
    expected = skm.concordance_index_ipcw(y_tr, y, r, tau)[0]
    assert uno_c(y_tr, y, r, tau) == pytest.approx(expected, abs=1e-10)


def test_uno_accepts_any_two_field_structured_array(surv):
    y_tr, y, r = surv["train"], surv["test"], surv["risk"]
    dtype = [("status", "i4"), ("days", "f8")]
    other_tr = np.array(list(zip(y_tr["event"], y_tr["time"], strict=True)), dtype=dtype)
    other = np.array(list(zip(y["event"], y["time"], strict=True)), dtype=dtype)
    assert uno_c(other_tr, other, r, 1.0) == pytest.approx(uno_c(y_tr, y, r, 1.0), abs=1e-12)


def test_brier_and_ibs_match_sksurv(surv):
    args = (surv["train"], surv["test"], surv["surv_probs"], surv["times"])
    times, scores = brier_score(*args)
    exp_times, exp_scores = skm.brier_score(*args)
    np.testing.assert_allclose(times, exp_times)
    np.testing.assert_allclose(scores, exp_scores, rtol=0, atol=1e-10)
    assert integrated_brier_score(*args) == pytest.approx(skm.integrated_brier_score(*args), abs=1e-10)


@pytest.mark.parametrize("time_dependent", [False, True])
def test_cumulative_dynamic_auc_matches_sksurv(surv, time_dependent):
    risk = surv["risk"]
    if time_dependent:
        risk = -np.log(surv["surv_probs"])  # cumulative hazard, one column per time
    args = (surv["train"], surv["test"], risk, surv["times"])
    auc, mean_auc = cumulative_dynamic_auc(*args)
    exp_auc, exp_mean = skm.cumulative_dynamic_auc(*args)
    np.testing.assert_allclose(auc, exp_auc, rtol=0, atol=1e-10)
    assert mean_auc == pytest.approx(exp_mean, abs=1e-10)
    auc1, mean1 = cumulative_dynamic_auc(surv["train"], surv["test"], surv["risk"], surv["times"][2])
    assert auc1.shape == (1,)
    assert mean1 == auc1[0]


def test_zero_censoring_survival():
    # The last training time is a censoring, so the censoring survival G drops to 0 there.
    y_tr = Surv.from_arrays([True, False, True, False], [1.0, 2.0, 3.0, 4.0])
    y = Surv.from_arrays([True, False, True, True], [1.0, 2.0, 3.0, 4.0])
    risk = np.array([4.0, 3.0, 2.0, 1.0])
    with pytest.raises(ValueError, match=r"censoring survival estimate .* is zero"):
        uno_c(y_tr, y, risk)
    assert uno_c(y_tr, y, risk, 3.5) == pytest.approx(skm.concordance_index_ipcw(y_tr, y, risk, 3.5)[0])
    # The Brier score gives such terms weight 0, as sksurv does.
    y = Surv.from_arrays([True, False, True, True, False], [1.0, 2.0, 3.0, 4.0, 5.0])
    probs = np.linspace(0.9, 0.1, 10).reshape(5, 2)
    scores = brier_score(y_tr, y, probs, [1.5, 4.0])[1]
    np.testing.assert_allclose(scores, skm.brier_score(y_tr, y, probs, [1.5, 4.0])[1], atol=1e-12)
    assert np.all(np.isfinite(scores))


def test_torch_inputs_match_numpy(surv):
    y_tr, y, r = surv["train"], surv["test"], surv["risk"]
    tr = torch.tensor(r)
    t_event, t_time = torch.tensor(y["event"].copy()), torch.tensor(y["time"].copy())
    assert harrell_c(t_event, t_time, tr) == harrell_c(y["event"], y["time"], r)
    assert uno_c(y_tr, y, tr, 1.0) == uno_c(y_tr, y, r, 1.0)
    args = (y_tr, y)
    ts = torch.tensor(surv["times"])
    np.testing.assert_array_equal(brier_score(*args, torch.tensor(surv["surv_probs"]), ts)[1],
                                  brier_score(*args, surv["surv_probs"], surv["times"])[1])
    assert integrated_brier_score(*args, torch.tensor(surv["surv_probs"]), ts) == integrated_brier_score(
        *args, surv["surv_probs"], surv["times"])
    np.testing.assert_array_equal(cumulative_dynamic_auc(*args, tr, ts)[0],
                                  cumulative_dynamic_auc(*args, r, surv["times"])[0])
    assert isinstance(harrell_c(y["event"], y["time"], tr), float)


def test_bad_inputs_raise(surv):
    y_tr, y, r = surv["train"], surv["test"], surv["risk"]
    with pytest.raises(ValueError, match="no observed event"):
        harrell_c(np.zeros(5), np.arange(5.0), np.arange(5.0))
    with pytest.raises(ValueError, match="`event` and `time` must have the same length"):
        harrell_c(np.ones(5), np.arange(4.0), np.arange(5.0))
    with pytest.raises(ValueError, match=r"`risk` must have one row per test sample \(5\), got 4"):
        harrell_c(np.ones(5), np.arange(5.0), np.arange(4.0))
    with pytest.raises(ValueError, match="`event` must be boolean or 0/1"):
        harrell_c(np.array([0, 1, 2]), np.arange(3.0), np.arange(3.0))
    with pytest.raises(ValueError, match="No comparable pairs"):
        harrell_c(np.array([1, 1]), np.array([1.0, 1.0]), np.arange(2.0))
    with pytest.raises(ValueError, match="`survival_train` must be a structured array"):
        uno_c(y_tr["time"], y, r)
    with pytest.raises(ValueError, match="largest time"):
        uno_c(y_tr, Surv.from_arrays([True, True], [1.0, 1e6]), np.arange(2.0))
    with pytest.raises(ValueError, match=r"`times` must lie within the test follow-up"):
        brier_score(y_tr, y, surv["surv_probs"], surv["times"] + 100)
    with pytest.raises(ValueError, match="`times` must be strictly increasing"):
        brier_score(y_tr, y, surv["surv_probs"], surv["times"][::-1])
    with pytest.raises(ValueError, match=r"`surv_probs` must have shape \(n_test, n_times\)"):
        brier_score(y_tr, y, surv["surv_probs"][:, :3], surv["times"])
    with pytest.raises(ValueError, match="at least two time points"):
        integrated_brier_score(y_tr, y, surv["surv_probs"][:, :1], surv["times"][:1])
    with pytest.raises(ValueError, match="2-D `risk` must have one column per time point"):
        cumulative_dynamic_auc(y_tr, y, surv["surv_probs"][:, :2], surv["times"])

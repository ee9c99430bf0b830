"""Behaviour of the fusion baselines: outputs, invariance to absent modalities, learning."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from mdlprob.fusion import EarlyFusion, IntermediateFusion, LateFusion, fusion_inputs
from mdlprob.metrics import harrell_c

from .conftest import subset

MODELS = {
    "early": lambda **kw: EarlyFusion(**kw),
    "late-mean": lambda **kw: LateFusion(combine="mean", **kw),
    "late-learned": lambda **kw: LateFusion(combine="learned", **kw),
    "kronecker": lambda **kw: IntermediateFusion(fusion="kronecker", **kw),
    "attention": lambda **kw: IntermediateFusion(fusion="attention", **kw),
}
FAST = {"max_epochs": 20, "random_state": 0}


def _fit(name, data, task, rows=None, **kw):
    rows = data["train"] if rows is None else rows
    y = data["label"] if task == "classification" else data["surv"]
    model = MODELS[name](task=task, **{**FAST, **kw})
    return model.fit(subset(data["X"], rows), y[rows], presence=subset(data["presence"], rows))


@pytest.mark.parametrize("name", list(MODELS))
def test_classification_outputs(name, data):
    model = _fit(name, data, "classification")
    X, P = subset(data["X"], data["test"]), subset(data["presence"], data["test"])
    proba = model.predict_proba(X, presence=P)
    assert proba.shape == (100, 3) and np.isfinite(proba).all() and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert list(model.classes_) == ["A", "B", "C"]
    pred = model.predict(X, presence=P)
    np.testing.assert_array_equal(pred, model.classes_[proba.argmax(axis=1)])
    assert model.score(X, data["label"][data["test"]], presence=P) == np.mean(pred == data["label"][data["test"]])
    assert model.loss_history_.shape == (FAST["max_epochs"],) and np.isfinite(model.loss_history_).all()


@pytest.mark.parametrize("name", ["early", "late-learned", "kronecker", "attention"])
def test_survival_outputs(name, data):
    model = _fit(name, data, "survival")
    X, P = subset(data["X"], data["test"]), subset(data["presence"], data["test"])
    risk = model.predict_risk(X, presence=P)
    assert risk.shape == (100,) and np.isfinite(risk).all()
    np.testing.assert_array_equal(model.predict(X, presence=P), risk)
    y_te = data["surv"][data["test"]]
    assert model.score(X, y_te, presence=P) == harrell_c(y_te["event"], y_te["time"], risk)
    times = np.linspace(0.0, np.quantile(data["surv"]["time"], 0.9), 25)
    surv = model.predict_survival_function(X, times, presence=P)
    assert surv.shape == (100, 25) and ((surv >= 0) & (surv <= 1)).all()
    assert (np.diff(surv, axis=1) <= 1e-12).all()
    np.testing.assert_allclose(surv[:, 0], 1.0)  # before the first event time
    order = np.argsort(risk)  # higher risk -> lower survival
    assert (np.diff(surv[order, -1]) <= 1e-12).all()
    # Breslow: the training data's mean cumulative hazard at the last event time matches the events
    Xtr, Ptr = subset(data["X"], data["train"]), subset(data["presence"], data["train"])
    y_tr = data["surv"][data["train"]]
    h = -np.log(model.predict_survival_function(Xtr, y_tr["time"], presence=Ptr).diagonal())
    np.testing.assert_allclose(h.sum(), y_tr["event"].sum(), rtol=1e-6)


@pytest.mark.parametrize("task", ["classification", "survival"])
@pytest.mark.parametrize("name", list(MODELS))
def test_absent_values_do_not_move_outputs(name, task, data):
    """Values in rows of an absent modality change neither the fit nor the predictions."""
    X, P = data["X"], data["presence"]
    absent = ~P["protein"]
    noisy = dict(X)
    noisy["protein"] = X["protein"].copy()
    noisy["protein"][absent] = np.random.default_rng(1).normal(size=(absent.sum(), X["protein"].shape[1])) * 1e3
    noisy["protein"][np.flatnonzero(absent)[:5]] = np.nan
    y = data["label"] if task == "classification" else data["surv"]
    rows = data["train"]
    model = MODELS[name](task=task, max_epochs=5, random_state=0)
    refit = clone(model).fit(subset(noisy, rows), y[rows], presence=subset(P, rows))
    model.fit(subset(X, rows), y[rows], presence=subset(P, rows))
    method = "predict_proba" if task == "classification" else "predict_risk"
    ref = getattr(model, method)(X, presence=P)
    np.testing.assert_array_equal(getattr(model, method)(noisy, presence=P), ref)
    np.testing.assert_array_equal(getattr(refit, method)(X, presence=P), ref)
    # a fitted modality left out of X counts as absent everywhere
    only = {m: v for m, v in X.items() if m != "protein"}
    P_abs = {**P, "protein": np.zeros_like(absent)}
    P_only = {m: v for m, v in P.items() if m != "protein"}
    np.testing.assert_array_equal(getattr(model, method)(only, presence=P_only),
                                  getattr(model, method)(noisy, presence=P_abs))


@pytest.mark.parametrize("name", list(MODELS))
def test_learns_label(name, data):
    model = _fit(name, data, "classification", max_epochs=50)
    te = data["test"]
    y_te = data["label"][te]
    majority = max(np.mean(y_te == c) for c in np.unique(y_te))
    acc = model.score(subset(data["X"], te), y_te, presence=subset(data["presence"], te))
    assert acc > majority + 0.1, (acc, majority)


@pytest.mark.parametrize("name", list(MODELS))
def test_learns_survival(name, data):
    model = _fit(name, data, "survival", max_epochs=50)
    te = data["test"]
    assert model.score(subset(data["X"], te), data["surv"][te], presence=subset(data["presence"], te)) > 0.6


@pytest.mark.parametrize("task", ["classification", "survival"])
def test_late_mean_is_average_of_available_heads(task, data):
    X, P = data["X"], data["presence"]
    model = _fit("late-mean", data, task)
    P_rna = {"rna": np.ones(300, dtype=bool), "protein": np.zeros(300, dtype=bool),
             "clinical": np.zeros(300, dtype=bool)}
    method = "predict_proba" if task == "classification" else "predict_risk"
    heads = model.predict_unimodal(X, presence=P_rna)
    np.testing.assert_allclose(getattr(model, method)(X, presence=P_rna), heads["rna"], rtol=1e-5, atol=1e-6)
    assert np.isnan(heads["protein"]).all()
    heads = model.predict_unimodal(X, presence=P)
    stacked = np.stack([heads[m] for m in model.modalities_])
    np.testing.assert_allclose(getattr(model, method)(X, presence=P), np.nanmean(stacked, axis=0),
                               rtol=1e-5, atol=1e-6)
    assert model.modality_weights_ == pytest.approx(dict.fromkeys(model.modalities_, 1 / 3))


def test_learned_weights_move(data):
    model = _fit("late-learned", data, "classification", max_epochs=50)
    w = model.modality_weights_
    assert sum(w.values()) == pytest.approx(1.0) and len(set(np.round(list(w.values()), 6))) > 1


@pytest.mark.parametrize("name", ["early", "kronecker"])
def test_reproducible(name, data):
    a = _fit(name, data, "classification", random_state=3).predict_proba(data["X"], presence=data["presence"])
    b = _fit(name, data, "classification", random_state=3).predict_proba(data["X"], presence=data["presence"])
    c = _fit(name, data, "classification", random_state=4).predict_proba(data["X"], presence=data["presence"])
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_mini_batches_and_mudata(data):
    mdata = data["mdata"]
    model = EarlyFusion(task="survival", batch_size=64, max_epochs=5, random_state=0).fit_mudata(mdata, data["surv"])
    ref = EarlyFusion(task="survival", batch_size=64, max_epochs=5, random_state=0)
    ref.fit(data["X"], data["surv"], presence=data["presence"])
    X, P = fusion_inputs(mdata)
    np.testing.assert_array_equal(model.predict_risk(X, presence=P), ref.predict_risk(X, presence=P))


def test_nan_entries_are_mean_filled(data):
    X = {m: v.copy() for m, v in data["X"].items()}
    X["rna"][::7, :5] = np.nan
    model = EarlyFusion(max_epochs=5, random_state=0).fit(X, data["label"], presence=data["presence"])
    proba = model.predict_proba(X, presence=data["presence"])
    assert np.isfinite(proba).all()
    assert model.standardiser_.indicator_["rna"].tolist() == [0, 1, 2, 3, 4]

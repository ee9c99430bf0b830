"""Tests for mdlprob.heads.ClassifierHead."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from mdlprob.heads import ClassifierHead
from mdlprob.metrics import accuracy, expected_calibration_error

FAST = {"max_epochs": 150, "n_posterior_samples": 50, "random_state": 0}


@parametrize_with_checks([ClassifierHead(max_epochs=30, n_posterior_samples=10, random_state=0)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    scaler = StandardScaler().fit(Xtr)
    return scaler.transform(Xtr), scaler.transform(Xte), ytr, yte


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 2))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "pos", "neg")
    return X, y


def test_breast_cancer_accuracy_and_intervals(cancer):
    Xtr, Xte, ytr, yte = cancer
    head = ClassifierHead(max_epochs=200, random_state=0).fit(Xtr, ytr)
    proba, lower, upper = head.predict_proba(Xte, return_interval=True)
    assert proba.shape == lower.shape == upper.shape == (Xte.shape[0], 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-10)
    assert ((lower <= proba) & (proba <= upper)).all()
    assert ((lower >= 0) & (upper <= 1)).all()
    assert accuracy(yte, proba) > 0.9
    assert (head.predict(Xte) == yte).mean() > 0.9
    assert expected_calibration_error(yte, proba) < 0.1
    assert head.coef_.shape == (Xtr.shape[1], 2) and head.intercept_.shape == (2,)
    entropy = head.predictive_entropy(Xte)
    assert entropy.shape == (Xte.shape[0],) and (entropy >= 0).all() and (entropy <= np.log(2) + 1e-12).all()


def test_latent_uncertainty_widens_intervals(blobs):
    X, y = blobs
    head = ClassifierHead(**FAST).fit(X, y)
    rng = np.random.default_rng(1)
    X_test = np.zeros((40, 2)) + [0.8, 0.0]
    spread = np.where(np.arange(40) < 20, 0.02, 2.0)[None, :, None]
    X3 = X_test[None] + spread * rng.normal(size=(30, 40, 2))
    _, lower, upper = head.predict_proba(X3, return_interval=True)
    width = (upper - lower)[:, 0]
    assert width[20:].mean() > 2 * width[:20].mean()
    # 2-D input is the zero-spread limit: identical rows give identical outputs.
    p2 = head.predict_proba(X_test)
    np.testing.assert_allclose(p2, p2[0][None].repeat(40, axis=0))


def test_fit_on_samples_keeps_data_count(blobs):
    X, y = blobs
    h2 = ClassifierHead(**FAST).fit(X, y)
    h3 = ClassifierHead(**FAST).fit(np.repeat(X[None], 5, axis=0), y)
    # five identical copies weighted 1/5 each: same posterior (not 5x more confident)
    ratio = h3.posterior_scale_["W"] / h2.posterior_scale_["W"]
    assert 0.6 < np.median(ratio) < 1.6
    assert (h3.predict(X) == y).mean() > 0.9


def test_string_labels_hidden_layer(blobs):
    X, y = blobs
    head = ClassifierHead(n_hidden=8, **FAST).fit(X, y)
    assert list(head.classes_) == ["neg", "pos"]
    assert set(head.predict(X)) <= {"neg", "pos"}
    assert (head.predict(X) == y).mean() > 0.85
    assert not hasattr(head, "coef_")


def test_fit_from_model(blobs):
    X, y = blobs

    class _Stub:
        def get_latent(self, mdata, *, n_samples):
            rng = np.random.default_rng(0)
            return X[None] + 0.1 * rng.normal(size=(n_samples, *X.shape))

    head = ClassifierHead(**FAST).fit_from_model(_Stub(), None, y, n_samples=4)
    assert head.n_features_in_ == 2
    assert (head.predict(X) == y).mean() > 0.9


def test_determinism(blobs):
    X, y = blobs
    X3 = X[None] + np.random.default_rng(0).normal(size=(3, *X.shape))
    a = ClassifierHead(**FAST).fit(X, y).predict_proba(X3)
    b = ClassifierHead(**FAST).fit(X, y).predict_proba(X3)
    np.testing.assert_array_equal(a, b)


def test_errors(blobs):
    X, y = blobs
    with pytest.raises(NotFittedError):
        ClassifierHead().predict_proba(X)
    with pytest.raises(ValueError, match="at least 2 classes"):
        ClassifierHead(**FAST).fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match="one label per observation"):
        ClassifierHead(**FAST).fit(np.repeat(X[None], 2, axis=0), y[:-1])
    X3 = np.repeat(X[None], 2, axis=0)
    X3[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        ClassifierHead(**FAST).fit(X3, y)
    with pytest.raises(ValueError, match="max_epochs"):
        ClassifierHead(max_epochs=0).fit(X, y)
    with pytest.raises(ValueError, match="level"):
        ClassifierHead(level=1.5).fit(X, y)
    head = ClassifierHead(max_epochs=5, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="expecting 2 features"):
        head.predict_proba(np.zeros((4, 3, 3)))

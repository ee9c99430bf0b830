"""Tests for mdlprob.metrics classification metrics, cross-checked against scikit-learn."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, brier_score_loss, f1_score, roc_auc_score

from mdlprob.metrics import accuracy, auroc, brier, expected_calibration_error, macro_f1


@pytest.fixture
def multi() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, size=120)
    logits = rng.normal(size=(120, 4)) + 1.5 * np.eye(4)[y]
    logits[:10] = np.round(logits[:10])  # tied scores
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, proba


@pytest.fixture
def binary() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, size=80)
    p = np.clip(0.3 * y + 0.7 * rng.random(80), 0, 1)
    p[:8] = 0.5
    return y, p


def test_accuracy_and_macro_f1_match_sklearn(multi):
    y, proba = multi
    pred = proba.argmax(axis=1)
    assert accuracy(y, proba) == pytest.approx(accuracy_score(y, pred), abs=1e-12)
    assert accuracy(y, pred) == pytest.approx(accuracy_score(y, pred), abs=1e-12)
    assert macro_f1(y, proba) == pytest.approx(f1_score(y, pred, average="macro"), abs=1e-12)
    pred_missing = np.where(pred == 3, 0, pred)  # a class never predicted
    assert macro_f1(y, pred_missing) == pytest.approx(f1_score(y, pred_missing, average="macro"), abs=1e-12)
    assert macro_f1(y, pred_missing.astype(float)) == macro_f1(y, pred_missing)


def test_binary_probability_vector(binary):
    y, p = binary
    pred = (p > 0.5).astype(int)
    assert accuracy(y, p) == pytest.approx(accuracy_score(y, pred))
    assert macro_f1(y, p) == pytest.approx(f1_score(y, pred, average="macro"))
    assert accuracy(y, p) == accuracy(y, np.stack([1 - p, p], axis=1))


def test_auroc_matches_sklearn(multi, binary):
    y, proba = multi
    assert auroc(y, proba) == pytest.approx(roc_auc_score(y, proba, multi_class="ovr"), abs=1e-12)
    yb, p = binary
    assert auroc(yb, p) == pytest.approx(roc_auc_score(yb, p), abs=1e-12)
    assert auroc(yb, np.stack([1 - p, p], axis=1)) == pytest.approx(roc_auc_score(yb, p), abs=1e-12)


def test_brier_matches_definition_and_sklearn(multi, binary):
    y, proba = multi
    expected = np.mean(np.sum((proba - np.eye(4)[y]) ** 2, axis=1))
    assert brier(y, proba) == pytest.approx(expected, abs=1e-12)
    assert brier(y, proba) == pytest.approx(brier_score_loss(y, proba, labels=[0, 1, 2, 3]), abs=1e-12)
    yb, p = binary
    assert brier(yb, p) == pytest.approx(brier_score_loss(yb, p), abs=1e-12)
    assert brier(yb, np.stack([1 - p, p], axis=1)) == pytest.approx(2 * brier_score_loss(yb, p), abs=1e-12)
    assert brier(np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 1.0]])) == 0.0


def _naive_ece(y: np.ndarray, proba: np.ndarray, n_bins: int) -> float:
    conf, pred = proba.max(axis=1), proba.argmax(axis=1)
    edges = np.linspace(0, 1, n_bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += sel.mean() * abs((pred[sel] == y[sel]).mean() - conf[sel].mean())
    return ece


def test_expected_calibration_error(multi, binary):
    y, proba = multi
    for n_bins in (1, 5, 15):
        assert expected_calibration_error(y, proba, n_bins=n_bins) == pytest.approx(
            _naive_ece(y, proba, n_bins), abs=1e-12)
    # Known values: confident and always right -> 0; always 0.75 confident and right half the time -> 0.25.
    assert expected_calibration_error(np.array([0, 1]), np.eye(2)) == 0.0
    half = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(np.array([0, 0, 1, 1]), half) == pytest.approx(0.25)
    yb, p = binary
    assert expected_calibration_error(yb, p) == pytest.approx(
        expected_calibration_error(yb, np.stack([1 - p, p], axis=1)), abs=1e-12)


def test_torch_inputs_match_numpy(multi):
    y, proba = multi
    ty, tp = torch.tensor(y), torch.tensor(proba, requires_grad=True)
    assert accuracy(ty, tp) == accuracy(y, proba)
    assert accuracy(ty, tp.argmax(dim=1)) == accuracy(y, proba)
    assert macro_f1(ty, tp) == macro_f1(y, proba)
    assert auroc(ty, tp) == auroc(y, proba)
    assert brier(ty, tp) == brier(y, proba)
    assert expected_calibration_error(ty, tp) == expected_calibration_error(y, proba)
    assert isinstance(auroc(ty, tp), float)
    assert auroc(ty, tp.float()) == pytest.approx(auroc(y, proba), abs=1e-6)


def test_bad_inputs_raise(multi):
    y, proba = multi
    with pytest.raises(ValueError, match=r"rows must sum to 1 \(within 0.0001\)"):
        brier(y, proba * 1.01)
    with pytest.raises(ValueError, match=r"labels in 0..3 \(proba has 4 columns\), got label 4"):
        auroc(np.r_[y[:-1], 4], proba)
    with pytest.raises(ValueError, match="non-negative integer class labels"):
        accuracy(np.r_[y[:-1], -1], proba)
    with pytest.raises(ValueError, match="`y_true` and `proba` must have the same length, got 119 and 120"):
        brier(y[:-1], proba)
    with pytest.raises(ValueError, match="must have the same length"):
        accuracy(y[:-1], proba.argmax(axis=1))
    with pytest.raises(ValueError, match=r"must hold probabilities of class 1 in \[0, 1\]"):
        auroc(np.array([0, 1, 1]), np.array([0.2, 1.5, 0.7]))
    with pytest.raises(ValueError, match="must contain both class 3 and other classes"):
        auroc(np.where(y == 3, 0, y), proba)
    with pytest.raises(ValueError, match="`n_bins` must be a positive integer"):
        expected_calibration_error(y, proba, n_bins=0)
    with pytest.raises(ValueError, match=r"shape \(n_samples,\) or \(n_samples, n_classes >= 2\)"):
        brier(y, proba[:, :1])

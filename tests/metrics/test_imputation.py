"""Tests for mdlprob.metrics imputation metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, spearmanr

from mdlprob.metrics import (
    crps,
    interval_coverage,
    pearson_per_feature,
    rmse,
    spearman_per_feature,
)


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(40, 5))
    pred = truth + rng.normal(scale=0.7, size=truth.shape)
    pred[:, 4] = np.round(pred[:, 4])  # ties for the rank-based metric
    mask = rng.random(truth.shape) < 0.6
    return truth, pred, mask


def _naive_crps(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """O(S^2) CRPS per entry: E|X - y| - 0.5 E|X - X'| over the empirical distribution."""
    term1 = np.abs(x - y[None]).mean(axis=0)
    term2 = np.abs(x[:, None] - x[None, :]).mean(axis=(0, 1))
    return term1 - 0.5 * term2


@pytest.mark.parametrize(("fn", "ref"), [(pearson_per_feature, pearsonr), (spearman_per_feature, spearmanr)])
def test_correlation_matches_scipy_with_mask(data, fn, ref):
    truth, pred, mask = data
    truth = truth.copy()
    truth[3, 1] = np.nan
    out = fn(truth, pred, mask)
    assert out.shape == (5,)
    for j in range(5):
        sel = mask[:, j] & ~np.isnan(truth[:, j])
        np.testing.assert_allclose(out[j], ref(truth[sel, j], pred[sel, j])[0], rtol=0, atol=1e-10)


@pytest.mark.parametrize(("fn", "ref"), [(pearson_per_feature, pearsonr), (spearman_per_feature, spearmanr)])
def test_correlation_without_mask_and_1d(data, fn, ref):
    truth, pred, _ = data
    out = fn(truth, pred)
    expected = [ref(truth[:, j], pred[:, j])[0] for j in range(5)]
    np.testing.assert_allclose(out, expected, atol=1e-10)
    np.testing.assert_allclose(fn(truth[:, 0], pred[:, 0]), expected[:1], atol=1e-10)


@pytest.mark.parametrize("fn", [pearson_per_feature, spearman_per_feature])
def test_correlation_nan_for_degenerate_columns(fn):
    truth = np.array([[1.0, 0.1, 1.0, 1.0], [2.0, 0.1, 2.0, 2.0], [3.0, 0.1, 3.0, 3.0], [4.0, 0.1, np.nan, 5.0]])
    pred = np.array([[1.0, 1.0, 1.0, 7.0], [3.0, 2.0, 2.0, 7.0], [2.0, 3.0, 3.0, 7.0], [5.0, 4.0, 4.0, 7.0]])
    mask = np.ones_like(truth, dtype=bool)
    mask[2:, 2] = False  # column 2: only 2 scored entries
    out = fn(truth, pred, mask)
    assert np.isfinite(out[0])
    assert np.isnan(out[1])  # constant truth (0.1 is not exactly representable)
    assert np.isnan(out[2])  # < 3 scored entries
    assert np.isnan(out[3])  # constant prediction


def test_pearson_perfect_and_scale_invariant():
    x = np.linspace(0, 1, 10)[:, None]
    np.testing.assert_allclose(pearson_per_feature(x, 3e8 * x + 1), [1.0])
    np.testing.assert_allclose(pearson_per_feature(x, -1e-9 * x), [-1.0])


def test_rmse_known_value_and_mask():
    truth = np.array([[0.0, 1.0], [2.0, np.nan]])
    pred = np.array([[3.0, 1.0], [2.0, 100.0]])
    assert rmse(truth, pred) == pytest.approx(np.sqrt(9 / 3))
    assert rmse(truth, pred, np.array([[True, False], [False, True]])) == pytest.approx(3.0)


def test_interval_coverage_known_values():
    truth = np.arange(6.0).reshape(2, 3)
    assert interval_coverage(truth, truth - 1, truth + 1) == 1.0
    assert interval_coverage(truth, truth, truth) == 1.0  # bounds are inclusive
    lower = truth - 1
    lower[0, :2] = truth[0, :2] + 0.5
    upper = truth + 2
    assert interval_coverage(truth, lower, upper) == pytest.approx(4 / 6)
    mask = np.zeros_like(truth, dtype=bool)
    mask[0] = True
    assert interval_coverage(truth, lower, upper, mask) == pytest.approx(1 / 3)


def test_crps_sorted_estimator_equals_naive():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=(7, 4))
    samples = rng.normal(size=(31, 7, 4))
    samples[:5] = np.round(samples[:5])  # include tied samples
    assert crps(truth, samples) == pytest.approx(_naive_crps(truth, samples).mean(), abs=1e-12)
    mask = rng.random(truth.shape) < 0.5
    assert crps(truth, samples, mask) == pytest.approx(_naive_crps(truth, samples)[mask].mean(), abs=1e-12)


def test_crps_known_values():
    truth = np.array([1.0, -2.0, 0.5])
    point = np.broadcast_to(np.array([3.0, -2.0, 0.0]), (10, 3))
    assert crps(truth, point) == pytest.approx(np.mean([2.0, 0.0, 0.5]))
    # Two equally likely values {0, 1}, y = 0: E|X - y| = 0.5, E|X - X'| = 0.5 -> 0.25.
    two = np.array([0.0, 1.0])[:, None]
    assert crps(np.array([0.0]), two) == pytest.approx(0.25)


def test_crps_excludes_nan_truth():
    truth = np.array([1.0, np.nan])
    samples = np.stack([np.array([1.0, 5.0])] * 3)
    assert crps(truth, samples) == 0.0


def test_torch_inputs_match_numpy(data):
    truth, pred, mask = data
    tt, tp, tm = torch.tensor(truth, dtype=torch.float32), torch.tensor(pred, dtype=torch.float32), torch.tensor(mask)
    t32, p32 = truth.astype(np.float32), pred.astype(np.float32)
    np.testing.assert_allclose(pearson_per_feature(tt, tp, tm), pearson_per_feature(t32, p32, mask), atol=1e-12)
    np.testing.assert_allclose(spearman_per_feature(tt, tp, tm), spearman_per_feature(t32, p32, mask), atol=1e-12)
    assert rmse(tt, tp.requires_grad_(), tm) == pytest.approx(rmse(t32, p32, mask), abs=1e-12)
    assert isinstance(rmse(tt, tp, tm), float)
    assert interval_coverage(tt, tp - 1, tp + 1, tm) == interval_coverage(t32, p32 - 1, p32 + 1, mask)
    samples = torch.randn(9, *truth.shape, dtype=torch.float64)
    assert crps(tt.double(), samples, tm) == pytest.approx(crps(truth.astype(np.float32), samples.numpy(), mask))
    assert crps(tt.to(torch.bfloat16), samples.float()) == pytest.approx(
        crps(tt.to(torch.bfloat16).double().numpy(), samples.float().numpy()))


def test_bad_inputs_raise(data):
    truth, pred, mask = data
    with pytest.raises(ValueError, match="`pred` must have the shape of `truth`"):
        rmse(truth, pred[:, :3])
    with pytest.raises(ValueError, match="`mask` must be a boolean array"):
        rmse(truth, pred, mask.astype(int))
    with pytest.raises(ValueError, match=r"`mask` must have the shape of `truth` \(40, 5\), got \(40, 4\)"):
        pearson_per_feature(truth, pred, mask[:, :4])
    with pytest.raises(ValueError, match="No entries to score"):
        rmse(truth, pred, np.zeros_like(mask))
    bad = pred.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="`pred` must be finite at scored entries"):
        rmse(truth, bad)
    assert np.isfinite(rmse(truth, bad, ~np.eye(40, 5, dtype=bool)))  # unscored NaN is fine
    with pytest.raises(ValueError, match="`lower` must be <= `upper`"):
        interval_coverage(truth, truth + 1, truth - 1)
    with pytest.raises(ValueError, match=r"`samples` must have shape \(S, \*truth.shape\)"):
        crps(truth, pred)
    with pytest.raises(ValueError, match="`pred` must be numeric"):
        rmse(truth, np.full(truth.shape, "a"))
    with pytest.raises(ValueError, match="1- or 2-dimensional"):
        pearson_per_feature(np.zeros((3, 3, 3)), np.zeros((3, 3, 3)))

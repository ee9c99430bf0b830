"""Tests for mdlprob.metrics image metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from mdlprob.metrics import (
    interval_coverage,
    pixel_interval_coverage,
    psnr,
    ssim,
    uncertainty_error_correlation,
)

SHAPE = (1, 12, 10)


@pytest.fixture
def images() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:12, :10]
    base = 0.5 + 0.4 * np.sin(xx / 2.0)[None] * np.cos(yy / 3.0)[None] * rng.uniform(0.5, 1.0, (5, 1, 1))
    truth = np.clip(base + 0.05 * rng.standard_normal(base.shape), 0, 1).reshape(5, -1)
    pred = np.clip(truth + rng.normal(0, 0.1, truth.shape) * np.linspace(0.2, 1.5, 5)[:, None], 0, 1)
    return truth, pred


def _naive_ssim(x: np.ndarray, y: np.ndarray, weights: np.ndarray, *, sample: bool, big: float = 1.0) -> float:
    """Mean SSIM over every window fully inside the image, one window at a time."""
    k = weights.shape[0]
    c1, c2 = (0.01 * big) ** 2, (0.03 * big) ** 2
    values = []
    for i in range(x.shape[0] - k + 1):
        for j in range(x.shape[1] - k + 1):
            a, b = x[i:i + k, j:j + k], y[i:i + k, j:j + k]
            mx, my = (weights * a).sum(), (weights * b).sum()
            norm = k * k / (k * k - 1.0) if sample else 1.0
            vx = norm * (weights * (a - mx) ** 2).sum()
            vy = norm * (weights * (b - my) ** 2).sum()
            vxy = norm * (weights * (a - mx) * (b - my)).sum()
            values.append((2 * mx * my + c1) * (2 * vxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_psnr_known_values():
    truth = np.zeros((3, 16))
    pred = np.stack([np.full(16, 0.1), np.full(16, 0.01), np.zeros(16)])
    out = psnr(truth, pred)
    np.testing.assert_allclose(out[:2], [20.0, 40.0])
    assert out[2] == np.inf
    np.testing.assert_allclose(psnr(truth, pred, data_range=255.0)[0], 10 * np.log10(255.0**2 / 0.01))


def test_psnr_matches_formula_and_accepts_4d_and_torch(images):
    truth, pred = images
    expected = 10 * np.log10(1.0 / ((truth - pred) ** 2).mean(1))
    np.testing.assert_allclose(psnr(truth, pred), expected)
    np.testing.assert_allclose(psnr(truth.reshape(5, *SHAPE), pred.reshape(5, *SHAPE)), expected)
    np.testing.assert_allclose(psnr(torch.as_tensor(truth), torch.as_tensor(pred, dtype=torch.float32)), expected,
                               rtol=1e-5)
    assert np.all(np.diff(expected) < 0)  # the fixture's noise grows row by row


@pytest.mark.parametrize("win_size", [3, 7])
def test_ssim_uniform_matches_direct_formula(images, win_size):
    truth, pred = images
    out = ssim(truth, pred, image_shape=SHAPE, win_size=win_size)
    weights = np.full((win_size, win_size), 1.0 / win_size**2)
    expected = [_naive_ssim(t.reshape(12, 10), p.reshape(12, 10), weights, sample=True) for t, p in zip(truth, pred, strict=True)]
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)


def test_ssim_gaussian_matches_direct_formula():
    rng = np.random.default_rng(1)
    truth = rng.random((2, 1 * 13 * 14))
    pred = np.clip(truth + 0.2 * rng.standard_normal(truth.shape), 0, 1)
    out = ssim(truth, pred, image_shape=(1, 13, 14), window="gaussian", data_range=2.0)
    g = np.exp(-0.5 * (np.arange(-5, 6) / 1.5) ** 2)
    g /= g.sum()
    expected = [_naive_ssim(t.reshape(13, 14), p.reshape(13, 14), np.outer(g, g), sample=False, big=2.0)
                for t, p in zip(truth, pred, strict=True)]
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)


def test_ssim_against_scikit_image(images):
    metrics = pytest.importorskip("skimage.metrics", reason="scikit-image is not installed")
    truth, pred = images
    out = ssim(truth, pred, image_shape=SHAPE)
    expected = [metrics.structural_similarity(t.reshape(12, 10), p.reshape(12, 10), data_range=1.0)
                for t, p in zip(truth, pred, strict=True)]
    np.testing.assert_allclose(out, expected, rtol=1e-7)


def test_ssim_invariants_and_channels(images):
    truth, pred = images
    np.testing.assert_allclose(ssim(truth, truth, image_shape=SHAPE), 1.0)
    out = ssim(truth, pred, image_shape=SHAPE)
    assert np.all((out > -1) & (out < 1))
    noise = np.random.default_rng(3).standard_normal(truth.shape[1])
    noisier = truth[0] + np.linspace(0.05, 0.5, 4)[:, None] * noise  # one image, growing noise
    assert np.all(np.diff(ssim(np.tile(truth[0], (4, 1)), noisier, image_shape=SHAPE)) < 0)
    np.testing.assert_allclose(ssim(pred, truth, image_shape=SHAPE), out)  # symmetric
    # two channels: the mean of the per-channel SSIMs
    two = ssim(np.concatenate([truth, pred], 1), np.concatenate([pred, pred], 1), image_shape=(2, 12, 10))
    np.testing.assert_allclose(two, (out + 1.0) / 2)


def test_pixel_interval_coverage_known_values_and_pooled():
    truth = np.array([[0.1, 0.5, 0.9, 0.3], [0.2, 0.2, 0.2, 0.2]])
    lower = np.full_like(truth, 0.15)
    upper = np.full_like(truth, 0.6)
    np.testing.assert_allclose(pixel_interval_coverage(truth, lower, upper), [0.5, 1.0])
    mask = np.array([[True, True, False, False], [False, False, False, False]])
    out = pixel_interval_coverage(truth, lower, upper, mask)
    assert out[0] == 0.5 and np.isnan(out[1])
    rng = np.random.default_rng(0)
    t = rng.random((6, 20))
    lo, hi = t - rng.random(t.shape) + 0.3, t + 0.5
    assert np.mean(pixel_interval_coverage(t, lo, hi)) == pytest.approx(interval_coverage(t, lo, hi))


def test_uncertainty_error_correlation_matches_scipy(images):
    truth, pred = images
    rng = np.random.default_rng(2)
    err = np.abs(truth - pred)
    sd = err + 0.05 * rng.random(err.shape)
    per_image, pooled = uncertainty_error_correlation(truth, pred, sd)
    assert per_image.shape == (5,)
    np.testing.assert_allclose(per_image, [spearmanr(sd[i], err[i])[0] for i in range(5)], atol=1e-10)
    assert pooled == pytest.approx(spearmanr(sd.ravel(), err.ravel())[0], abs=1e-10)
    assert np.all(per_image > 0.5)
    mask = rng.random(truth.shape) < 0.5
    per_m, pooled_m = uncertainty_error_correlation(truth, pred, sd, mask)
    np.testing.assert_allclose(per_m[1], spearmanr(sd[1][mask[1]], err[1][mask[1]])[0], atol=1e-10)
    assert pooled_m == pytest.approx(spearmanr(sd[mask], err[mask])[0], abs=1e-10)
    flipped, _ = uncertainty_error_correlation(truth, pred, 1.0 / (sd + 1.0))
    np.testing.assert_allclose(flipped, -per_image, atol=1e-10)


def test_bad_inputs_raise(images):
    truth, pred = images
    with pytest.raises(ValueError, match="must have the shape of `truth`"):
        psnr(truth, pred[:, :5])
    with pytest.raises(ValueError, match="one image per row"):
        psnr(truth[0], pred[0])
    bad = pred.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="`pred` must be finite"):
        ssim(truth, bad, image_shape=SHAPE)
    with pytest.raises(ValueError, match="data_range"):
        psnr(truth, pred, data_range=0.0)
    with pytest.raises(ValueError, match=r"image_shape \(C, H, W\).*120 pixels"):
        ssim(truth, pred, image_shape=(1, 10, 10))
    with pytest.raises(ValueError, match="win_size.*odd"):
        ssim(truth, pred, image_shape=SHAPE, win_size=4)
    with pytest.raises(ValueError, match="win_size"):
        ssim(truth, pred, image_shape=SHAPE, win_size=11)
    with pytest.raises(ValueError, match="gaussian window spans 11"):
        ssim(truth, pred, image_shape=SHAPE, window="gaussian")
    with pytest.raises(ValueError, match="window"):
        ssim(truth, pred, image_shape=SHAPE, window="box")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lower.*<= `upper`"):
        pixel_interval_coverage(truth, pred + 0.1, pred - 0.1)
    with pytest.raises(ValueError, match="non-negative"):
        uncertainty_error_correlation(truth, pred, -np.ones_like(pred))
    with pytest.raises(ValueError, match="boolean"):
        uncertainty_error_correlation(truth, pred, np.ones_like(pred), np.ones_like(pred))

"""Image metrics: PSNR, SSIM, per-image interval coverage and uncertainty-error agreement.

Images come one per row, as the flattened ``(n_images, C * H * W)`` arrays of an image
modality's ``X`` or of ``impute`` layers (arrays ``(n_images, C, H, W)`` are flattened the
same way). Unlike the imputation metrics, images must be complete: NaN pixels raise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from scipy.ndimage import gaussian_filter, uniform_filter

from ._imputation import interval_coverage, spearman_per_feature
from ._utils import check_finite, check_same_shape, to_bool_mask, to_numpy

_K1, _K2 = 0.01, 0.03
_GAUSSIAN_SIGMA, _GAUSSIAN_TRUNCATE = 1.5, 3.5


def _images(x: Any, name: str) -> np.ndarray:
    """``x`` as a finite float ``(n_images, n_pixels)`` array."""
    a = to_numpy(x, name)
    if a.ndim < 2:
        msg = f"`{name}` must hold one image per row, shape (n_images, n_pixels) or (n_images, C, H, W), got {a.shape}."
        raise ValueError(msg)
    check_finite(a, name)
    return a.reshape(a.shape[0], -1)


def _pair(truth: Any, pred: Any, pred_name: str = "pred") -> tuple[np.ndarray, np.ndarray]:
    t = to_numpy(truth, "truth")
    p = to_numpy(pred, pred_name)
    check_same_shape(t, p, "truth", pred_name)
    return _images(t, "truth"), _images(p, pred_name)


def _scored(mask: Any | None, truth: Any, flat_shape: tuple[int, int]) -> np.ndarray:
    """The boolean mask (all true when None) in the flattened ``(n_images, n_pixels)`` layout."""
    if mask is None:
        return np.ones(flat_shape, dtype=bool)
    return to_bool_mask(mask, to_numpy(truth, "truth").shape).reshape(flat_shape)


def _check_range(data_range: float) -> float:
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float, np.floating, np.integer)) \
            or not np.isfinite(data_range) or data_range <= 0:
        msg = f"Expected data_range to be a positive number (max - min possible intensity), got {data_range!r}."
        raise ValueError(msg)
    return float(data_range)


def psnr(truth: Any, pred: Any, *, data_range: float = 1.0) -> np.ndarray:
    r"""Peak signal-to-noise ratio of each image, in decibels.

    Parameters
    ----------
    truth
        True images, ``(n_images, n_pixels)`` or ``(n_images, C, H, W)``.
    pred
        Predicted (imputed) images, same shape.
    data_range
        Difference between the largest and smallest possible intensity (1 for [0, 1]).

    Returns
    -------
    numpy.ndarray
        Shape ``(n_images,)``; ``inf`` where an image is predicted exactly.

    Raises
    ------
    ValueError
        On shape mismatch, NaN/inf pixels or a non-positive ``data_range``.

    Notes
    -----
    :math:`\mathrm{PSNR} = 10 \log_{10}(L^2 / \mathrm{MSE})` with :math:`L` = ``data_range``
    and the MSE over the image's pixels (as ``skimage.metrics.peak_signal_noise_ratio``).
    """
    t, p = _pair(truth, pred)
    big = _check_range(data_range)
    mse = np.mean((t - p) ** 2, axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(big**2 / mse)


def ssim(truth: Any, pred: Any, *, image_shape: Sequence[int], data_range: float = 1.0, win_size: int = 7,
         window: Literal["uniform", "gaussian"] = "uniform") -> np.ndarray:
    r"""Mean structural similarity of each image (Wang et al., 2004).

    Parameters
    ----------
    truth
        True images, ``(n_images, C * H * W)`` (or ``(n_images, C, H, W)``).
    pred
        Predicted images, same shape.
    image_shape
        ``(C, H, W)`` of one image (an image modality's ``uns["image_shape"]``).
    data_range
        Difference between the largest and smallest possible intensity (1 for [0, 1]).
    win_size
        Side of the ``"uniform"`` window: odd, at least 3, at most ``min(H, W)``. The
        ``"gaussian"`` window ignores it and uses :math:`\sigma = 1.5` over 11 x 11 pixels.
    window
        ``"uniform"`` (mean over a ``win_size`` square, with sample (co)variances: the
        defaults of ``skimage.metrics.structural_similarity``) or ``"gaussian"`` (the
        weights of Wang et al., with population (co)variances: skimage's
        ``gaussian_weights=True, use_sample_covariance=False``).

    Returns
    -------
    numpy.ndarray
        Shape ``(n_images,)``, values in ``[-1, 1]`` (1 for identical images).

    Raises
    ------
    ValueError
        On shape mismatch, an ``image_shape`` that does not match the rows, NaN/inf
        pixels, a bad ``win_size`` or ``window``, or a non-positive ``data_range``.

    Notes
    -----
    With local means :math:`\mu`, variances :math:`\sigma^2` and covariance
    :math:`\sigma_{xy}` under the window, :math:`C_1 = (0.01 L)^2`, :math:`C_2 = (0.03 L)^2`,

    .. math::
        \mathrm{SSIM}(x, y) = \frac{(2\mu_x\mu_y + C_1)(2\sigma_{xy} + C_2)}
        {(\mu_x^2 + \mu_y^2 + C_1)(\sigma_x^2 + \sigma_y^2 + C_2)},

    averaged over the pixels whose window lies inside the image, then over channels.

    References
    ----------
    Wang, Bovik, Sheikh & Simoncelli (2004). Image quality assessment: from error
    visibility to structural similarity. IEEE Trans. Image Process. 13(4), 600-612.
    """
    t, p = _pair(truth, pred)
    big = _check_range(data_range)
    c, h, w = _check_shape(image_shape, t.shape[1])
    if window == "uniform":
        if isinstance(win_size, bool) or not isinstance(win_size, (int, np.integer)) or win_size < 3 \
                or win_size % 2 == 0 or win_size > min(h, w):
            msg = f"Expected win_size to be an odd int in [3, min(H, W) = {min(h, w)}], got {win_size!r}."
            raise ValueError(msg)
        size, cov_norm = int(win_size), win_size**2 / (win_size**2 - 1.0)

        def filt(a):
            return uniform_filter(a, size=(1, size, size))
    elif window == "gaussian":
        size, cov_norm = 2 * int(_GAUSSIAN_TRUNCATE * _GAUSSIAN_SIGMA + 0.5) + 1, 1.0
        if size > min(h, w):
            msg = f"The gaussian window spans {size} pixels, more than the image's min(H, W) = {min(h, w)}."
            raise ValueError(msg)

        def filt(a):
            return gaussian_filter(a, sigma=(0.0, _GAUSSIAN_SIGMA, _GAUSSIAN_SIGMA), truncate=_GAUSSIAN_TRUNCATE)
    else:
        msg = f"Expected window to be 'uniform' or 'gaussian', got {window!r}."
        raise ValueError(msg)
    x = t.reshape(-1, h, w)  # (n_images * C, H, W)
    y = p.reshape(-1, h, w)
    ux, uy = filt(x), filt(y)
    vx = cov_norm * (filt(x * x) - ux * ux)
    vy = cov_norm * (filt(y * y) - uy * uy)
    vxy = cov_norm * (filt(x * y) - ux * uy)
    c1, c2 = (_K1 * big) ** 2, (_K2 * big) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    pad = (size - 1) // 2
    inner = s[:, pad:h - pad, pad:w - pad]
    return inner.reshape(t.shape[0], c, -1).mean(axis=(1, 2))


def _check_shape(image_shape: Sequence[int], n_pixels: int) -> tuple[int, int, int]:
    shape = tuple(int(v) for v in np.asarray(image_shape).reshape(-1))
    if len(shape) != 3 or min(shape) < 1 or int(np.prod(shape)) != n_pixels:
        msg = (f"Expected image_shape (C, H, W) with C * H * W == {n_pixels} pixels per row, "
               f"got {tuple(np.asarray(image_shape).reshape(-1))}.")
        raise ValueError(msg)
    return shape


def pixel_interval_coverage(truth: Any, lower: Any, upper: Any, mask: Any | None = None) -> np.ndarray:
    r"""Fraction of each image's pixels whose true value lies in ``[lower, upper]``.

    The pooled coverage over all scored pixels is :func:`interval_coverage` of the same
    arguments; this per-image view shows which scans are over- or under-confident.

    Parameters
    ----------
    truth
        True images, ``(n_images, n_pixels)`` or ``(n_images, C, H, W)``.
    lower, upper
        Interval bounds (e.g. ``impute`` layers ``q05`` and ``q95``), same shape.
    mask
        Optional boolean array of ``truth``'s shape; only ``True`` pixels are scored
        (e.g. the brain, leaving out a trivially covered background).

    Returns
    -------
    numpy.ndarray
        Shape ``(n_images,)``; NaN for an image without a scored pixel.

    Raises
    ------
    ValueError
        As :func:`interval_coverage`: shape mismatch, NaN/inf values, ``lower > upper``
        or no scored pixel at all.
    """
    t = _images(truth, "truth")
    interval_coverage(truth, lower, upper, mask)  # validates the bounds and the mask
    lo = to_numpy(lower, "lower").reshape(t.shape)
    hi = to_numpy(upper, "upper").reshape(t.shape)
    scored = _scored(mask, truth, t.shape)
    covered = ((lo <= t) & (t <= hi) & scored).sum(axis=1)
    n = scored.sum(axis=1)
    return np.where(n > 0, covered / np.maximum(n, 1), np.nan)


def uncertainty_error_correlation(truth: Any, mean: Any, sd: Any, mask: Any | None = None) -> tuple[np.ndarray, float]:
    r"""Spearman correlation between predicted sd and absolute error, per image and pooled.

    A useful uncertainty map is high where the imputed mean is wrong: a positive
    correlation says the sd ranks pixels by their error.

    Parameters
    ----------
    truth
        True images, ``(n_images, n_pixels)`` or ``(n_images, C, H, W)``.
    mean
        Predicted mean images (``impute`` layer ``mean``), same shape.
    sd
        Predicted sd images (``impute`` layer ``std``), same shape, non-negative.
    mask
        Optional boolean array of ``truth``'s shape; only ``True`` pixels are scored.

    Returns
    -------
    per_image
        Shape ``(n_images,)``: the Spearman correlation over each image's scored pixels;
        NaN where fewer than 3 pixels are scored or the error or sd is constant.
    pooled
        The Spearman correlation over every scored pixel of every image.

    Raises
    ------
    ValueError
        On shape mismatch, NaN/inf values, a negative sd or a non-boolean mask.
    """
    t, m = _pair(truth, mean, "mean")
    _, s = _pair(truth, sd, "sd")
    if (s < 0).any():
        msg = f"`sd` must be non-negative, got {int((s < 0).sum())} negative value(s)."
        raise ValueError(msg)
    err = np.abs(t - m)
    scored = _scored(mask, truth, t.shape)
    per_image = spearman_per_feature(err.T, s.T, scored.T)
    pooled = spearman_per_feature(err.reshape(-1), s.reshape(-1), scored.reshape(-1))[0]
    return per_image, float(pooled)

"""Imputation metrics: per-feature correlation, RMSE, interval coverage and CRPS.

All functions score the entries selected by an optional boolean ``mask`` (for
example the entries hidden from the model); entries where ``truth`` is NaN are
always excluded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata

from ._utils import check_same_shape, to_bool_mask, to_numpy

_MIN_CORR_ENTRIES = 3


def _scored(truth: Any, mask: Any | None) -> tuple[np.ndarray, np.ndarray]:
    """Convert ``truth`` and return it with the boolean array of entries to score."""
    t = to_numpy(truth, "truth")
    if t.ndim == 0:
        msg = f"`truth` must be at least 1-dimensional, got a scalar of shape {t.shape}."
        raise ValueError(msg)
    scored = ~np.isnan(t)
    if mask is not None:
        scored &= to_bool_mask(mask, t.shape)
    return t, scored


def _check_scored_finite(a: np.ndarray, scored: np.ndarray, name: str) -> None:
    bad = scored & ~np.isfinite(a)
    if bad.any():
        msg = f"`{name}` must be finite at scored entries, got {int(bad.sum())} NaN/inf value(s)."
        raise ValueError(msg)


def _prepare_pair(truth: Any, pred: Any, mask: Any | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t, scored = _scored(truth, mask)
    p = to_numpy(pred, "pred")
    check_same_shape(t, p, "truth", "pred")
    _check_scored_finite(t, scored, "truth")
    _check_scored_finite(p, scored, "pred")
    return t, p, scored


def _require_entries(scored: np.ndarray) -> int:
    n = int(scored.sum())
    if n == 0:
        msg = "No entries to score: every entry of `truth` is NaN or excluded by `mask`."
        raise ValueError(msg)
    return n


def _as_2d(a: np.ndarray, name: str) -> np.ndarray:
    if a.ndim == 1:
        return a[:, None]
    if a.ndim != 2:
        msg = f"`{name}` must be 1- or 2-dimensional (n_obs, n_vars), got shape {a.shape}."
        raise ValueError(msg)
    return a


def _masked_pearson(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Column-wise Pearson r of ``x`` and ``y`` over the entries where ``w`` is true."""
    n = w.sum(axis=0)
    cols = np.arange(x.shape[1])
    first = np.argmax(w, axis=0)  # a scored row per column (if any), to detect constant columns
    const = np.zeros(x.shape[1], dtype=bool)
    centred = []
    for v in (x, y):
        const |= ~((v != v[first, cols]) & w).any(axis=0)
        c = np.where(w, v, 0.0)
        c -= c.sum(axis=0) / np.maximum(n, 1)
        c *= w
        # Normalise before multiplying so that large or tiny scales do not over/underflow.
        norm = np.sqrt(np.einsum("ij,ij->j", c, c))
        c /= np.where(norm > 0, norm, 1.0)
        const |= norm == 0
        centred.append(c)
    r = np.clip(np.einsum("ij,ij->j", *centred), -1.0, 1.0)
    return np.where((n < _MIN_CORR_ENTRIES) | const, np.nan, r)


def pearson_per_feature(truth: Any, pred: Any, mask: Any | None = None) -> np.ndarray:
    r"""Pearson correlation between truth and prediction, one value per feature (column).

    Parameters
    ----------
    truth
        Observed values, shape ``(n_obs, n_vars)`` (or ``(n_obs,)`` for a single
        feature). NaN entries are not scored.
    pred
        Predicted (imputed) values, same shape as ``truth``.
    mask
        Optional boolean array of ``truth``'s shape; only ``True`` entries are scored.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_vars,)``. NaN for a feature with fewer than 3 scored entries or
        with a constant truth or prediction over its scored entries.

    Raises
    ------
    ValueError
        On shape mismatch, a non-boolean ``mask``, or non-finite scored predictions.

    Notes
    -----
    For feature :math:`j` with scored rows :math:`I_j`,
    :math:`r_j = \sum_{i\in I_j}(x_{ij}-\bar x_j)(y_{ij}-\bar y_j) /
    \sqrt{\sum_{i\in I_j}(x_{ij}-\bar x_j)^2 \sum_{i\in I_j}(y_{ij}-\bar y_j)^2}`.
    """
    t, p, scored = _prepare_pair(truth, pred, mask)
    return _masked_pearson(_as_2d(t, "truth"), _as_2d(p, "pred"), _as_2d(scored, "mask"))


def spearman_per_feature(truth: Any, pred: Any, mask: Any | None = None) -> np.ndarray:
    r"""Spearman rank correlation between truth and prediction, one value per feature.

    Parameters
    ----------
    truth
        Observed values, shape ``(n_obs, n_vars)`` (or ``(n_obs,)``). NaN entries are not scored.
    pred
        Predicted values, same shape as ``truth``.
    mask
        Optional boolean array of ``truth``'s shape; only ``True`` entries are scored.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_vars,)``; NaN where fewer than 3 entries are scored or either
        side is constant.

    Raises
    ------
    ValueError
        On shape mismatch, a non-boolean ``mask``, or non-finite scored predictions.

    Notes
    -----
    The Pearson correlation of the ranks of the scored entries of each column,
    ties receiving their average rank (as :func:`scipy.stats.spearmanr`).
    """
    t, p, scored = _prepare_pair(truth, pred, mask)
    t2, p2, w = _as_2d(t, "truth"), _as_2d(p, "pred"), _as_2d(scored, "mask")
    # Scored entries are finite, so unscored ones set to +inf rank after them and do not
    # change their ranks (this is several times faster than nan_policy="omit").
    rt = rankdata(np.where(w, t2, np.inf), axis=0)
    rp = rankdata(np.where(w, p2, np.inf), axis=0)
    return _masked_pearson(rt, rp, w)


def rmse(truth: Any, pred: Any, mask: Any | None = None) -> float:
    r"""Root mean squared error over the scored entries.

    Parameters
    ----------
    truth
        Observed values of any shape; NaN entries are not scored.
    pred
        Predicted values, same shape as ``truth``.
    mask
        Optional boolean array of ``truth``'s shape; only ``True`` entries are scored.

    Returns
    -------
    float
        The RMSE.

    Raises
    ------
    ValueError
        On shape mismatch, non-finite scored predictions, or when no entry is scored.

    Notes
    -----
    :math:`\mathrm{RMSE} = \sqrt{\frac{1}{|I|}\sum_{i \in I} (x_i - \hat x_i)^2}`.
    """
    t, p, scored = _prepare_pair(truth, pred, mask)
    _require_entries(scored)
    return float(np.sqrt(np.mean((t[scored] - p[scored]) ** 2)))


def interval_coverage(truth: Any, lower: Any, upper: Any, mask: Any | None = None, *,
                      discrete: bool = False) -> float:
    r"""Fraction of scored entries whose true value lies in ``[lower, upper]``.

    Parameters
    ----------
    truth
        Observed values of any shape; NaN entries are not scored.
    lower, upper
        Interval bounds, same shape as ``truth``, with ``lower <= upper``.
    mask
        Optional boolean array of ``truth``'s shape; only ``True`` entries are scored.
    discrete
        For integer-valued truth (counts) scored against intervals of the continuous
        extension :math:`x + U(-\tfrac12, \tfrac12)` (what ``impute`` reports for count
        likelihoods): each entry counts the length of :math:`[x-\tfrac12, x+\tfrac12] \cap [l, u]`,
        the expected randomised coverage, so a calibrated model scores the nominal level
        instead of over-covering through ties.

    Returns
    -------
    float
        Empirical coverage in ``[0, 1]``.

    Raises
    ------
    ValueError
        On shape mismatch, non-finite bounds, ``lower > upper`` at a scored entry,
        or when no entry is scored.

    Notes
    -----
    :math:`\frac{1}{|I|}\sum_{i\in I} 1[l_i \le x_i \le u_i]`.
    """
    t, scored = _scored(truth, mask)
    lo = to_numpy(lower, "lower")
    hi = to_numpy(upper, "upper")
    check_same_shape(t, lo, "truth", "lower")
    check_same_shape(t, hi, "truth", "upper")
    _check_scored_finite(t, scored, "truth")
    _check_scored_finite(lo, scored, "lower")
    _check_scored_finite(hi, scored, "upper")
    _require_entries(scored)
    t, lo, hi = t[scored], lo[scored], hi[scored]
    crossed = lo > hi
    if crossed.any():
        msg = f"`lower` must be <= `upper`, got lower > upper at {int(crossed.sum())} scored entries."
        raise ValueError(msg)
    if discrete:
        return float(np.mean(np.clip(np.minimum(hi, t + 0.5) - np.maximum(lo, t - 0.5), 0.0, 1.0)))
    return float(np.mean((lo <= t) & (t <= hi)))


def crps(truth: Any, samples: Any, mask: Any | None = None) -> float:
    r"""Mean continuous ranked probability score of a sample-based predictive distribution.

    Parameters
    ----------
    truth
        Observed values of any shape; NaN entries are not scored.
    samples
        Predictive samples of shape ``(S, *truth.shape)``.
    mask
        Optional boolean array of ``truth``'s shape; only ``True`` entries are scored.

    Returns
    -------
    float
        CRPS averaged over scored entries (lower is better; 0 for a point mass at the truth).

    Raises
    ------
    ValueError
        On a shape mismatch, non-finite scored samples, or when no entry is scored.

    Notes
    -----
    With the empirical distribution of samples :math:`x_1, \dots, x_S`,
    :math:`\mathrm{CRPS}(F, y) = \frac{1}{S}\sum_i |x_i - y| -
    \frac{1}{2S^2}\sum_{i,j}|x_i - x_j|`. The second term is computed in
    :math:`O(S \log S)` from the sorted samples :math:`x_{(1)} \le \dots \le x_{(S)}`:
    :math:`\sum_{i,j}|x_i - x_j| = 2\sum_{i=1}^S (2i - S - 1)\, x_{(i)}`.
    """
    t, scored = _scored(truth, mask)
    s = to_numpy(samples, "samples")
    if s.ndim != t.ndim + 1 or s.shape[1:] != t.shape:
        msg = f"`samples` must have shape (S, *truth.shape) = (S, {', '.join(map(str, t.shape))}), got {s.shape}."
        raise ValueError(msg)
    if s.shape[0] == 0:
        msg = "`samples` must contain at least one sample, got S = 0."
        raise ValueError(msg)
    _check_scored_finite(t, scored, "truth")
    _require_entries(scored)
    x = s[:, scored]  # (S, n_scored)
    _check_scored_finite(x, np.ones_like(x, dtype=bool), "samples")
    y = t[scored]
    n_samples = x.shape[0]
    term1 = np.abs(x - y).mean(axis=0)
    x = np.sort(x, axis=0)
    coef = 2.0 * np.arange(1, n_samples + 1) - n_samples - 1
    term2 = (coef[:, None] * x).sum(axis=0) / n_samples**2  # = 0.5 * E|X - X'|
    return float(np.mean(term1 - term2))

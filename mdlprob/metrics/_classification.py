"""Classification metrics on integer labels and predicted class probabilities.

``y_true`` holds integer class labels ``0..K-1``. ``proba`` has shape ``(n, K)``
with rows summing to 1; a binary problem may also be given as shape ``(n,)``, the
probability of class 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata

from ._utils import check_1d, check_finite, check_same_length, to_numpy

_ROW_SUM_TOL = 1e-4
_PROB_TOL = 1e-8


def _labels(y: Any, name: str, n_classes: int | None = None) -> np.ndarray:
    a = to_numpy(y, name)
    check_1d(a, name)
    check_finite(a, name)
    if (a != np.round(a)).any() or (a < 0).any():
        msg = f"`{name}` must hold non-negative integer class labels, got e.g. {a[(a != np.round(a)) | (a < 0)][:3]}."
        raise ValueError(msg)
    if n_classes is not None and (a >= n_classes).any():
        msg = (f"`{name}` must hold labels in 0..{n_classes - 1} (proba has {n_classes} columns), "
               f"got label {int(a.max())}.")
        raise ValueError(msg)
    return a.astype(np.int64)


def _proba(proba: Any, name: str = "proba") -> np.ndarray:
    """Validate probabilities; return shape (n, K), expanding binary (n,) to (n, 2)."""
    p = to_numpy(proba, name)
    if p.ndim == 1:
        check_1d(p, name)
        check_finite(p, name)
        if (p < -_PROB_TOL).any() or (p > 1 + _PROB_TOL).any():
            msg = f"1-D `{name}` must hold probabilities of class 1 in [0, 1], got range [{p.min()}, {p.max()}]."
            raise ValueError(msg)
        return np.stack([1.0 - p, p], axis=1)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        msg = f"`{name}` must have shape (n_samples,) or (n_samples, n_classes >= 2), got {p.shape}."
        raise ValueError(msg)
    check_finite(p, name)
    if (p < -_PROB_TOL).any() or (p > 1 + _PROB_TOL).any():
        msg = f"`{name}` must hold probabilities in [0, 1], got range [{p.min()}, {p.max()}]."
        raise ValueError(msg)
    dev = np.abs(p.sum(axis=1) - 1.0)
    if (dev > _ROW_SUM_TOL).any():
        i = int(np.argmax(dev))
        msg = (f"`{name}` rows must sum to 1 (within {_ROW_SUM_TOL}), got row {i} summing to "
               f"{p[i].sum():.6g} ({int((dev > _ROW_SUM_TOL).sum())} bad rows).")
        raise ValueError(msg)
    return p


def _true_and_pred_labels(y_true: Any, proba_or_labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return (y_true, y_pred) labels; ``proba_or_labels`` may be labels or probabilities."""
    raw_in = to_numpy(proba_or_labels, "proba_or_labels", dtype=None)
    raw = raw_in.astype(np.float64)
    is_labels = raw.ndim == 1 and (raw_in.dtype.kind in "biu" or bool(np.all(raw == np.round(raw))))
    if is_labels:
        y_pred = _labels(raw, "proba_or_labels")
        y = _labels(y_true, "y_true")
    else:
        p = _proba(raw, "proba_or_labels")
        y = _labels(y_true, "y_true", p.shape[1])
        y_pred = np.argmax(p, axis=1)
    check_same_length(y, y_pred, "y_true", "proba_or_labels")
    return y, y_pred


def accuracy(y_true: Any, proba_or_labels: Any) -> float:
    r"""Fraction of correctly classified samples.

    Parameters
    ----------
    y_true
        Shape ``(n,)``, integer labels ``0..K-1``.
    proba_or_labels
        Predicted integer labels ``(n,)``, class probabilities ``(n, K)`` (arg-max is
        predicted), or binary probabilities of class 1 ``(n,)`` (class 1 iff ``p > 0.5``).
        A 1-D array of whole numbers is read as labels.

    Returns
    -------
    float
        Accuracy in ``[0, 1]``.

    Raises
    ------
    ValueError
        On length mismatch, invalid labels, or invalid probabilities.

    Notes
    -----
    :math:`\frac1n\sum_i 1[\hat y_i = y_i]`.
    """
    y, y_pred = _true_and_pred_labels(y_true, proba_or_labels)
    return float(np.mean(y == y_pred))


def macro_f1(y_true: Any, proba_or_labels: Any) -> float:
    r"""Unweighted mean of per-class F1 scores.

    Parameters
    ----------
    y_true
        Shape ``(n,)``, integer labels ``0..K-1``.
    proba_or_labels
        As in :func:`accuracy`.

    Returns
    -------
    float
        Macro F1 in ``[0, 1]``.

    Raises
    ------
    ValueError
        On length mismatch, invalid labels, or invalid probabilities.

    Notes
    -----
    :math:`F1_k = 2\,TP_k / (2\,TP_k + FP_k + FN_k)`, averaged over the classes that
    occur in ``y_true`` or in the predictions (as ``sklearn.metrics.f1_score(average="macro")``).
    """
    y, y_pred = _true_and_pred_labels(y_true, proba_or_labels)
    classes = np.union1d(y, y_pred)
    tp = np.array([np.sum((y == k) & (y_pred == k)) for k in classes], dtype=float)
    n_true = np.array([np.sum(y == k) for k in classes], dtype=float)
    n_pred = np.array([np.sum(y_pred == k) for k in classes], dtype=float)
    return float(np.mean(2.0 * tp / (n_true + n_pred)))


def _binary_auc(pos: np.ndarray, score: np.ndarray) -> float:
    ranks = rankdata(score)
    n_pos = int(pos.sum())
    n_neg = pos.size - n_pos
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def auroc(y_true: Any, proba: Any) -> float:
    r"""Area under the ROC curve; macro one-vs-rest average for more than two classes.

    Parameters
    ----------
    y_true
        Shape ``(n,)``, integer labels ``0..K-1``.
    proba
        Shape ``(n, K)``, or ``(n,)`` probabilities of class 1 for a binary problem.

    Returns
    -------
    float
        AUROC in ``[0, 1]`` (0.5 = random).

    Raises
    ------
    ValueError
        On invalid inputs, or when a scored class is absent from ``y_true`` or is the
        only class present.

    Notes
    -----
    Binary: :math:`P(s_+ > s_-) + \tfrac12 P(s_+ = s_-)` for the class-1 score.
    :math:`K > 2`: the mean over classes :math:`k` of the AUROC of ``proba[:, k]`` for
    ``y == k`` versus the rest (as ``sklearn.metrics.roc_auc_score(multi_class="ovr")``).
    """
    p = _proba(proba)
    y = _labels(y_true, "y_true", p.shape[1])
    check_same_length(y, p, "y_true", "proba")
    n_classes = p.shape[1]
    scored = [1] if n_classes == 2 else list(range(n_classes))
    aucs = []
    for k in scored:
        pos = y == k
        if pos.all() or not pos.any():
            msg = (f"`y_true` must contain both class {k} and other classes for the AUROC, "
                   f"got {int(pos.sum())} of {pos.size} samples in class {k}.")
            raise ValueError(msg)
        aucs.append(_binary_auc(pos, p[:, k]))
    return float(np.mean(aucs))


def brier(y_true: Any, proba: Any) -> float:
    r"""Brier score (mean squared error of the predicted probabilities).

    Parameters
    ----------
    y_true
        Shape ``(n,)``, integer labels ``0..K-1``.
    proba
        Shape ``(n, K)``, or ``(n,)`` probabilities of class 1 for a binary problem.

    Returns
    -------
    float
        The Brier score (lower is better).

    Raises
    ------
    ValueError
        On length mismatch, invalid labels, or invalid probabilities.

    Notes
    -----
    2-D ``proba``: :math:`\frac1n\sum_i\sum_k (p_{ik} - 1[y_i = k])^2` (in ``[0, 2]``).
    1-D ``proba``: :math:`\frac1n\sum_i (p_i - y_i)^2` (in ``[0, 1]``), which is half the
    2-D value; both as ``sklearn.metrics.brier_score_loss``.
    """
    raw = to_numpy(proba, "proba")
    p = _proba(raw)
    y = _labels(y_true, "y_true", p.shape[1])
    check_same_length(y, p, "y_true", "proba")
    if raw.ndim == 1:
        return float(np.mean((raw - y) ** 2))
    onehot = np.eye(p.shape[1])[y]
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def expected_calibration_error(y_true: Any, proba: Any, n_bins: int = 15) -> float:
    r"""Expected calibration error of the top-label confidence.

    Parameters
    ----------
    y_true
        Shape ``(n,)``, integer labels ``0..K-1``.
    proba
        Shape ``(n, K)``, or ``(n,)`` probabilities of class 1 for a binary problem.
    n_bins
        Number of equal-width confidence bins on ``[0, 1]``.

    Returns
    -------
    float
        ECE in ``[0, 1]`` (0 = perfectly calibrated).

    Raises
    ------
    ValueError
        On invalid inputs or ``n_bins < 1``.

    Notes
    -----
    With confidence :math:`c_i = \max_k p_{ik}`, prediction :math:`\hat y_i = \arg\max_k p_{ik}`
    and bins :math:`B_b = ((b-1)/M, b/M]` (the first also holding 0):
    :math:`\mathrm{ECE} = \sum_b \frac{|B_b|}{n}\,|\mathrm{acc}(B_b) - \mathrm{conf}(B_b)|`.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        msg = f"`n_bins` must be a positive integer, got {n_bins!r}."
        raise ValueError(msg)
    p = _proba(proba)
    y = _labels(y_true, "y_true", p.shape[1])
    check_same_length(y, p, "y_true", "proba")
    conf = np.clip(p.max(axis=1), 0.0, 1.0)
    correct = (np.argmax(p, axis=1) == y).astype(float)
    inner_edges = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    b = np.searchsorted(inner_edges, conf, side="left")  # bin b holds (edge_b, edge_b+1]
    gap = np.bincount(b, weights=correct, minlength=n_bins) - np.bincount(b, weights=conf, minlength=n_bins)
    return float(np.abs(gap).sum() / y.size)

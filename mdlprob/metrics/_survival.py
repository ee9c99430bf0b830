"""Survival metrics: Harrell's and Uno's C, time-dependent Brier score and AUC.

Conventions follow :mod:`sksurv.metrics`: ``event`` is 1/True when the event was observed,
a higher ``risk`` means an earlier event, and ``survival_train``/``survival_test`` are
structured arrays (event indicator, time). The censoring survival :math:`G(t) = P(C > t)`
is the reverse Kaplan-Meier estimate on ``survival_train`` (as in sksurv, events at a time
leave the censoring risk set before the censorings at that time).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._utils import (
    check_finite,
    check_times,
    event_time,
    risk_vector,
    structured_survival,
    to_numpy,
)

_PAIR_BLOCK = 2**22  # max pairs held in memory at once by the concordance loop


class _KaplanMeier:
    """Right-continuous Kaplan-Meier step function; ``reverse`` estimates censoring."""

    def __init__(self, event: np.ndarray, time: np.ndarray, *, reverse: bool = False) -> None:
        uniq, inv = np.unique(time, return_inverse=True)
        n_total = np.bincount(inv, minlength=uniq.size)
        n_event = np.bincount(inv, weights=event.astype(float), minlength=uniq.size)
        at_risk = time.size - np.concatenate(([0], np.cumsum(n_total)[:-1]))
        if reverse:
            at_risk = at_risk - n_event
            n_event = n_total - n_event
        ratio = np.divide(n_event, at_risk, out=np.zeros(uniq.size), where=n_event > 0)
        self.times = uniq
        self.prob = np.cumprod(1.0 - ratio)

    def __call__(self, t: np.ndarray, what: str) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        beyond = t > self.times[-1]
        if beyond.any() and self.prob[-1] > 0:
            msg = (f"{what} must be <= the largest time of the data the Kaplan-Meier curve was "
                   f"fitted on ({self.times[-1]}), got {t[beyond].max()}; the curve is undefined "
                   f"beyond it. Restrict the test times (e.g. with `tau` or `times`).")
            raise ValueError(msg)
        idx = np.searchsorted(self.times, t, side="right") - 1
        return np.where(idx < 0, 1.0, self.prob[np.maximum(idx, 0)])


def _inverse_censoring(cens: _KaplanMeier, t_events: np.ndarray, hint: str) -> np.ndarray:
    """Return ``1 / G(t_events)``; raise when the censoring survival is zero there."""
    g = cens(t_events, "test event times")
    if (g == 0).any():
        msg = f"The censoring survival estimate from `survival_train` is zero at a test event time; {hint}."
        raise ValueError(msg)
    return 1.0 / g


def _concordance(event: np.ndarray, time: np.ndarray, risk: np.ndarray, weight: np.ndarray,
                 tied_tol: float) -> float:
    """Weighted concordance over comparable pairs (i: event, j: later or censored at same time)."""
    idx = np.flatnonzero(event & (weight > 0))
    num = 0.0
    den = 0.0
    block = max(1, _PAIR_BLOCK // time.size)
    for start in range(0, idx.size, block):
        i = idx[start:start + block]
        ti, ri, wi = time[i, None], risk[i, None], weight[i]
        comparable = (time[None, :] > ti) | ((time[None, :] == ti) & ~event[None, :])
        tie = np.abs(risk[None, :] - ri) <= tied_tol
        conc = (risk[None, :] < ri) & ~tie
        num += float(wi @ (comparable & conc).sum(axis=1) + 0.5 * (wi @ (comparable & tie).sum(axis=1)))
        den += float(wi @ comparable.sum(axis=1))
    if den == 0:
        msg = ("No comparable pairs: need at least one observed event followed by a later time "
               "(or a censoring at the same time) with positive weight.")
        raise ValueError(msg)
    return num / den


def harrell_c(event: Any, time: Any, risk: Any, *, tied_tol: float = 1e-8) -> float:
    r"""Harrell's concordance index for right-censored data.

    Parameters
    ----------
    event
        Shape ``(n,)``, bool or 0/1; 1 when the event was observed.
    time
        Shape ``(n,)``, event or censoring times.
    risk
        Shape ``(n,)``, predicted risk (higher = earlier event).
    tied_tol
        Risks closer than this count as tied (0.5 concordant).

    Returns
    -------
    float
        The concordance index in ``[0, 1]`` (0.5 = random).

    Raises
    ------
    ValueError
        On length mismatch, non-finite values, non-binary ``event``, all samples
        censored, or no comparable pair.

    Notes
    -----
    A pair :math:`(i, j)` is comparable when :math:`\delta_i = 1` and either
    :math:`T_j > T_i` or :math:`T_j = T_i, \delta_j = 0`;
    :math:`C = \sum (1[r_i > r_j] + \tfrac12 1[r_i = r_j]) / \#\text{comparable}`.
    Identical to ``sksurv.metrics.concordance_index_censored(...)[0]``.
    """
    e, t = event_time(event, time, "event", "time")
    r = risk_vector(risk, e.size)
    if not e.any():
        msg = f"`event` has no observed event (all {e.size} samples censored); the C-index is undefined."
        raise ValueError(msg)
    return _concordance(e, t, r, np.ones(e.size), tied_tol)


def uno_c(survival_train: Any, survival_test: Any, risk: Any, tau: float | None = None, *,
          tied_tol: float = 1e-8) -> float:
    r"""Uno's inverse-probability-of-censoring-weighted concordance index.

    Parameters
    ----------
    survival_train
        Structured array (event, time) used to estimate the censoring distribution.
    survival_test
        Structured array (event, time) of the evaluated samples.
    risk
        Shape ``(n_test,)``, predicted risk (higher = earlier event).
    tau
        Truncation time: only events before ``tau`` are counted as the earlier member
        of a pair. ``None``: no truncation.
    tied_tol
        Risks closer than this count as tied.

    Returns
    -------
    float
        The concordance index (0.5 = random).

    Raises
    ------
    ValueError
        On malformed inputs, no test events, a test event time beyond the
        follow-up of ``survival_train``, a zero censoring survival at a test event
        time, or no comparable pair.

    Notes
    -----
    Harrell's C with each comparable pair weighted by :math:`\hat G(T_i)^{-2}`,
    where :math:`\hat G` is the Kaplan-Meier censoring survival of the training data
    and :math:`T_i < \tau`. Identical to ``sksurv.metrics.concordance_index_ipcw(...)[0]``.
    """
    e_tr, t_tr = structured_survival(survival_train, "survival_train")
    e, t = structured_survival(survival_test, "survival_test")
    r = risk_vector(risk, e.size)
    if not e.any():
        msg = f"`survival_test` has no observed event (all {e.size} samples censored)."
        raise ValueError(msg)
    use = e if tau is None else e & (t < tau)
    w = np.zeros(e.size)
    w[use] = _inverse_censoring(_KaplanMeier(e_tr, t_tr, reverse=True), t[use], "choose a smaller `tau`") ** 2
    return _concordance(e, t, r, w, tied_tol)


def brier_score(survival_train: Any, survival_test: Any, surv_probs: Any,
                times: Any) -> tuple[np.ndarray, np.ndarray]:
    r"""Time-dependent Brier score with inverse probability of censoring weights.

    Parameters
    ----------
    survival_train
        Structured array (event, time) used to estimate the censoring distribution.
    survival_test
        Structured array (event, time) of the evaluated samples.
    surv_probs
        Shape ``(n_test, n_times)``: predicted :math:`P(T > t_k)` for each test sample.
    times
        Shape ``(n_times,)``, strictly increasing, within ``[min, max)`` of test times.

    Returns
    -------
    times : numpy.ndarray
        The evaluation times, shape ``(n_times,)``.
    scores : numpy.ndarray
        The Brier score at each time, shape ``(n_times,)``.

    Raises
    ------
    ValueError
        On malformed inputs, shape mismatch, or times outside the follow-up.

    Notes
    -----
    :math:`\mathrm{BS}(t) = \frac1n\sum_i \Big[\frac{\hat S_i(t)^2\,1[T_i\le t,\delta_i=1]}{\hat G(T_i)}
    + \frac{(1-\hat S_i(t))^2\,1[T_i>t]}{\hat G(t)}\Big]`. Terms with :math:`\hat G = 0`
    get weight 0. Identical to ``sksurv.metrics.brier_score``.
    """
    e_tr, t_tr = structured_survival(survival_train, "survival_train")
    e, t = structured_survival(survival_test, "survival_test")
    ts = check_times(times, t)
    s = to_numpy(surv_probs, "surv_probs")
    if s.ndim == 1 and ts.size == 1:
        s = s[:, None]
    if s.shape != (e.size, ts.size):
        msg = f"`surv_probs` must have shape (n_test, n_times) = ({e.size}, {ts.size}), got {s.shape}."
        raise ValueError(msg)
    check_finite(s, "surv_probs")
    cens = _KaplanMeier(e_tr, t_tr, reverse=True)
    case_any = e & (t <= ts[-1])
    g_y = np.ones(e.size)
    g_y[case_any] = cens(t[case_any], "test event times")
    g_t = cens(ts, "`times`")
    inv_y = np.divide(1.0, g_y, out=np.zeros_like(g_y), where=g_y > 0)
    inv_t = np.divide(1.0, g_t, out=np.zeros_like(g_t), where=g_t > 0)
    is_case = case_any[:, None] & (t[:, None] <= ts[None, :])
    is_ctrl = t[:, None] > ts[None, :]
    terms = s**2 * is_case * inv_y[:, None] + (1.0 - s) ** 2 * is_ctrl * inv_t[None, :]
    return ts.copy(), terms.mean(axis=0)


def integrated_brier_score(survival_train: Any, survival_test: Any, surv_probs: Any,
                           times: Any) -> float:
    r"""Integrated Brier score: the time-average of :func:`brier_score` over ``times``.

    Parameters
    ----------
    survival_train, survival_test, surv_probs, times
        As in :func:`brier_score`; at least two time points are needed.

    Returns
    -------
    float
        The integrated Brier score (lower is better).

    Raises
    ------
    ValueError
        As :func:`brier_score`, or when fewer than two time points are given.

    Notes
    -----
    :math:`\mathrm{IBS} = \frac{1}{t_K - t_1}\int_{t_1}^{t_K}\mathrm{BS}(t)\,dt`, by the
    trapezoidal rule over ``times``. Identical to ``sksurv.metrics.integrated_brier_score``.
    """
    ts, scores = brier_score(survival_train, survival_test, surv_probs, times)
    if ts.size < 2:
        msg = f"`times` must contain at least two time points for the integrated Brier score, got {ts.size}."
        raise ValueError(msg)
    area = np.sum(np.diff(ts) * (scores[1:] + scores[:-1]) / 2.0)
    return float(area / (ts[-1] - ts[0]))


def _weighted_auc(case_r: np.ndarray, case_w: np.ndarray, ctrl_r: np.ndarray, tied_tol: float) -> float:
    ctrl = np.sort(ctrl_r)
    below = np.searchsorted(ctrl, case_r - tied_tol, side="left")
    upto = np.searchsorted(ctrl, case_r + tied_tol, side="right")
    score = below + 0.5 * (upto - below)
    return float(case_w @ score / (case_w.sum() * ctrl.size))


def cumulative_dynamic_auc(survival_train: Any, survival_test: Any, risk: Any, times: Any, *,
                           tied_tol: float = 1e-8) -> tuple[np.ndarray, float]:
    r"""Cumulative/dynamic time-dependent AUC with inverse probability of censoring weights.

    Parameters
    ----------
    survival_train
        Structured array (event, time) used to estimate the censoring distribution.
    survival_test
        Structured array (event, time) of the evaluated samples.
    risk
        Shape ``(n_test,)``, or ``(n_test, n_times)`` for time-dependent risks.
    times
        Shape ``(n_times,)``, strictly increasing, within ``[min, max)`` of test times.
    tied_tol
        Risks closer than this count as tied (0.5).

    Returns
    -------
    auc_per_time : numpy.ndarray
        AUC at each time, shape ``(n_times,)``.
    mean_auc : float
        Mean AUC weighted by the Kaplan-Meier decrease of the test survival.

    Raises
    ------
    ValueError
        On malformed inputs, times outside the follow-up, or a time with no cases
        or no controls.

    Notes
    -----
    Cases at :math:`t`: :math:`T_i \le t, \delta_i=1`, weighted by :math:`1/\hat G(T_i)`;
    controls: :math:`T_j > t`.
    :math:`\mathrm{AUC}(t) = \sum_{i,j} w_i (1[r_i > r_j] + \tfrac12 1[r_i = r_j]) /
    (\sum_i w_i \cdot \#\text{controls})` and
    :math:`\overline{\mathrm{AUC}} = \sum_k \mathrm{AUC}(t_k)(\hat S(t_{k-1}) - \hat S(t_k))
    / (1 - \hat S(t_K))` with :math:`\hat S(t_0) = 1`.
    Matches ``sksurv.metrics.cumulative_dynamic_auc``.
    """
    e_tr, t_tr = structured_survival(survival_train, "survival_train")
    e, t = structured_survival(survival_test, "survival_test")
    ts = check_times(times, t)
    r = risk_vector(risk, e.size, allow_2d=True)
    if r.ndim == 2 and r.shape[1] != ts.size:
        msg = f"2-D `risk` must have one column per time point ({ts.size}), got {r.shape[1]}."
        raise ValueError(msg)
    case_any = e & (t <= ts[-1])
    w = np.zeros(e.size)
    w[case_any] = _inverse_censoring(_KaplanMeier(e_tr, t_tr, reverse=True), t[case_any], "choose earlier `times`")
    auc = np.empty(ts.size)
    for k, tk in enumerate(ts):
        rk = r if r.ndim == 1 else r[:, k]
        case = case_any & (t <= tk)
        ctrl = t > tk
        if not case.any() or not ctrl.any():
            msg = f"No {'cases' if not case.any() else 'controls'} at time {tk}: the AUC is undefined."
            raise ValueError(msg)
        auc[k] = _weighted_auc(rk[case], w[case], rk[ctrl], tied_tol)
    if ts.size == 1:
        return auc, float(auc[0])
    s = _KaplanMeier(e, t)(ts, "`times`")
    d = -np.diff(np.concatenate(([1.0], s)))
    return auc, float((auc * d).sum() / (1.0 - s[-1]))

"""Shared plumbing of the survival heads: target and time checks, risk intervals, scoring."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..metrics import harrell_c
from ._base import _BayesianHead


def _check_survival(y: Any, n_obs: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split a two-field structured array ``(event, time)``; validate; return (bool events, times)."""
    if not isinstance(y, np.ndarray) or y.dtype.names is None or len(y.dtype.names) != 2:
        got = getattr(y, "dtype", type(y).__name__)
        msg = ("Expected `y` to be a structured array with two fields (event indicator, time), "
               f"as made by sksurv.util.Surv.from_arrays(event, time); got {got}.")
        raise ValueError(msg)
    ev_name, t_name = y.dtype.names
    if y.ndim != 1:
        msg = f"Expected `y` to be 1-D, got shape {y.shape}."
        raise ValueError(msg)
    event = np.asarray(y[ev_name])
    try:
        time = np.asarray(y[t_name], dtype=np.float64)
    except (TypeError, ValueError) as err:
        msg = f"Expected `y['{t_name}']` to hold numeric times, got dtype {y.dtype[t_name]}."
        raise ValueError(msg) from err
    if not np.isin(event, (0, 1)).all():
        msg = f"Expected `y['{ev_name}']` to be boolean or 0/1, got values {np.unique(event)[:5]}."
        raise ValueError(msg)
    if not np.isfinite(time).all():
        msg = f"Expected finite times in `y['{t_name}']`, got NaN or infinity."
        raise ValueError(msg)
    if (time < 0).any():
        msg = f"Expected non-negative times in `y['{t_name}']`, got minimum {time.min()}."
        raise ValueError(msg)
    if n_obs is not None and y.shape[0] != n_obs:
        msg = f"Expected `y` to have one entry per observation of `X` ({n_obs}), got {y.shape[0]}."
        raise ValueError(msg)
    return event.astype(bool), time


def _check_times(times: Any) -> np.ndarray:
    """Evaluation times as a non-empty, finite, non-negative float64 vector."""
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    if t.size == 0 or not np.isfinite(t).all() or (t < 0).any():
        msg = f"Expected `times` to be non-empty, finite and non-negative, got {np.asarray(times)!r}."
        raise ValueError(msg)
    return t


class _SurvivalHead(_BayesianHead):
    """Survival head: subclasses define ``_risk_draws(X) -> (D, n_obs)`` (higher = earlier event)."""

    def _survival_target(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Check parameters, ``X`` and ``y`` at ``fit``; return ``(X3, event, time)``."""
        self._check_common_params()
        X3 = self._validate_X(X, reset=True)
        event, time = _check_survival(y, X3.shape[1])
        if not event.any():
            msg = f"Expected at least one observed event in `y`, got all {event.size} observations censored."
            raise ValueError(msg)
        self.unique_times_ = np.unique(time)
        return X3, event, time

    def _step_functions(self, X: Any, return_interval: bool) -> np.ndarray:
        """``predict_survival_function(X)`` without times: scikit-survival ``StepFunction`` objects.

        Each is the predicted survival evaluated at the distinct training times and held
        constant in between (``fn(t)``, ``fn.x``, ``fn.y``), as ``sksurv`` estimators return.
        """
        from sksurv.functions import StepFunction

        if return_interval:
            msg = "return_interval=True needs evaluation times: predict_survival_function(X, times, return_interval=True)."
            raise ValueError(msg)
        grid = self.unique_times_
        surv = self.predict_survival_function(X, grid)
        return np.array([StepFunction(grid, row) for row in surv], dtype=object)

    def _mean_and_interval(self, draws: np.ndarray, return_interval: bool) -> Any:
        point = draws.mean(axis=0)
        if not return_interval:
            return point
        lower, upper = self._interval(draws, point)
        return point, lower, upper

    def predict_risk(self, X: Any, return_interval: bool = False) -> Any:
        """Risk score (higher = earlier event; defined in the class docstring), averaged over draws.

        Parameters
        ----------
        X
            Features ``(n_obs, n_features)`` or latent samples ``(S, n_obs, n_features)``.
        return_interval
            Also return the central ``level`` interval over coefficient (× latent) draws.

        Returns
        -------
        ``risk`` ``(n_obs,)``, or ``(risk, lower, upper)``.
        """
        check_is_fitted(self)
        return self._mean_and_interval(self._risk_draws(X), return_interval)

    def predict(self, X: Any) -> np.ndarray:
        """Risk score ``(n_obs,)``, as :meth:`predict_risk`; usable with scikit-survival scorers."""
        return self.predict_risk(X)

    def _cv_strata(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y[y.dtype.names[0]]).astype(int)

    def _cv_score(self, X3: np.ndarray, y: np.ndarray) -> float:
        return self.score(X3, y)

    def score(self, X: Any, y: Any) -> float:
        """Harrell's concordance index of :meth:`predict` against ``y`` (0.5 = random)."""
        risk = self.predict(X)
        event, time = _check_survival(y, risk.shape[0])
        return harrell_c(event, time, risk)

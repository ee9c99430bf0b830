"""Bayesian Cox proportional-hazards head (Breslow partial likelihood)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._survival import _check_times, _SurvivalHead


class CoxPHHead(_SurvivalHead):
    r"""Bayesian Cox proportional-hazards model with a mean-field Gaussian posterior.

    .. math::

        \beta \sim \mathcal N(0, \sigma^2 I), \qquad
        h(t \mid x) = h_0(t)\, \exp(x^\top \beta),

    fitted by SVI on the Breslow partial likelihood (Breslow handling of ties)
    :math:`\log L(\beta) = \sum_{i:\delta_i=1} \big[x_i^\top\beta - \log\sum_{j: t_j \ge t_i}
    \exp(x_j^\top\beta)\big]`, added to the model as a ``pyro.factor``.

    Parameters
    ----------
    prior_scale
        Standard deviation :math:`\sigma` of the Gaussian prior on each coefficient.
        ``"auto"``: a scale per feature group (``fit``'s ``feature_groups``) by empirical Bayes,
        times a common multiplier chosen by 3-fold cross-validation inside the training
        data; ``"eb"``: the empirical-Bayes scales alone; ``"ard"``: one empirical-Bayes
        scale per feature; a dict: a fixed scale per group. Fitted scales: ``prior_scale_``.
    max_epochs
        Number of SVI steps (each on the full training set).
    lr
        Adam learning rate.
    n_posterior_samples
        Coefficient draws used for intervals (drawn once at ``fit``).
    level
        Coverage of the central intervals returned with ``return_interval=True``.
    random_state
        Seed (or ``RandomState``) for initialisation, SVI and posterior draws.

    Attributes
    ----------
    coef_, coef_scale_
        Posterior mean and standard deviation of :math:`\beta`, shape ``(n_features,)``.
    coef_samples_
        The ``n_posterior_samples`` coefficient draws, ``(n_posterior_samples, n_features)``.
    event_times_, cum_baseline_hazard_
        Distinct event times and the Breslow cumulative baseline hazard :math:`H_0` there,
        estimated at ``coef_`` (averaged over latent copies for 3-D ``X``).
    n_features_in_, elbo_history_
        Features seen at ``fit``; ELBO after each SVI step.

    Notes
    -----
    :meth:`predict_risk` returns the linear predictor :math:`x^\top\beta` (higher = earlier event).
    ``X`` may be 2-D ``(n_obs, n_features)`` or latent samples ``(S, n_obs, n_features)``: at
    ``fit`` each copy contributes its own partial likelihood weighted :math:`1/S`; at prediction
    each coefficient draw is paired with a random latent draw.

    Examples
    --------
    >>> import numpy as np
    >>> from sksurv.util import Surv
    >>> from mdlprob.heads import CoxPHHead
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> y = Surv.from_arrays(rng.random(200) < 0.8, rng.exponential(np.exp(-X[:, 0])))
    >>> head = CoxPHHead(random_state=0).fit(X, y)
    >>> head.predict_survival_function(X[:3], [0.5, 1.0]).shape
    (3, 2)
    """

    def __init__(self, *, prior_scale: float = 1.0, max_epochs: int = 300, lr: float = 0.02,
                 n_posterior_samples: int = 100, level: float = 0.9, random_state: Any = None) -> None:
        self.prior_scale = prior_scale
        self.max_epochs = max_epochs
        self.lr = lr
        self.n_posterior_samples = n_posterior_samples
        self.level = level
        self.random_state = random_state

    def fit(self, X: Any, y: Any, *, feature_groups: Any = None) -> CoxPHHead:
        """Fit the coefficient posterior and the Breslow baseline hazard.

        Parameters
        ----------
        X
            Features ``(n_obs, n_features)`` or latent samples ``(S, n_obs, n_features)``.
        y
            Structured array with fields (event indicator, time), e.g. ``Surv.from_arrays``.
        feature_groups
            Group label per feature ``(n_features,)``; with ``prior_scale`` ``"auto"``,
            ``"eb"`` or a dict each group gets its own prior scale (e.g. clinical
            covariates, latent dimensions).

        Returns
        -------
        The fitted head.

        Raises
        ------
        ValueError
            On invalid hyper-parameters or ``X``; when ``y`` is not a two-field structured array,
            has negative or non-finite times, no observed event, or a length other than ``n_obs``.
        """
        return self._fit_prior(X, y, feature_groups)

    def _fit_once(self, X: Any, y: Any, feature_groups: Any) -> CoxPHHead:
        """One fit at the prior in force (see ``_BayesianHead._fit_prior``)."""
        X3, event, time = self._survival_target(X, y)
        order = np.argsort(-time, kind="stable")
        t_desc = time[order]
        # Breslow ties: the risk set of position i runs to the last entry tied with it.
        tie_end = np.searchsorted(-t_desc, -t_desc, side="right") - 1
        X_t = torch.tensor(X3[:, order])
        ev_t = torch.as_tensor(event[order])
        end_t = torch.as_tensor(tie_end)
        n_copies = X3.shape[0]

        def log_lik(params: dict[str, torch.Tensor]) -> torch.Tensor:
            eta = X_t @ params["beta"]
            log_risk = torch.logcumsumexp(eta, dim=-1)[:, end_t]
            return ((eta - log_risk)[:, ev_t]).sum() / n_copies

        p = X3.shape[2]
        self._check_feature_groups(feature_groups, p)
        self._fit_mean_field({"beta": (p,)}, log_lik, self._seed_from_random_state(),
                             feature_index={"beta": np.arange(p)})
        self.coef_ = self.posterior_loc_["beta"]
        self.coef_scale_ = self.posterior_scale_["beta"]
        self.coef_samples_ = self.posterior_samples_["beta"]
        self._fit_baseline(X3, event, time)
        return self

    def _fit_baseline(self, X3: np.ndarray, event: np.ndarray, time: np.ndarray) -> None:
        """Breslow estimator of the cumulative baseline hazard at ``coef_``."""
        order = np.argsort(time, kind="stable")
        t_sorted = time[order]
        exp_eta = np.exp(X3[:, order] @ self.coef_)  # (S, n)
        at_risk = np.cumsum(exp_eta[:, ::-1], axis=1)[:, ::-1]  # sum over t_j >= t_sorted[k]
        self.event_times_, n_events = np.unique(time[event], return_counts=True)
        start = np.searchsorted(t_sorted, self.event_times_, side="left")
        increments = (n_events / at_risk[:, start]).mean(axis=0)
        self.cum_baseline_hazard_ = np.cumsum(increments)

    def _risk_draws(self, X: Any) -> np.ndarray:
        """Linear predictor draws ``(D, n_obs)``: each coefficient draw with a paired latent draw."""
        X3 = self._validate_X(X, reset=False)
        return (self._paired_inputs(X3) @ self.coef_samples_[:, :, None])[..., 0]

    def predict_survival_function(self, X: Any, times: Any = None, return_interval: bool = False) -> Any:
        """Survival probabilities :math:`S(t \\mid x) = \\exp(-H_0(t)\\, e^{x^\\top\\beta})`.

        Parameters
        ----------
        X
            Features ``(n_obs, n_features)`` or latent samples ``(S, n_obs, n_features)``.
        times
            Non-negative evaluation times ``(n_times,)`` (None: one scikit-survival
            ``StepFunction`` per observation, on the training times, as ``sksurv`` returns); :math:`H_0` is a right-continuous step function.
        return_interval
            Also return pointwise ``level`` bands, the image of the risk interval.

        Returns
        -------
        ``surv`` ``(n_obs, n_times)``, or ``(surv, lower, upper)``; non-increasing in time, in [0, 1].
        """
        if times is None:
            return self._step_functions(X, return_interval)
        t = _check_times(times)
        check_is_fitted(self)
        idx = np.searchsorted(self.event_times_, t, side="right") - 1
        cum_h0 = np.where(idx >= 0, self.cum_baseline_hazard_[np.maximum(idx, 0)], 0.0)

        def surv(r: np.ndarray) -> np.ndarray:
            return np.exp(-cum_h0[None, :] * np.exp(r)[:, None])

        out = self.predict_risk(X, return_interval=return_interval)
        if not return_interval:
            return surv(out)
        risk, lower, upper = out
        return surv(risk), surv(upper), surv(lower)

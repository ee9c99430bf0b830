"""Bayesian Weibull accelerated-failure-time head."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._survival import _check_times, _SurvivalHead


class WeibullAFTHead(_SurvivalHead):
    r"""Bayesian Weibull accelerated-failure-time model with a mean-field Gaussian posterior.

    .. math::

        \log T = x^\top\beta + \mu + \sigma\,\varepsilon, \qquad
        \varepsilon \sim \mathrm{Gumbel_{min}}(0, 1), \qquad
        S(t \mid x) = \exp\!\big(-e^{(\log t - x^\top\beta - \mu)/\sigma}\big),

    so :math:`T` is Weibull with shape :math:`1/\sigma`. An observed event contributes the
    log-density of :math:`\log T`, a censored observation the log-survival
    :math:`-e^{z}`, :math:`z = (\log t - x^\top\beta - \mu)/\sigma`.

    The priors act on the standardised log-time scale, so that they do not depend on the
    time unit: with :math:`m, s` the mean and standard deviation of :math:`\log t` in the
    training data, :math:`\beta = s\beta'`, :math:`\mu = m + s\mu'`, :math:`\sigma = s e^{\rho}`
    and :math:`\beta', \mu', \rho \sim \mathcal N(0, \text{prior\_scale}^2)`, fitted by SVI.

    Parameters
    ----------
    prior_scale
        Prior standard deviation of :math:`\beta'`, :math:`\mu'` and :math:`\rho` (standardised scale).
        ``"auto"``: a scale per feature group (``fit``'s ``feature_groups``) by empirical Bayes,
        times a common multiplier chosen by 3-fold cross-validation inside the training
        data; ``"eb"``: the empirical-Bayes scales alone; ``"ard"``: one empirical-Bayes
        scale per feature; a dict: a fixed scale per group. Fitted scales: ``prior_scale_``.
    max_epochs
        Number of SVI steps (each on the full training set).
    lr
        Adam learning rate.
    n_posterior_samples
        Parameter draws used for predictions and intervals (drawn once at ``fit``).
    level
        Coverage of the central intervals returned with ``return_interval=True``.
    random_state
        Seed (or ``RandomState``) for initialisation, SVI and posterior draws.

    Attributes
    ----------
    coef_, coef_scale_
        Posterior mean and standard deviation of :math:`\beta` (log-time units), ``(n_features,)``.
    coef_samples_
        Coefficient draws ``(n_posterior_samples, n_features)``.
    intercept_, scale_
        Posterior mean of :math:`\mu` and posterior median of :math:`\sigma`.
    intercept_samples_, scale_samples_
        Draws of :math:`\mu` and :math:`\sigma`, ``(n_posterior_samples,)``.
    posterior_loc_, posterior_scale_
        Variational mean and standard deviation of :math:`(\beta', \mu', \rho)` (site ``"theta"``).
    n_features_in_, elbo_history_
        Features seen at ``fit``; ELBO after each SVI step.

    Notes
    -----
    :meth:`predict_risk` returns :math:`-\mathbb E[\log T \mid x] = -(x^\top\beta + \mu - \gamma\sigma)`
    (:math:`\gamma` the Euler–Mascheroni constant): higher = earlier event. Features are used as
    given (not standardised), as in :class:`CoxPHHead`. ``X`` may be 2-D or latent samples
    ``(S, n_obs, n_features)``: at ``fit`` each copy's likelihood is weighted :math:`1/S`; at
    prediction each parameter draw is paired with a random latent draw. Times must be positive.

    Examples
    --------
    >>> import numpy as np
    >>> from sksurv.util import Surv
    >>> from mdlprob.heads import WeibullAFTHead
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> y = Surv.from_arrays(rng.random(200) < 0.8, rng.weibull(1.5, 200) * np.exp(-X[:, 0]))
    >>> head = WeibullAFTHead(random_state=0).fit(X, y)
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

    def fit(self, X: Any, y: Any, *, feature_groups: Any = None) -> WeibullAFTHead:
        """Fit the posterior of :math:`\\beta`, :math:`\\mu` and :math:`\\log\\sigma`.

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
            has non-positive or non-finite times, no observed event, or a length other than ``n_obs``.
        """
        return self._fit_prior(X, y, feature_groups)

    def _fit_once(self, X: Any, y: Any, feature_groups: Any) -> WeibullAFTHead:
        """One fit at the prior in force (see ``_BayesianHead._fit_prior``)."""
        X3, event, time = self._survival_target(X, y)
        if (time <= 0).any():
            msg = (f"Expected positive times in `y` (the model is on log T), got {int((time <= 0).sum())} "
                   "times <= 0; shift them by a small positive amount or drop them.")
            raise ValueError(msg)
        log_t = np.log(time)
        m = float(log_t.mean())
        s = float(log_t.std()) or 1.0
        X_t = torch.tensor(X3)
        u_t = torch.as_tensor((log_t - m) / s)
        ev_t = torch.as_tensor(event, dtype=torch.float64)
        n_copies = X3.shape[0]

        def log_lik(params: dict[str, torch.Tensor]) -> torch.Tensor:
            theta = params["theta"]  # (beta', mu', rho) in one site: less Pyro overhead per step
            log_sigma = theta[-1]
            z = (u_t - X_t @ theta[:-2] - theta[-2]) / torch.exp(log_sigma)
            return (ev_t * (z - log_sigma) - torch.exp(z)).sum() / n_copies

        p = X3.shape[2]
        self._check_feature_groups(feature_groups, p)
        self._fit_mean_field({"theta": (p + 2,)}, log_lik, self._seed_from_random_state(),
                             feature_index={"theta": np.concatenate([np.arange(p), [-1, -1]])})
        loc, scale = self.posterior_loc_["theta"], self.posterior_scale_["theta"]
        draws = self.posterior_samples_["theta"]
        self.coef_ = s * loc[:p]
        self.coef_scale_ = s * scale[:p]
        self.coef_samples_ = s * draws[:, :p]
        self.intercept_ = m + s * float(loc[p])
        self.intercept_samples_ = m + s * draws[:, p]
        self.scale_ = s * float(np.exp(loc[p + 1]))
        self.scale_samples_ = s * np.exp(draws[:, p + 1])
        return self

    def _location_draws(self, X: Any) -> np.ndarray:
        """Draws of :math:`x^\\top\\beta + \\mu` ``(D, n_obs)``, each paired with a latent draw."""
        X3 = self._validate_X(X, reset=False)
        eta = (self._paired_inputs(X3) @ self.coef_samples_[:, :, None])[..., 0]
        return eta + self.intercept_samples_[:, None]

    def _risk_draws(self, X: Any) -> np.ndarray:
        return -(self._location_draws(X) - np.euler_gamma * self.scale_samples_[:, None])

    def predict_survival_function(self, X: Any, times: Any = None, return_interval: bool = False) -> Any:
        """Survival probabilities :math:`S(t \\mid x)`, averaged over parameter (× latent) draws.

        Parameters
        ----------
        X
            Features ``(n_obs, n_features)`` or latent samples ``(S, n_obs, n_features)``.
        times
            Non-negative evaluation times ``(n_times,)`` (:math:`S(0) = 1`).
        return_interval
            Also return pointwise central ``level`` bands over draws.

        Returns
        -------
        ``surv`` ``(n_obs, n_times)``, or ``(surv, lower, upper)``; non-increasing in time, in [0, 1].
        """
        if times is None:
            return self._step_functions(X, return_interval)
        t = _check_times(times)
        check_is_fitted(self)
        loc = self._location_draws(X)  # (D, n)
        with np.errstate(divide="ignore"):
            log_t = np.log(t)
        z = (log_t[None, None, :] - loc[..., None]) / self.scale_samples_[:, None, None]
        draws = np.exp(-np.exp(np.minimum(z, 700.0)))  # (D, n, n_times)
        return self._mean_and_interval(draws, return_interval)

"""Bayesian discrete-time logistic-hazard head with time-varying coefficients (non-PH)."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._base import _check_number
from ._survival import _check_times, _SurvivalHead


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


class LogisticHazardHead(_SurvivalHead):
    r"""Bayesian logistic-hazard (discrete-time) survival model; coefficients vary across time bins.

    .. math::

        h_k(x) = \sigma(a_k + x^\top b_k), \qquad
        S(c_k \mid x) = \prod_{j \le k} \big(1 - h_j(x)\big), \qquad
        b_1 = \beta, \quad b_{k+1} = b_k + \delta_k,

    with :math:`0 = c_0 < c_1 < \dots < c_K` the bin edges (``time_bins_``) and
    :math:`a_k = \bar a + \alpha_k`, :math:`\bar a` the logit of the pooled per-bin event rate.
    Priors: :math:`\alpha_k, \beta_j \sim \mathcal N(0, \text{prior\_scale}^2)` and a Gaussian
    random walk :math:`\delta_{kj} \sim \mathcal N(0, \text{drift\_scale}^2)`, so that small data
    shrink towards proportional odds (``drift_scale -> 0``) instead of overfitting one
    coefficient vector per bin. The mean-field posterior is fitted by SVI (Gensheimer &
    Narasimhan 2019; Kvamme & Borgan 2021).

    Parameters
    ----------
    n_bins
        Number of time intervals; the edges are quantiles of the training event times (ties
        merged, so ``time_bins_`` may hold fewer), the last edge is the largest event time.
    drift_scale
        Prior standard deviation of the change of each coefficient from one bin to the next.
    prior_scale
        Prior standard deviation of :math:`\alpha_k` and :math:`\beta`.
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
    time_bins_
        Bin edges :math:`(c_0 = 0, c_1, \dots, c_K)`, shape ``(K + 1,)``.
    baseline_logit_, baseline_logit_samples_
        Posterior mean ``(K,)`` and draws ``(n_posterior_samples, K)`` of :math:`a_k`.
    coef_, coef_samples_
        Posterior mean ``(K, n_features)`` and draws ``(n_posterior_samples, K, n_features)`` of
        :math:`b_k`.
    n_features_in_, elbo_history_
        Features seen at ``fit``; ELBO after each SVI step.

    Notes
    -----
    Likelihood. An observation with time :math:`t \in (c_{k-1}, c_k]` survived bins
    :math:`1..k-1`, contributing :math:`\sum_{j<k}\log(1-h_j)`. An event adds
    :math:`\log h_k`; a censoring adds :math:`w\log(1-h_k)`, :math:`w = (t-c_{k-1})/(c_k-c_{k-1})`
    the fraction of the bin it was observed through (the actuarial convention: on average half
    a bin). Times beyond :math:`c_K` survived every bin.

    Between edges the survival function follows a constant hazard within the bin,
    :math:`S(t) = S(c_{k-1})\,(1-h_k)^{w}` (consistent with the censoring convention), and it is
    flat after :math:`c_K`, where no event was seen.

    :meth:`predict_risk` returns minus the restricted mean survival time up to :math:`c_K`,
    :math:`-\int_0^{c_K} S(t \mid x)\,dt` (time units; higher = earlier event), which stays
    meaningful when survival curves cross. Features are used as given (not standardised),
    as in :class:`CoxPHHead`; 3-D ``X`` is handled as there.

    References
    ----------
    Gensheimer, M. F., & Narasimhan, B. (2019). A scalable discrete-time survival model for
    neural networks. PeerJ, 7, e6257.
    Kvamme, H., & Borgan, Ø. (2021). Continuous and discrete-time survival prediction with
    neural networks. Lifetime Data Analysis, 27, 710-736.

    Examples
    --------
    >>> import numpy as np
    >>> from sksurv.util import Surv
    >>> from mdlprob.heads import LogisticHazardHead
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> y = Surv.from_arrays(rng.random(200) < 0.8, rng.exponential(np.exp(-X[:, 0])))
    >>> head = LogisticHazardHead(n_bins=5, random_state=0).fit(X, y)
    >>> head.predict_survival_function(X[:3], [0.5, 1.0]).shape
    (3, 2)
    """

    def __init__(self, *, n_bins: int = 10, drift_scale: float = 0.3, prior_scale: float = 1.0,
                 max_epochs: int = 300, lr: float = 0.02, n_posterior_samples: int = 100,
                 level: float = 0.9, random_state: Any = None) -> None:
        self.n_bins = n_bins
        self.drift_scale = drift_scale
        self.prior_scale = prior_scale
        self.max_epochs = max_epochs
        self.lr = lr
        self.n_posterior_samples = n_posterior_samples
        self.level = level
        self.random_state = random_state

    def _bin_position(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bin index ``k`` (``K`` beyond the last edge) and covered fraction ``w`` of each time."""
        edges = self.time_bins_
        k = np.searchsorted(edges[1:], t, side="left")
        kk = np.minimum(k, edges.size - 2)
        w = np.clip((t - edges[kk]) / (edges[kk + 1] - edges[kk]), 0.0, 1.0)
        return k, np.where(k < edges.size - 1, w, 1.0)

    def fit(self, X: Any, y: Any, *, feature_groups: Any = None) -> LogisticHazardHead:
        """Cut the time axis and fit the posterior of the per-bin hazards.

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

    def _fit_once(self, X: Any, y: Any, feature_groups: Any) -> LogisticHazardHead:
        """One fit at the prior in force (see ``_BayesianHead._fit_prior``)."""
        _check_number("n_bins", self.n_bins, kind=Integral, low=1)
        _check_number("drift_scale", self.drift_scale, kind=Real, low=0, low_open=True)
        X3, event, time = self._survival_target(X, y)
        quantiles = np.quantile(time[event], np.arange(1, int(self.n_bins) + 1) / int(self.n_bins))
        self.time_bins_ = np.unique(np.concatenate([[0.0], quantiles]))
        if self.time_bins_.size < 2:  # every event at time 0
            self.time_bins_ = np.array([0.0, max(float(time.max()), 1.0)])
        n_bins = self.time_bins_.size - 1
        k, w = self._bin_position(time)
        bins = np.arange(n_bins)[None, :]
        survived = (bins < k[:, None]) + np.where(event, 0.0, w)[:, None] * (bins == k[:, None])
        failed = event[:, None] & (bins == k[:, None])
        offset = float(np.log((failed.sum() + 0.5) / (survived.sum() + 0.5)))
        surv_t = torch.as_tensor(survived, dtype=torch.float64)
        fail_t = torch.as_tensor(failed, dtype=torch.float64)
        X_t = torch.tensor(X3)
        n_copies = X3.shape[0]

        def log_lik(params: dict[str, torch.Tensor]) -> torch.Tensor:
            eta = X_t @ self._coefficients(params, n_bins).T + offset + params["ab"][:n_bins]  # (S, n, K)
            log_surv = -torch.nn.functional.softplus(eta)
            return (surv_t * log_surv + fail_t * (eta + log_surv)).sum() / n_copies

        p = X3.shape[2]
        sites: dict[str, tuple[int, ...]] = {"ab": (n_bins + p,)}  # alpha, beta share a site: less Pyro overhead
        if n_bins > 1:
            sites["delta"] = (n_bins - 1, p)
        self._check_feature_groups(feature_groups, p)
        self._fit_mean_field(sites, log_lik, self._seed_from_random_state(),
                             prior_scales={"delta": float(self.drift_scale)},
                             feature_index={"ab": np.concatenate([np.full(n_bins, -1), np.arange(p)])})
        draws = {name: torch.as_tensor(v) for name, v in self.posterior_samples_.items()}
        self.coef_samples_ = self._coefficients(draws, n_bins).numpy()
        self.coef_ = self._coefficients({n: torch.as_tensor(v) for n, v in self.posterior_loc_.items()}, n_bins).numpy()
        self.baseline_logit_ = offset + self.posterior_loc_["ab"][:n_bins]
        self.baseline_logit_samples_ = offset + self.posterior_samples_["ab"][:, :n_bins]
        return self

    @staticmethod
    def _coefficients(params: dict[str, torch.Tensor], n_bins: int) -> torch.Tensor:
        """Per-bin coefficients ``b_k`` ``(..., K, p)``: ``beta`` (``ab`` after the ``K`` intercepts) + drift."""
        beta = params["ab"][..., n_bins:].unsqueeze(-2)
        if "delta" not in params:
            return beta
        return torch.cat([beta, beta + torch.cumsum(params["delta"], dim=-2)], dim=-2)

    def _logit_draws(self, X: Any) -> np.ndarray:
        """Hazard logits ``(D, n_obs, K)``, each parameter draw paired with a latent draw."""
        check_is_fitted(self)
        X3 = self._validate_X(X, reset=False)
        eta = self._paired_inputs(X3) @ np.swapaxes(self.coef_samples_, 1, 2)
        return eta + self.baseline_logit_samples_[:, None, :]

    def _survival_draws(self, X: Any, t: np.ndarray) -> np.ndarray:
        """Survival draws ``(D, n_obs, n_times)`` under constant hazard within each bin."""
        log_surv_bin = -_softplus(self._logit_draws(X))  # log(1 - h_k), (D, n, K)
        cum = np.concatenate([np.zeros((*log_surv_bin.shape[:2], 1)), np.cumsum(log_surv_bin, axis=-1)], axis=-1)
        k, w = self._bin_position(t)
        kk = np.minimum(k, log_surv_bin.shape[-1] - 1)
        log_s = cum[..., k] + np.where(k < log_surv_bin.shape[-1], w, 0.0) * log_surv_bin[..., kk]
        return np.exp(log_s)

    def _risk_draws(self, X: Any) -> np.ndarray:
        eta = self._logit_draws(X)
        log_surv_bin = -_softplus(eta)
        start = np.exp(np.cumsum(log_surv_bin, axis=-1) - log_surv_bin)  # S(c_{k-1})
        # integral over bin k of S(c_{k-1}) (1-h)^w: width * h / (-log(1-h)) = width * sigmoid / softplus
        ratio = np.where(eta < -30.0, 1.0, np.exp(-_softplus(-eta)) / np.maximum(_softplus(eta), 1e-300))
        return -(start * ratio * np.diff(self.time_bins_)).sum(axis=-1)

    def predict_survival_function(self, X: Any, times: Any = None, return_interval: bool = False) -> Any:
        """Survival probabilities :math:`S(t \\mid x)`, averaged over parameter (× latent) draws.

        Parameters
        ----------
        X
            Features ``(n_obs, n_features)`` or latent samples ``(S, n_obs, n_features)``.
        times
            Non-negative evaluation times ``(n_times,)`` (None: one scikit-survival
            ``StepFunction`` per observation, on the training times, as ``sksurv`` returns); log-linear within bins, flat after the last edge.
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
        return self._mean_and_interval(self._survival_draws(X, t), return_interval)

"""Bayesian multiclass logistic regression (or one-hidden-layer Bayesian MLP) head."""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils import assert_all_finite
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ._base import _BayesianHead, _check_number


class ClassifierHead(ClassifierMixin, _BayesianHead):
    r"""Bayesian softmax classifier with a mean-field Gaussian posterior over its weights.

    .. math::

        w \sim \mathcal N(0, \sigma^2 I), \qquad
        y_i \mid x_i, w \sim \mathrm{Categorical}(\mathrm{softmax}(f_w(x_i))),

    with :math:`f_w(x) = W x + b` (``n_hidden=0``) or
    :math:`f_w(x) = W_2 \tanh(W_1 x + b_1) + b_2`. The posterior
    :math:`q(w) = \prod_j \mathcal N(\mu_j, s_j^2)` is fitted by full-batch SVI with Adam.

    Parameters
    ----------
    n_hidden
        Hidden units; 0 gives (multinomial) Bayesian logistic regression.
    prior_scale
        Standard deviation :math:`\sigma` of the Gaussian prior on every weight.
        ``"auto"``: a scale per feature group (``fit``'s ``feature_groups``) by empirical Bayes,
        times a common multiplier chosen by 3-fold cross-validation inside the training
        data; ``"eb"``: the empirical-Bayes scales alone; ``"ard"``: one empirical-Bayes
        scale per feature; a dict: a fixed scale per group. Fitted scales: ``prior_scale_``.
    max_epochs
        Number of SVI steps (each on the full training set).
    lr
        Adam learning rate.
    n_posterior_samples
        Weight draws used for predictions and intervals (drawn once at ``fit``).
    level
        Coverage of the central intervals returned with ``return_interval=True``.
    random_state
        Seed (or ``RandomState``) for initialisation, SVI and posterior draws.

    Attributes
    ----------
    classes_
        Sorted class labels, shape ``(n_classes,)``.
    n_features_in_
        Number of features seen at ``fit``.
    posterior_loc_, posterior_scale_
        Variational means and standard deviations, one array per weight site.
    posterior_samples_
        The ``n_posterior_samples`` weight draws used at prediction.
    coef_, intercept_
        Posterior means of :math:`W^\top` ``(n_features, n_classes)`` and :math:`b`
        (only with ``n_hidden=0``).
    elbo_history_
        ELBO after each SVI step.

    Notes
    -----
    ``X`` may be 2-D ``(n_obs, n_features)`` or posterior samples ``(S, n_obs, n_features)``.
    At ``fit`` the S copies are all used, each likelihood weighted :math:`1/S`. At prediction each
    weight draw is paired with a random latent draw, so intervals reflect both uncertainties.

    Examples
    --------
    >>> import numpy as np
    >>> from mdlprob.heads import ClassifierHead
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 3)); y = (X[:, 0] > 0).astype(int)
    >>> head = ClassifierHead(max_epochs=100, random_state=0).fit(X, y)
    >>> proba, lower, upper = head.predict_proba(X, return_interval=True)
    >>> proba.shape
    (100, 2)
    """

    def __init__(self, *, n_hidden: int = 0, prior_scale: float = 1.0, max_epochs: int = 300, lr: float = 0.02,
                 n_posterior_samples: int = 100, level: float = 0.9, random_state: Any = None) -> None:
        self.n_hidden = n_hidden
        self.prior_scale = prior_scale
        self.max_epochs = max_epochs
        self.lr = lr
        self.n_posterior_samples = n_posterior_samples
        self.level = level
        self.random_state = random_state

    def _sites(self, n_features: int, n_classes: int) -> dict[str, tuple[int, ...]]:
        if self.n_hidden == 0:
            return {"W": (n_features, n_classes), "b": (n_classes,)}
        h = int(self.n_hidden)
        return {"W1": (n_features, h), "b1": (h,), "W2": (h, n_classes), "b2": (n_classes,)}

    @staticmethod
    def _logits(X: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """``X`` ``(B, n, p)``; params with a leading draw axis ``(D, ...)``; returns ``(max(B, D), n, K)``."""
        if "W" in params:
            return X @ params["W"] + params["b"].unsqueeze(-2)
        hidden = torch.tanh(X @ params["W1"] + params["b1"].unsqueeze(-2))
        return hidden @ params["W2"] + params["b2"].unsqueeze(-2)

    def fit(self, X: Any, y: Any, *, feature_groups: Any = None) -> ClassifierHead:
        """Fit the weight posterior.

        Parameters
        ----------
        X
            Features ``(n_obs, n_features)`` or latent samples ``(S, n_obs, n_features)``.
        y
            Class labels ``(n_obs,)``, any hashable values; at least two classes.
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
            On invalid hyper-parameters, non-finite ``X``, length mismatch, or a single class.
        """
        return self._fit_prior(X, y, feature_groups)

    def _fit_once(self, X: Any, y: Any, feature_groups: Any) -> ClassifierHead:
        """One fit at the prior in force (see ``_BayesianHead._fit_prior``)."""
        self._check_common_params()
        _check_number("n_hidden", self.n_hidden, kind=Integral, low=0)
        if y is None:
            msg = f"{type(self).__name__} requires y to be passed, but the target y is None."
            raise ValueError(msg)
        X3 = self._validate_X(X, reset=True)
        y = column_or_1d(y, warn=True)
        if y.dtype.kind in "fc":
            assert_all_finite(y, input_name="y")
        check_classification_targets(y)
        if y.shape[0] != X3.shape[1]:
            msg = f"Expected `y` to have one label per observation ({X3.shape[1]}), got {y.shape[0]}."
            raise ValueError(msg)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            msg = (f"Expected `y` to contain at least 2 classes, got only one class: {self.classes_[0]!r}. "
                   "A classifier cannot be fitted on a single class.")
            raise ValueError(msg)
        X_t = torch.tensor(X3)
        y_t = torch.as_tensor(codes.reshape(-1), dtype=torch.long)
        n_copies = X3.shape[0]

        def log_lik(params: dict[str, torch.Tensor]) -> torch.Tensor:
            params = {k: v.unsqueeze(0) for k, v in params.items()}
            logp = torch.log_softmax(self._logits(X_t, params), dim=-1)
            return logp.gather(-1, y_t.expand(n_copies, -1).unsqueeze(-1)).sum() / n_copies

        p = X3.shape[2]
        self._check_feature_groups(feature_groups, p)
        sites = self._sites(p, self.classes_.size)
        first = "W" if "W" in sites else "W1"
        index = np.broadcast_to(np.arange(p)[:, None], sites[first]).copy()
        self._fit_mean_field(sites, log_lik, self._seed_from_random_state(), feature_index={first: index})
        if self.n_hidden == 0:
            self.coef_ = self.posterior_loc_["W"]
            self.intercept_ = self.posterior_loc_["b"]
        return self

    def _proba_draws(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X3 = self._validate_X(X, reset=False)
        with torch.no_grad():
            logits = self._logits(torch.tensor(self._paired_inputs(X3)), self._draw_params())
            return torch.softmax(logits, dim=-1).numpy()

    def predict_proba(self, X: Any, return_interval: bool = False) -> Any:
        """Posterior predictive class probabilities.

        Parameters
        ----------
        X
            Features ``(n_obs, n_features)`` or latent samples ``(S, n_obs, n_features)``.
        return_interval
            Also return the central ``level`` interval of each class probability over draws
            (stretched to contain ``proba`` when skewed draws put the mean outside it).

        Returns
        -------
        ``proba`` ``(n_obs, n_classes)`` (rows sum to 1), or ``(proba, lower, upper)``.
        """
        draws = self._proba_draws(X)
        proba = draws.mean(axis=0)
        if not return_interval:
            return proba
        lower, upper = self._interval(draws, proba)
        return proba, lower, upper

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class label per observation, shape ``(n_obs,)``."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def _cv_strata(self, y: np.ndarray) -> np.ndarray:
        return np.unique(y, return_inverse=True)[1].ravel()

    def _cv_score(self, X3: np.ndarray, y: np.ndarray) -> float:
        proba = self.predict_proba(X3)
        col = np.searchsorted(self.classes_, y)
        known = (col < self.classes_.size) & (self.classes_[np.minimum(col, self.classes_.size - 1)] == y)
        p_true = np.where(known, proba[np.arange(len(y)), np.minimum(col, self.classes_.size - 1)], 0.0)
        return float(np.log(np.clip(p_true, 1e-12, None)).mean())

    def predictive_entropy(self, X: Any) -> np.ndarray:
        """Entropy (nats) of the posterior predictive distribution, shape ``(n_obs,)``."""
        proba = self.predict_proba(X)
        return -np.sum(proba * np.log(np.clip(proba, 1e-300, None)), axis=1)

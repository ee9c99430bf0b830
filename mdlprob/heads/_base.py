"""Shared machinery for the Bayesian heads: input checks, mean-field SVI, posterior draws.

Every head takes ``X`` either as a 2-D array ``(n_obs, n_features)`` or as 3-D posterior
samples ``(S, n_obs, n_features)`` (e.g. from ``BaseModel.get_latent(mdata, n_samples=S)``).
Internally inputs are always 3-D; a 2-D input is one "sample" (``S = 1``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from numbers import Integral, Real
from typing import Any

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.infer import SVI, Trace_ELBO
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import StratifiedKFold
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .._utils import track

Sites = dict[str, tuple[int, ...]]
LogLik = Callable[[dict[str, torch.Tensor]], torch.Tensor]

_INIT_SCALE = 0.1
#: ``prior_scale`` options besides a number or a dict group -> scale.
PRIOR_MODES = ("auto", "eb", "ard")
#: Multipliers of the empirical-Bayes scales among which ``prior_scale="auto"`` chooses by cross-validation.
CV_MULTIPLIERS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


def _check_number(name: str, value: Any, *, kind: type, low: float, low_open: bool = False,
                  high: float | None = None, high_open: bool = False) -> None:
    """Raise a ValueError naming ``name`` unless ``value`` is a ``kind`` number in the range."""
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if ok:
        ok = (value > low if low_open else value >= low)
        if high is not None:
            ok = ok and (value < high if high_open else value <= high)
    if not ok:
        lo = "(" if low_open else "["
        hi = "inf)" if high is None else (f"{high})" if high_open else f"{high}]")
        what = "an int" if kind is Integral else "a number"
        msg = f"Expected `{name}` to be {what} in {lo}{low}, {hi}, got {value!r}."
        raise ValueError(msg)


class _BayesianHead(BaseEstimator):
    """Base class: parameter checks, 2-D/3-D input handling and mean-field SVI fitting."""

    def _check_common_params(self) -> None:
        ps = self.prior_scale
        if isinstance(ps, Mapping):
            for name, value in ps.items():
                _check_number(f"prior_scale[{name!r}]", value, kind=Real, low=0, low_open=True)
        elif not (isinstance(ps, str) and ps in PRIOR_MODES):
            if isinstance(ps, str):
                msg = f"Expected `prior_scale` to be a number > 0, a dict group -> scale or one of {PRIOR_MODES}, got {ps!r}."
                raise ValueError(msg)
            _check_number("prior_scale", ps, kind=Real, low=0, low_open=True)
        _check_number("max_epochs", self.max_epochs, kind=Integral, low=1)
        _check_number("lr", self.lr, kind=Real, low=0, low_open=True)
        _check_number("n_posterior_samples", self.n_posterior_samples, kind=Integral, low=2)
        _check_number("level", self.level, kind=Real, low=0, low_open=True, high=1, high_open=True)

    # ----------------------------------------------------------------- inputs
    def _validate_X(self, X: Any, *, reset: bool) -> np.ndarray:
        """Return ``X`` as a float64 array ``(S, n_obs, n_features)``; set/check ``n_features_in_``."""
        if not reset:
            check_is_fitted(self)
        if isinstance(X, np.ndarray | torch.Tensor) and X.ndim == 3:
            return self._validate_X3(X, reset=reset)
        X2 = validate_data(self, X, reset=reset, dtype=np.float64, ensure_min_samples=1)
        return X2[None]

    def _validate_X3(self, X: Any, *, reset: bool) -> np.ndarray:
        X3 = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else X
        if not (np.issubdtype(X3.dtype, np.floating) or np.issubdtype(X3.dtype, np.integer)
                or X3.dtype == bool):
            msg = f"Expected `X` to hold real numbers, got dtype {X3.dtype}."
            raise ValueError(msg)
        X3 = np.asarray(X3, dtype=np.float64)
        if min(X3.shape) == 0:
            msg = f"Expected `X` of shape (n_samples, n_obs, n_features) with no empty axis, got {X3.shape}."
            raise ValueError(msg)
        if not np.isfinite(X3).all():
            msg = "Input `X` contains NaN or infinity; impute or drop those entries first."
            raise ValueError(msg)
        n_features = X3.shape[2]
        if reset:
            self.n_features_in_ = n_features
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        elif n_features != self.n_features_in_:
            msg = (f"X has {n_features} features, but {type(self).__name__} is expecting "
                   f"{self.n_features_in_} features as input.")
            raise ValueError(msg)
        return X3

    # ---------------------------------------------------------------- fitting
    def _seed_from_random_state(self) -> int:
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _check_feature_groups(self, feature_groups: Any, n_features: int) -> np.ndarray:
        """Group code per feature; sets ``feature_groups_`` (codes) and ``feature_group_labels_``.

        All features form one group ``0`` when ``feature_groups`` is ``None``; with
        ``prior_scale="ard"`` each feature is its own group.
        """
        if self.prior_scale == "ard":
            labels, codes = np.arange(n_features), np.arange(n_features)
        elif feature_groups is None:
            labels, codes = np.zeros(1, dtype=np.int64), np.zeros(n_features, dtype=np.int64)
        else:
            groups = np.asarray(feature_groups)
            if groups.shape != (n_features,):
                msg = (f"Expected `feature_groups` to hold one group label per feature ({n_features}), got shape "
                       f"{groups.shape}.")
                raise ValueError(msg)
            labels, codes = np.unique(groups, return_inverse=True)
            codes = codes.reshape(-1)
        if isinstance(self.prior_scale, Mapping):
            missing = [g for g in labels.tolist() if g not in self.prior_scale]
            if missing:
                msg = f"`prior_scale` gives no scale for the feature groups {missing}; it has {list(self.prior_scale)}."
                raise ValueError(msg)
            self._fixed_group_scales = np.array([float(self.prior_scale[g]) for g in labels.tolist()])
        self.feature_groups_, self.feature_group_labels_ = codes, labels
        return codes

    # ------------------------------------------------------------ prior choice
    def _fit_prior(self, X: Any, y: Any, feature_groups: Any) -> _BayesianHead:
        r"""``fit``: one fit, or for ``prior_scale="auto"`` empirical Bayes then a cross-validated multiplier.

        ``"auto"`` fits the group scales :math:`\tau_g` by empirical Bayes (as ``"eb"``), then
        chooses a common multiplier :math:`c` of them from :data:`CV_MULTIPLIERS` by stratified
        3-fold cross-validation inside the training data (held-out log-likelihood of the
        labels for classifiers, Harrell's C for survival heads, the criterion scikit-survival's
        Coxnet is tuned with), and refits at :math:`c\,\tau_g`. Empirical Bayes with a
        mean-field posterior shrinks too much when a group mixes relevant and irrelevant
        features; the multiplier corrects the overall level while keeping the groups' ratios.
        """
        self._fixed_group_scales = None
        if not (isinstance(self.prior_scale, str) and self.prior_scale == "auto"):
            return self._fit_once(X, y, feature_groups)
        self._check_common_params()
        eb = clone(self).set_params(prior_scale="eb")._fit_once(X, y, feature_groups)
        X3, y_arr = self._validate_X(X, reset=True), np.asarray(y)
        if y_arr.shape[:1] != X3.shape[1:2]:
            return self._fit_once(X, y, feature_groups)  # let the head's own checks report the mismatch
        strata = self._cv_strata(y_arr)
        folds = min(3, int(np.bincount(np.unique(strata, return_inverse=True)[1].ravel()).min()))
        if folds < 2:
            self._fixed_group_scales = eb.prior_scale_
            self._fit_once(X, y, feature_groups)
            self.prior_scale_, self.prior_multiplier_ = eb.prior_scale_, 1.0
            return self
        cv = StratifiedKFold(folds, shuffle=True, random_state=self._seed_from_random_state() % (2**31))
        scores = np.zeros(len(CV_MULTIPLIERS))
        for train, test in cv.split(np.zeros(len(y_arr)), strata):
            for i, c in enumerate(CV_MULTIPLIERS):
                head = clone(self)
                head._fixed_group_scales = c * eb.prior_scale_
                head._fit_once(X3[:, train], y_arr[train], feature_groups)
                scores[i] += head._cv_score(X3[:, test], y_arr[test]) / folds
        best = CV_MULTIPLIERS[int(np.argmax(scores))]
        self._fixed_group_scales = best * eb.prior_scale_
        self._fit_once(X, y, feature_groups)
        self.prior_scale_, self.prior_multiplier_, self.prior_cv_scores_ = best * eb.prior_scale_, best, scores
        return self

    def _cv_strata(self, y: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """Labels to stratify the folds of ``prior_scale="auto"`` on."""
        raise NotImplementedError

    def _cv_score(self, X3: np.ndarray, y: np.ndarray) -> float:  # pragma: no cover - abstract
        """Held-out score of ``prior_scale="auto"``'s cross-validation (higher is better)."""
        raise NotImplementedError

    def _fit_mean_field(self, sites: Sites, log_lik: LogLik, seed: int, *,
                        prior_scales: Mapping[str, float] | None = None,
                        feature_index: Mapping[str, np.ndarray] | None = None) -> None:
        r"""Fit a mean-field Gaussian posterior over ``sites`` by SVI (full batch, Adam).

        Every site has a centred Gaussian prior with standard deviation ``prior_scale``, or
        ``prior_scales[name]`` for the sites named there. With ``prior_scale="eb"`` (or
        ``"ard"``) the elements of a site that weigh an input feature
        (``feature_index[name]``: the feature's column for each element of the site, -1 for
        the others such as intercepts) get the standard deviation :math:`\tau_g` of their
        feature's group (``feature_groups_``), learned with the posterior by maximising the
        ELBO (type-II maximum likelihood, as in automatic relevance determination): a group
        whose features do not help the fit shrinks towards zero. With a dict, or inside
        ``"auto"``, :math:`\tau_g` is fixed. The other elements keep a N(0, 1) prior. Sets ``posterior_loc_``, ``posterior_scale_`` (dicts of arrays),
        ``elbo_history_``, ``posterior_samples_`` (``n_posterior_samples`` draws of each
        site, leading axis) and, with ``"auto"``, ``prior_scale_`` (one per group).
        """
        group_fixed = getattr(self, "_fixed_group_scales", None)
        by_group = isinstance(self.prior_scale, str | Mapping) or group_fixed is not None
        learned = by_group and group_fixed is None
        fixed = 1.0 if by_group else float(self.prior_scale)
        scales = {name: float((prior_scales or {}).get(name, fixed)) for name in sites}
        groups = {}
        if by_group:
            codes = torch.as_tensor(self.feature_groups_)
            for name, index in (feature_index or {}).items():
                if name not in (prior_scales or {}):
                    index = torch.as_tensor(index)
                    groups[name] = (index >= 0, codes[index.clamp_min(0)])
        n_groups = int(self.feature_groups_.max()) + 1 if by_group else 0

        def model() -> None:
            if groups and learned:
                tau = pyro.param("prior_tau", lambda: torch.ones(n_groups, dtype=torch.float64),
                                 constraint=constraints.positive)
            elif groups:
                tau = torch.as_tensor(group_fixed, dtype=torch.float64)
            params = {}
            for name, shape in sites.items():
                scale = torch.full(shape, scales[name], dtype=torch.float64)
                if name in groups:
                    weighs, code = groups[name]
                    scale = torch.where(weighs, tau[code], scale)
                params[name] = pyro.sample(name, dist.Normal(torch.zeros(shape, dtype=torch.float64), scale)
                                           .to_event(len(shape)))
            pyro.factor("log_likelihood", log_lik(params))

        def guide() -> None:
            for name, shape in sites.items():
                loc = pyro.param(f"{name}_loc", lambda s=shape: _INIT_SCALE * torch.randn(s, dtype=torch.float64))
                scale = pyro.param(f"{name}_scale", lambda s=shape: torch.full(s, _INIT_SCALE, dtype=torch.float64),
                                   constraint=constraints.positive)
                pyro.sample(name, dist.Normal(loc, scale).to_event(len(shape)))

        store = pyro.get_param_store()
        with torch.random.fork_rng(devices=[]), store.scope():
            torch.manual_seed(seed)
            svi = SVI(model, guide, pyro.optim.Adam({"lr": float(self.lr)}), Trace_ELBO())
            steps = track(range(int(self.max_epochs)), description=f"Fitting {type(self).__name__}", leave=False)
            losses = [svi.step() for _ in steps]
            loc = {n: store[f"{n}_loc"].detach().numpy().copy() for n in sites}
            scale = {n: store[f"{n}_scale"].detach().numpy().copy() for n in sites}
            if groups and learned:
                self.prior_scale_ = store["prior_tau"].detach().numpy().copy()
            elif groups:
                self.prior_scale_ = np.asarray(group_fixed, dtype=np.float64).copy()
        rng = np.random.default_rng(seed)
        d = int(self.n_posterior_samples)
        self.posterior_loc_ = loc
        self.posterior_scale_ = scale
        self.posterior_samples_ = {n: loc[n] + scale[n] * rng.standard_normal((d, *loc[n].shape)) for n in sites}
        self.elbo_history_ = -np.asarray(losses)
        self._seed = seed

    # ------------------------------------------------------------- prediction
    def _paired_inputs(self, X3: np.ndarray) -> np.ndarray:
        """Pair each weight draw with a random latent draw: ``(D, n_obs, p)`` (or ``(1, n, p)`` for 2-D X)."""
        s, n, _ = X3.shape
        if s == 1:
            return X3
        d = int(self.n_posterior_samples)
        idx = np.random.default_rng(self._seed + 1).integers(s, size=(d, n))
        return X3[idx, np.arange(n)[None, :]]

    def _draw_params(self) -> dict[str, torch.Tensor]:
        return {n: torch.as_tensor(v) for n, v in self.posterior_samples_.items()}

    def _interval(self, draws: np.ndarray, point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Central ``level`` quantile interval over axis 0, extended to contain ``point``.

        A posterior mean can fall outside the central quantiles when the draws are strongly
        skewed (probabilities near 0 or 1); the band is then stretched to reach it.
        """
        alpha = (1.0 - float(self.level)) / 2.0
        lower, upper = np.quantile(draws, [alpha, 1.0 - alpha], axis=0)
        return np.minimum(lower, point), np.maximum(upper, point)

    def fit_from_model(self, model: Any, mdata: Any, y: Any, *, n_samples: int = 20) -> _BayesianHead:
        """Fit on ``n_samples`` posterior draws of a trained model's latent space.

        Parameters
        ----------
        model
            A trained mdlprob model (anything with ``get_latent(mdata, n_samples=...)``).
        mdata
            The data to embed; one row of ``y`` per observation.
        y
            Targets, as for :meth:`fit`.
        n_samples
            Number of latent posterior draws; each is a training copy weighted ``1 / n_samples``.

        Returns
        -------
        The fitted head.
        """
        _check_number("n_samples", n_samples, kind=Integral, low=1)
        Z = model.get_latent(mdata, n_samples=n_samples)
        return self.fit(Z, y)

"""A Bayesian head on a trained model's latent posterior that sees at fit what it will see at prediction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from ._base import _BayesianHead, _check_number

logger = logging.getLogger(__name__)


class LatentHead(BaseEstimator):
    r"""A head (classifier or survival model) on a multimodal model's latent posterior.

    For observation :math:`i`, latent draw :math:`s` and the set :math:`S` of modalities the
    posterior conditions on, the head's input is

    .. math::
        \big[\, z_i^{(s)} \sim q(z \mid x_{iS}),\;\; c_i,\;\; \mathbb{1}[m \in S]_{m} \,\big],

    the latent draw, standardised covariates :math:`c_i` that reach the head directly (e.g.
    age and sex for survival, which a latent compressing thousands of genes may blur) and
    which modalities the posterior saw (coded :math:`\pm\frac12`). At prediction :math:`S` is everything the
    observation has. At fit, each draw of each training observation loses one of its
    modalities with probability ``modality_dropout`` (never its last): the head then meets
    during training the wider, prior-shrunk posteriors of observations that lack a view,
    instead of learning only from complete ones and extrapolating. Latent draws enter as
    augmentation (each weighted :math:`1/S`), so prediction integrates over them and an
    observation with fewer views gets a wider interval. Point predictions (probabilities,
    risks, survival curves) use the posterior-mean latent: a head fitted on posterior draws
    has already learned their spread, and averaging it over draws again double-counts it
    (on mixOmics subtypes the expected calibration error went from 0.063 to 0.043).

    With the head's ``prior_scale="auto"`` the latent dimensions, the covariates and the
    presence indicators each get their own prior scale, learned by maximising the ELBO: a
    group that does not help (a latent without outcome signal) is shrunk towards zero.

    Parameters
    ----------
    model
        A trained mdlprob model (``sample_latent``, ``tensors`` and ``modalities``).
    head
        An unfitted head from :mod:`mdlprob.heads` (cloned at ``fit``), e.g.
        ``CoxPHHead(prior_scale="auto")``.
    modality_latents
        ``True``: also give the head a latent draw from each modality's own posterior
        :math:`q(z \mid x_{im})` (a prior draw when the observation lacks :math:`m`), each
        block with its own prior scale: the head can then weigh what each view says about
        the outcome separately (as late fusion does), so a view that is present for every
        observation keeps its own coefficients when another view is missing. ``"auto"``:
        decide by 3-fold cross-validation inside the training data (``modality_latents_``).
    covariates
        Names of numeric covariates, each a column of ``mdata.obs`` or a feature of one of
        the model's modalities (e.g. ``["age", "is_female"]`` of a clinical table). Missing
        values (also of an absent modality) take the training mean.
    modality_dropout
        Probability, per training observation and latent draw, of dropping one of its
        present modalities from the posterior.
    n_samples
        Latent posterior draws per observation, at fit and at prediction.
    random_state
        Seed of the dropout pattern (the latent draws follow ``mdlprob.settings.seed``).

    Attributes
    ----------
    head_
        The fitted head.
    feature_names_, feature_groups_
        Names and groups (``latent``, ``latent|<modality>``, ``covariate``, ``presence``) of
        the head's inputs.
    modality_latents_
        Whether the per-modality latent blocks were used.
    covariate_mean_, covariate_scale_
        Training mean and sd of each covariate.

    Examples
    --------
    >>> import mdlprob
    >>> from mdlprob.heads import ClassifierHead, LatentHead
    >>> mdata = mdlprob.datasets.synthetic(200, missing={"protein": 0.3})
    >>> mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb", "clinical": "mixed"})
    >>> model = mdlprob.PoEVAE(mdata, n_latent=4)
    >>> model.train(max_epochs=2, progress_bar=False)
    >>> est = LatentHead(model, ClassifierHead(prior_scale="auto", max_epochs=50), n_samples=5)
    >>> est = est.fit(mdata, mdata.obs["label"].to_numpy())
    >>> est.predict_proba(mdata).shape  # three classes
    (200, 3)
    """

    def __init__(self, model: Any, head: _BayesianHead, *, covariates: Sequence[str] | None = None,
                 modality_latents: bool | str = "auto", modality_dropout: float = 0.5, n_samples: int = 20,
                 random_state: Any = None) -> None:
        self.model = model
        self.head = head
        self.covariates = covariates
        self.modality_latents = modality_latents
        self.modality_dropout = modality_dropout
        self.n_samples = n_samples
        self.random_state = random_state

    # ---------------------------------------------------------------- inputs
    def _check_params(self) -> None:
        if not isinstance(self.head, _BayesianHead):
            msg = f"Expected `head` to be an mdlprob head (e.g. CoxPHHead()), got {type(self.head).__name__}."
            raise TypeError(msg)
        if not getattr(self.model, "is_trained_", False):
            msg = "Expected `model` to be a trained mdlprob model; call model.train() first."
            raise ValueError(msg)
        _check_number("modality_dropout", self.modality_dropout, kind=Real, low=0, high=1, high_open=True)
        if self.modality_latents not in (True, False, "auto"):
            msg = f"Expected `modality_latents` to be True, False or 'auto', got {self.modality_latents!r}."
            raise ValueError(msg)
        _check_number("n_samples", self.n_samples, kind=Integral, low=1)

    def _covariate_values(self, mdata: Any) -> np.ndarray:
        """Raw covariates ``(n_obs, n_covariates)``, NaN where missing."""
        names = list(self.covariates or [])
        out = np.full((mdata.n_obs, len(names)), np.nan)
        for c, name in enumerate(names):
            if name in mdata.obs.columns:
                col = mdata.obs[name]
                if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
                    msg = f"Covariate {name!r} of mdata.obs has dtype {col.dtype}; expected numbers or booleans."
                    raise TypeError(msg)
                out[:, c] = col.to_numpy(dtype=np.float64, na_value=np.nan)
                continue
            holders = [m for m in self.model.modalities if m in mdata.mod and name in mdata.mod[m].var_names]
            if not holders:
                msg = (f"Covariate {name!r} is neither a column of mdata.obs nor a feature of the model's modalities "
                       f"{self.model.modalities}.")
                raise KeyError(msg)
            adata = mdata.mod[holders[0]]
            values = adata[:, name].X
            values = np.asarray(values.toarray() if hasattr(values, "toarray") else values, dtype=np.float64).ravel()
            rows = np.asarray(mdata.obsmap[holders[0]]).astype(np.int64) - 1
            out[rows >= 0, c] = values[rows[rows >= 0]]
        return out

    def _features(self, mdata: Any, *, fit: bool, given: Sequence[str] | None = None) -> np.ndarray:
        """Head inputs ``(n_samples, n_obs, n_features)`` for ``mdata``, the posterior seeing only ``given``."""
        presence = self.model.tensors(mdata).presence.cpu().numpy()
        if given is not None:  # an empty list: the prior
            from ..base._validate import check_subset

            chosen = check_subset("given", given, self.model.modalities) if len(given) else []
            presence = presence & np.isin(self.model.modalities, chosen)
        n_obs, n_mod = presence.shape
        s = int(self.n_samples)
        masks = np.broadcast_to(presence, (s, n_obs, n_mod)).copy()
        if fit and self.modality_dropout > 0:
            rng = np.random.default_rng(self.random_state)
            for i in np.flatnonzero(presence.sum(1) > 1):
                present = np.flatnonzero(presence[i])
                drop = rng.random(s) < self.modality_dropout
                masks[drop, i, rng.choice(present, size=int(drop.sum()))] = False
        parts = [self._latent_draws(mdata, masks)]
        if (self.modality_latents is not False) if fit else self.modality_latents_:
            for j in range(n_mod):
                alone = np.zeros_like(masks)
                alone[..., j] = masks[..., j]
                parts.append(self._latent_draws(mdata, alone))
        cov = self._covariate_values(mdata)
        if fit:
            self.covariate_mean_ = np.nan_to_num(np.nanmean(cov, 0)) if cov.shape[1] else np.zeros(0)
            filled = np.where(np.isnan(cov), self.covariate_mean_, cov)
            sd = filled.std(0)
            self.covariate_scale_ = np.where(sd > 1e-12, sd, 1.0)
            self.presence_columns_ = [j for j in range(n_mod) if len(np.unique(masks[..., j])) > 1]
        filled = np.where(np.isnan(cov), self.covariate_mean_, cov)
        parts.append(np.broadcast_to((filled - self.covariate_mean_) / self.covariate_scale_, (s, *cov.shape)))
        parts.append(masks[..., self.presence_columns_] - 0.5)  # +-1/2: either state adds the same variance
        return np.concatenate(parts, axis=-1)

    def _latent_draws(self, mdata: Any, masks: np.ndarray) -> np.ndarray:
        """Latent draws ``(S, n_obs, n_latent)``, draw ``s`` of observation ``i`` given the views ``masks[s, i]``."""
        s, n_obs, n_mod = masks.shape
        patterns, inverse = np.unique(masks.reshape(-1, n_mod), axis=0, return_inverse=True)
        inverse = inverse.reshape(s, n_obs)
        latent = np.empty((s, n_obs, self.model.module.n_latent))
        for p, pattern in enumerate(patterns):
            hit = inverse == p
            rows = np.flatnonzero(hit.any(0))
            draws = self.model.sample_latent(mdata, mask=np.broadcast_to(pattern, (n_obs, n_mod)), n_samples=s)
            latent[:, rows] = np.where(hit[:, rows, None], draws[:, rows], latent[:, rows])
        return latent

    # ---------------------------------------------------------------- API
    def fit(self, mdata: Any, y: Any) -> LatentHead:
        """Fit the head on latent draws (with modality dropout), covariates and presence of ``mdata``.

        Parameters
        ----------
        mdata
            Training observations, registered like the model's data.
        y
            Targets as for the head's ``fit``: labels, or a survival structured array, in the
            order of ``mdata.obs_names``. Take training subsets with
            :func:`mdlprob.data.subset` (``mdata[rows].copy()`` with mudata's default options
            reorders the observations when the first modality lacks some, and ``y[rows]``
            would no longer match them).

        Returns
        -------
        The fitted estimator.
        """
        self._check_params()
        logger.info("Drawing %d latent samples per observation for the head.", self.n_samples)
        X = self._features(mdata, fit=True)
        k = self.model.module.n_latent
        names, groups = [f"z{d + 1}" for d in range(k)], ["latent"] * k
        if self.modality_latents is not False:
            for mod in self.model.modalities:
                names += [f"z{d + 1}|{mod}" for d in range(k)]
                groups += [f"latent|{mod}"] * k
        names += list(self.covariates or []) + [f"has_{self.model.modalities[j]}" for j in self.presence_columns_]
        groups += ["covariate"] * len(self.covariates or []) + ["presence"] * len(self.presence_columns_)
        names, groups = np.asarray(names), np.asarray(groups)
        self.modality_latents_ = self.modality_latents is True
        if self.modality_latents == "auto":
            logger.info("Choosing whether the head also gets each view's own latent (3-fold cross-validation).")
            self.modality_latents_ = self._select_modality_latents(X, y, groups)
        keep = np.ones(len(names), dtype=bool) if self.modality_latents_ else ~np.char.startswith(groups, "latent|")
        self.feature_names_, self.feature_groups_ = list(names[keep]), groups[keep]
        logger.info("Fitting %s on %d inputs.", type(self.head).__name__, int(keep.sum()))
        self.head_ = clone(self.head).fit(X[..., keep], y, feature_groups=self.feature_groups_)
        return self

    def _select_modality_latents(self, X: np.ndarray, y: Any, groups: np.ndarray) -> bool:
        """Whether the per-modality latent blocks raise the head's 3-fold cross-validated score.

        Both feature sets are scored on the same stratified folds with the head's own
        criterion (held-out log-likelihood for classifiers, Harrell's C for survival heads),
        at its empirical-Bayes prior when the head is set to ``"auto"`` (cheaper than its
        full cross-validated one). Scores land in ``selection_scores_``.
        """
        from sklearn.model_selection import StratifiedKFold

        probe = clone(self.head)
        if isinstance(probe.prior_scale, str) and probe.prior_scale == "auto":
            probe.set_params(prior_scale="eb")
        y_arr = np.asarray(y)
        strata = probe._cv_strata(y_arr)
        folds = min(3, int(np.bincount(np.unique(strata, return_inverse=True)[1].ravel()).min()))
        if folds < 2:
            return False
        base = ~np.char.startswith(groups, "latent|")
        scores = {False: 0.0, True: 0.0}
        cv = StratifiedKFold(folds, shuffle=True, random_state=np.random.default_rng(self.random_state).integers(2**31))
        for train, test in cv.split(np.zeros(len(y_arr)), strata):
            for with_blocks, cols in ((False, base), (True, np.ones_like(base))):
                head = clone(probe).fit(X[:, train][..., cols], y_arr[train], feature_groups=groups[cols])
                scores[with_blocks] += head._cv_score(X[:, test][..., cols], y_arr[test]) / folds
        self.selection_scores_ = scores
        return scores[True] > scores[False]

    def transform(self, mdata: Any, *, given: Sequence[str] | None = None) -> np.ndarray:
        """The head's inputs for ``mdata``: ``(n_samples, n_obs, n_features)`` (no dropout).

        ``given``: the modalities the latent posterior may condition on (default every one an
        observation has; an empty list gives the prior); the presence inputs then say which of
        them it used, as for an observation that lacks the others. Covariates are read as before.
        """
        check_is_fitted(self, "head_")
        return self._features(mdata, fit=False, given=given)

    def _delegate(self, name: str):
        check_is_fitted(self, "head_")
        method = getattr(self.head_, name, None)
        if method is None:
            msg = f"{type(self.head_).__name__} has no {name}()."
            raise AttributeError(msg)
        return method

    def _by_chunks(self, mdata: Any, compute) -> Any:
        """``compute(part)`` over consecutive chunks of observations, results concatenated.

        Predictions stream: a chunk's draws ``(n_samples, chunk, n_features)`` hold about
        ``DRAW_BUDGET`` values, so memory does not grow with the number of observations.
        """
        from ..base._base_model import DRAW_BUDGET

        width = len(self.feature_names_) + self.model.module.n_latent * (1 + len(self.model.modalities))
        size = max(1, DRAW_BUDGET // (int(self.n_samples) * width))
        n_obs = mdata.n_obs
        if n_obs <= size:
            return compute(mdata)
        from ..data import subset

        parts = [compute(subset(mdata, np.arange(start, min(start + size, n_obs)))) for start in range(0, n_obs, size)]
        if isinstance(parts[0], tuple):
            return tuple(np.concatenate(p) for p in zip(*parts, strict=True))
        return np.concatenate(parts)

    def _point_and_interval(self, name: str, mdata: Any, return_interval: bool, *args: Any,
                            given: Sequence[str] | None = None) -> Any:
        """The head's ``name`` at the posterior-mean latent, with intervals over latent and weight draws."""
        method = self._delegate(name)

        def compute(part: Any) -> Any:
            X = self.transform(part, given=given)
            point = method(X.mean(0, keepdims=True), *args)
            if not return_interval:
                return point
            _, lower, upper = method(X, *args, return_interval=True)
            return point, np.minimum(lower, point), np.maximum(upper, point)

        return self._by_chunks(mdata, compute)

    def predict(self, mdata: Any, *, given: Sequence[str] | None = None) -> np.ndarray:
        """The head's ``predict`` (class labels, or risk scores for survival heads) at the posterior-mean latent.

        ``given``: the modalities the posterior may condition on (see :meth:`transform`).
        """
        method = self._delegate("predict")
        return self._by_chunks(mdata, lambda part: method(self.transform(part, given=given).mean(0, keepdims=True)))

    def predict_proba(self, mdata: Any, return_interval: bool = False, *, given: Sequence[str] | None = None) -> Any:
        """Class probabilities (classifier heads), optionally with their ``level`` intervals; ``given`` as in :meth:`predict`."""
        return self._point_and_interval("predict_proba", mdata, return_interval, given=given)

    def predict_risk(self, mdata: Any, return_interval: bool = False, *, given: Sequence[str] | None = None) -> Any:
        """Risk scores (survival heads; higher = earlier event), optionally with intervals; ``given`` as in :meth:`predict`."""
        return self._point_and_interval("predict_risk", mdata, return_interval, given=given)

    def predict_survival_function(self, mdata: Any, times: Any = None, return_interval: bool = False) -> Any:
        """Survival probabilities ``(n_obs, n_times)`` (survival heads), optionally with bands.

        Without ``times``: one scikit-survival ``StepFunction`` per observation (as ``sksurv``).
        """
        return self._point_and_interval("predict_survival_function", mdata, return_interval, times)

    def score(self, mdata: Any, y: Any) -> float:
        """The head's score at the posterior-mean latent: accuracy for classifiers, Harrell's C for survival heads."""
        return self._delegate("score")(self.transform(mdata).mean(0, keepdims=True), y)

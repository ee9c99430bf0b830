"""Prediction heads on latent representations, as scikit-learn estimators.

:class:`ClassifierHead`
    Bayesian softmax classifier (logistic regression or a one-hidden-layer MLP).
:class:`CoxPHHead`
    Bayesian Cox proportional-hazards model for right-censored survival.
:class:`LogisticHazardHead`
    Bayesian discrete-time logistic-hazard survival model with time-varying (non-PH) coefficients.
:class:`WeibullAFTHead`
    Bayesian Weibull accelerated-failure-time survival model.
:class:`LatentHead`
    Any of these on a trained model's latent posterior, with covariates and presence as
    inputs and modality dropout at fit, so that observations lacking views are predicted as
    well as complete ones.

All accept ``X`` as a 2-D array ``(n_obs, n_features)`` or as latent posterior samples
``(S, n_obs, n_features)`` (``model.get_latent(mdata, n_samples=S)``), so that the latent
uncertainty propagates to the predictive intervals; ``fit_from_model`` does that in one call.
:func:`save_head` and :func:`load_head` write and read a fitted head (JSON and ``.npz``, no pickle).
"""

from __future__ import annotations

from ._classifier import ClassifierHead
from ._coxph import CoxPHHead
from ._latent import LatentHead
from ._logistic_hazard import LogisticHazardHead
from ._persist import load_head, read_head_metadata, save_head
from ._weibull_aft import WeibullAFTHead

__all__ = ["ClassifierHead", "CoxPHHead", "LatentHead", "LogisticHazardHead", "WeibullAFTHead", "load_head", "read_head_metadata",
           "save_head"]

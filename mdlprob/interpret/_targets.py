"""What a view's value is measured on: the latent posterior's entropy and, with a head, its prediction."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mudata as md
import numpy as np
import torch

from ..heads import LatentHead


@dataclass
class Summary:
    """Per-observation state of the posterior (and of a head's prediction) given the views an observation has.

    Attributes
    ----------
    entropy
        ``(n_obs,)`` entropy in nats of the Gaussian with the latent posterior's mean and
        (diagonal) variance: :math:`\\tfrac12 \\log\\det(2\\pi e\\,\\Sigma)`.
    width
        ``(n_obs,)`` width of the head's predictive interval: of the risk (survival heads),
        or averaged over classes of the class probabilities (classifiers); None without a head.
    score
        ``(n_obs,)`` the risk, or ``(n_obs, n_classes)`` the class probabilities; None without a head.
    """

    entropy: np.ndarray
    width: np.ndarray | None = None
    score: np.ndarray | None = None

    def decision(self, threshold: float | None) -> np.ndarray | None:
        """The decision a prediction leads to: the predicted class, or the risk group (risk above ``threshold``)."""
        if self.score is None:
            return None
        return self.score.argmax(1) if self.score.ndim == 2 else (self.score > threshold).astype(np.int64)


def check_model(model: Any) -> None:
    """``model`` is a trained mdlprob model with one latent posterior; else a clear error."""
    from ..base import BaseModel

    if not isinstance(model, BaseModel):
        fix = (" An Ensemble has no single latent space: pass one of its members (ensemble.members_[0])."
               if hasattr(model, "members_") else "")
        msg = (f"Expected model to be a trained mdlprob model with a latent posterior (PoEVAE, MoPoEVAE, MoEVAE, "
               f"FactorModel, GraphPoEVAE), got {type(model).__name__}.{fix}")
        raise TypeError(msg)
    model._require_trained()


def check_target(model: Any, target: Any) -> Any:
    """``"latent"`` or a fitted head on ``model``'s latent; anything else raises naming the options."""
    if isinstance(target, str):
        if target != "latent":
            msg = f"Expected target to be 'latent' or a fitted head (a LatentHead on the model), got {target!r}."
            raise ValueError(msg)
        return target
    head = target.head_ if isinstance(target, LatentHead) and hasattr(target, "head_") else target
    if isinstance(target, LatentHead):
        if not hasattr(target, "head_"):
            msg = "Expected target to be a fitted LatentHead; call target.fit(mdata, y) first."
            raise ValueError(msg)
        if target.model is not model:
            msg = "The LatentHead given as target was fitted on another model; pass the model it reads latents from."
            raise ValueError(msg)
    elif getattr(head, "n_features_in_", None) != model.module.n_latent:
        msg = (f"Expected target to be 'latent', a fitted LatentHead, or a head fitted on the model's latent "
               f"({model.module.n_latent} features, e.g. head.fit(model.get_latent(mdata, n_samples=20), y)), "
               f"got {type(target).__name__}.")
        raise ValueError(msg)
    if not (hasattr(head, "predict_proba") or hasattr(head, "predict_risk")):
        msg = f"Expected a classifier or survival head as target, got {type(head).__name__}."
        raise TypeError(msg)
    return target


def latent_entropy(model: Any, mdata: md.MuData, *, batch_size: int = 1024) -> np.ndarray:
    r"""Entropy (nats) of each observation's latent posterior given every view it has, ``(n_obs,)``.

    For a Gaussian :math:`q(z \mid x_S) = \mathcal{N}(\mu, \operatorname{diag}\sigma^2)`,
    :math:`H = \sum_d \log\sigma_d + \tfrac{d}{2}\log(2\pi e)`. Mixture posteriors (MoE,
    MoPoE) are summarised by their moment-matched Gaussian, whose entropy bounds theirs
    from above.
    """
    with torch.no_grad():
        _, sd, _ = model._posterior(mdata, None, 0, batch_size)
    sd = np.asarray(sd, dtype=np.float64)
    return np.log(np.clip(sd, 1e-30, None)).sum(1) + 0.5 * sd.shape[1] * math.log(2 * math.pi * math.e)


def summarise(model: Any, mdata: md.MuData, target: Any, *, n_samples: int) -> Summary:
    """The :class:`Summary` of every observation of ``mdata`` for ``target`` (see :func:`check_target`)."""
    summary = Summary(latent_entropy(model, mdata))
    if isinstance(target, str):
        return summary
    if isinstance(target, LatentHead):
        head = target.head_
        predict = (target.predict_proba if hasattr(head, "predict_proba") else target.predict_risk)
        point, lower, upper = predict(mdata, return_interval=True)
    else:
        X = model.sample_latent(mdata, n_samples=n_samples)
        predict = target.predict_proba if hasattr(target, "predict_proba") else target.predict_risk
        point, lower, upper = predict(X, return_interval=True)
    width = np.asarray(upper, dtype=np.float64) - np.asarray(lower, dtype=np.float64)
    summary.width = width.mean(1) if width.ndim == 2 else width
    summary.score = np.asarray(point, dtype=np.float64)
    return summary

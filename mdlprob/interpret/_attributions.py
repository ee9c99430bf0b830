"""Feature attributions through the model (encoder, posterior, decoder or head) by Captum's integrated gradients."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import mudata as md
import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..base._validate import check_int
from ..heads import ClassifierHead, CoxPHHead, LatentHead
from ._targets import check_model


def _require_captum():
    try:
        from captum.attr import IntegratedGradients
    except ImportError:  # pragma: no cover - exercised only without the extra
        msg = "feature_attributions needs Captum: pip install 'mdlprob[interpret]' (or pip install captum)."
        raise ImportError(msg) from None
    return IntegratedGradients


def _head_output(model: Any, mdata: md.MuData, target: Any, class_: Any, rows: np.ndarray) -> Callable:
    """``f(z, presence) -> (batch,)``: the head's class probability or linear risk, averaged over its weight draws."""
    extra = None
    head = target
    if isinstance(target, LatentHead):
        if getattr(target, "modality_latents_", None) is not False:
            msg = "feature_attributions supports a LatentHead fitted with modality_latents=False."
            raise ValueError(msg)
        head = target.head_
        cov = target._covariate_values(mdata)[rows]
        cov = (np.where(np.isnan(cov), target.covariate_mean_, cov) - target.covariate_mean_) / target.covariate_scale_
        extra = (torch.as_tensor(cov, dtype=torch.float32), list(target.presence_columns_))
    elif getattr(head, "n_features_in_", None) != model.module.n_latent:
        msg = (f"Expected target to be a modality, a LatentHead, or a head fitted on the model's latent "
               f"({model.module.n_latent} features), got {type(target).__name__}.")
        raise ValueError(msg)
    if isinstance(head, ClassifierHead):
        classes = [str(c) for c in head.classes_]
        if class_ is None or str(class_) not in classes:
            msg = f"Expected class_ to name one of the head's classes {classes}, got {class_!r}."
            raise ValueError(msg)
        k = classes.index(str(class_))
        params = {n: torch.as_tensor(v, dtype=torch.float32) for n, v in head.posterior_samples_.items()}

        def output(X: Tensor) -> Tensor:
            return torch.softmax(head._logits(X.unsqueeze(0), params), -1)[..., k].mean(0)
    elif isinstance(head, CoxPHHead):
        beta = torch.as_tensor(head.coef_samples_.mean(0), dtype=torch.float32)

        def output(X: Tensor) -> Tensor:
            return X @ beta
    else:
        msg = f"feature_attributions supports ClassifierHead and CoxPHHead, got {type(head).__name__}."
        raise TypeError(msg)

    def forward(z: Tensor, presence: Tensor, rows_in_batch: Tensor) -> Tensor:
        if extra is None:
            return output(z)
        cov, cols = extra
        X = torch.cat([z, cov.to(z.device)[rows_in_batch], presence[:, cols].to(z.dtype) - 0.5], dim=-1)
        return output(X)

    return forward


def _imputation_output(model: Any, modality: str, features: Sequence[str] | None) -> Callable:
    """``f(z, ...) -> (batch,)``: the decoded mean of ``modality`` (``log1p`` of it for counts) averaged over ``features``."""
    if modality not in model.modalities:
        msg = f"Expected target to be a fitted head or one of the model's modalities {model.modalities}, got {modality!r}."
        raise ValueError(msg)
    names = model.var_names_[modality]
    cols = list(range(len(names))) if features is None else [names.index(f) for f in features if f in names]
    if features is not None and len(cols) != len(features):
        missing = [f for f in features if f not in names]
        msg = f"features {missing[:5]} are not features of {modality!r}."
        raise KeyError(msg)
    module = model.module
    lik = module.likelihoods[modality]
    library = None
    if modality in module.library_modalities:
        library = module.library_center[module.library_modalities.index(modality)]

    def forward(z: Tensor, presence: Tensor, rows_in_batch: Tensor) -> Tensor:
        params = module.decode(modality, z, None, log_library=library) if library is not None else \
            module.decode(modality, z)
        mean = lik.mean(params)[:, cols]
        # counts on the log scale: with a modelled depth the decoded means share a fixed total
        return (torch.log1p(mean) if lik.is_count else mean).mean(-1)

    return forward


def feature_attributions(model: Any, mdata: md.MuData, source: str, *, target: Any, features: Sequence[str] | None = None,
                         class_: Any = None, n_samples: int = 8, n_steps: int = 32,
                         baseline: str = "mean") -> pd.DataFrame:
    r"""Integrated-gradients attribution of a prediction to each feature of view ``source`` (Captum).

    The attributed function maps the values :math:`x_s` of view ``source`` (the other views
    fixed) through the encoders to the posterior :math:`q(z \mid x)` (its Gaussian, or
    moment-matched Gaussian for mixtures), a reparameterised draw
    :math:`z = \mu(x) + \sigma(x)\,\varepsilon`, and then either the decoder of another view
    (``target`` a modality name: the imputed mean, on the :math:`\log(1 + \cdot)` scale for
    counts, averaged over ``features``) or a head
    (``target`` a fitted head: the probability of ``class_``, or the Cox linear risk, each
    averaged over the head's weight draws). Attributions are Captum's
    :class:`~captum.attr.IntegratedGradients` from ``baseline`` to :math:`x_s`, averaged over
    ``n_samples`` fixed draws of :math:`\varepsilon`: the latent uncertainty is integrated,
    not ignored. They sum, per observation and draw, to :math:`f(x_s) - f(\text{baseline})`
    up to the integration error (``attrs["delta"]``).

    Parameters
    ----------
    source
        The view whose features are attributed; only observations that have it are returned.
    target
        A modality name (cross-modal imputation), a :class:`~mdlprob.heads.LatentHead`
        (fitted with ``modality_latents=False``; its covariates are held fixed), or a
        :class:`~mdlprob.heads.ClassifierHead` / :class:`~mdlprob.heads.CoxPHHead` fitted on
        the model's latent draws.
    features
        Imputation target: the features of ``target`` whose mean decoded value is
        attributed (default all; counts on the log scale, since with a modelled depth the
        decoded means of all features share one total).
    class_
        Classifier heads: the class whose probability is attributed.
    n_samples
        Posterior draws :math:`\varepsilon` averaged over.
    n_steps
        Integration steps of each integrated-gradients path.
    baseline
        ``"mean"`` (each feature's mean over the returned observations: what this
        observation's values add to an average one's) or ``"zeros"``. With a modelled
        sequencing depth the encoder sees counts per total, which does not change along the
        path from 0 (only at its very start): prefer ``"mean"`` for such views.

    Returns
    -------
    DataFrame ``(observations with source, source features)`` of attributions;
    ``attrs["delta"]``: the mean absolute convergence error of the integral.
    """
    integrated_gradients = _require_captum()
    check_model(model)
    check_int("n_samples", n_samples, minimum=1)
    check_int("n_steps", n_steps, minimum=2)
    if source not in model.modalities:
        msg = f"Expected source to be one of the model's modalities {model.modalities}, got {source!r}."
        raise ValueError(msg)
    if baseline not in ("zeros", "mean"):
        msg = f"Expected baseline to be 'zeros' or 'mean', got {baseline!r}."
        raise ValueError(msg)
    module = model.module
    tensors = model.tensors(mdata)
    j = model.modalities.index(source)
    rows = np.flatnonzero(tensors.presence[:, j].cpu().numpy())
    if isinstance(target, str):
        output = _imputation_output(model, target, features)
    else:
        output = _head_output(model, mdata, target, class_, rows)
    batch = tensors.batch(torch.as_tensor(rows, dtype=torch.long), model.device)
    others = [m for m in model.modalities if m != source]
    with_mask = [m for m in model.modalities if batch["observed"][m] is not None]

    def forward(x_source: Tensor, presence: Tensor, eps: Tensor, index: Tensor, *rest: Tensor) -> Tensor:
        xs = dict(zip(others, rest[: len(others)], strict=True))
        xs[source] = x_source
        observed = {m: None for m in model.modalities}
        observed.update(zip(with_mask, rest[len(others):], strict=True))
        mean, var = module.posterior_moments({"x": xs, "observed": observed, "presence": presence}, presence)
        return output(mean + var.sqrt() * eps, presence, index)

    x = batch["x"][source]
    base = torch.zeros_like(x) if baseline == "zeros" else x.mean(0, keepdim=True).expand_as(x).contiguous()
    extra = (batch["presence"], None, torch.arange(len(rows), device=x.device),
             *[batch["x"][m] for m in others], *[batch["observed"][m] for m in with_mask])
    ig = integrated_gradients(forward)
    total = torch.zeros_like(x)
    deltas = []
    module.eval()
    for _ in range(n_samples):
        eps = torch.randn(len(rows), module.n_latent, device=x.device)
        args = (extra[0], eps, *extra[2:])
        attr, delta = ig.attribute(x, baselines=base, additional_forward_args=args, n_steps=n_steps,
                                   return_convergence_delta=True)
        total += attr.detach()
        deltas.append(delta.detach().abs().mean().item())
    out = pd.DataFrame((total / n_samples).cpu().numpy(), index=mdata.obs_names[rows].copy(),
                       columns=pd.Index(model.var_names_[source]))
    out.attrs.update({"delta": float(np.mean(deltas)), "source": source, "n_samples": n_samples, "n_steps": n_steps})
    return out

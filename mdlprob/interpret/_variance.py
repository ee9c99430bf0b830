"""Variance of each modality explained by each latent dimension, through any model's decoder."""

from __future__ import annotations

from typing import Any

import mudata as md
import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ._targets import check_model


def _scale(lik: Any, x: Tensor, mean: Tensor, log_depth: Tensor | None, centre: float) -> tuple[Tensor, Tensor]:
    """Data and decoded means on the comparison scale: ``log1p`` for counts (depth-normalised), else as they are."""
    if not lik.is_count:
        return x, mean
    if log_depth is not None:  # counts per the cohort's typical depth: depth is not the latent's doing
        x = x * torch.exp(centre - log_depth)[:, None]
    return torch.log1p(x), torch.log1p(mean)


class _Sums:
    """Per-feature sums over observed entries for a centred residual sum of squares."""

    def __init__(self, n_vars: int) -> None:
        self.n, self.s, self.ss = (torch.zeros(n_vars, dtype=torch.float64) for _ in range(3))

    def add(self, a: Tensor, obs: Tensor) -> None:
        a, w = a.double() * obs, obs.double()
        self.n += w.sum(0)
        self.s += a.sum(0)
        self.ss += (a**2).sum(0)

    def centred(self) -> float:
        n = self.n.clamp_min(1.0)
        return float((self.ss - self.s**2 / n).sum())


@torch.no_grad()
def variance_explained(model: Any, mdata: md.MuData, *, total: bool = False,
                       batch_size: int = 512) -> pd.DataFrame | pd.Series:
    r"""Fraction of variance :math:`R^2_{mk}` of each modality explained by each latent dimension, for any model.

    The decoder analogue of :meth:`mdlprob.models.FactorModel.variance_explained`. With
    :math:`\bar z` the cohort's mean posterior mean (given every view an observation has)
    and :math:`z^{(k)}_i` equal to :math:`\bar z` except in dimension :math:`k`, where it
    takes observation :math:`i`'s posterior mean, the decoded mean
    :math:`\hat y^{(k)}_{i} = g(\mathbb{E}[x_m \mid z^{(k)}_i])` varies with dimension
    :math:`k` alone, and

    .. math::
        R^2_{mk} = 1 - \frac{\sum_{i,g} (\tilde y_{img} - \tilde{\hat y}^{(k)}_{img})^2}
        {\sum_{i,g} \tilde y_{img}^2},

    tildes centring each feature over the observations that have it, sums over its
    non-missing entries. :math:`g` is the identity for continuous and Bernoulli features
    and :math:`\log(1 + \cdot)` for counts, whose depth (for likelihoods that model it) is
    set to the cohort's mean log depth, the data rescaled to it. Categorical columns of a
    mixed table are left out. For a linear decoder of Gaussian features this is exactly the
    FactorModel's :math:`R^2_{mk}`; through a nonlinear decoder the dimensions interact, so
    the :math:`R^2_{mk}` need not add up to the joint :math:`R^2_m` (``total=True``: all
    dimensions at each observation's posterior mean). :math:`R^2_{mk}` is negative for a
    dimension that predicts worse than the mean. Nothing is written to ``mdata``.

    Returns
    -------
    DataFrame ``(n_modalities, n_latent)`` indexed by modality, columns ``z1..``; with
    ``total`` a Series indexed by modality. A modality no observation has gives NaN.
    """
    check_model(model)
    module = model.module
    tensors = model.tensors(mdata)
    z_all = torch.as_tensor(model._posterior(mdata, None, 0, 1024)[0])
    k_dims = z_all.shape[1]
    per_dim = np.full((len(model.modalities), k_dims), np.nan)
    joint = np.full(len(model.modalities), np.nan)
    module.eval()
    for j, mod in enumerate(model.modalities):
        rows = torch.nonzero(tensors.presence[:, j]).ravel()
        if not len(rows):
            continue
        r2 = _modality_r2(model, tensors, mod, rows, z_all, batch_size)
        per_dim[j], joint[j] = r2[:-1], r2[-1]
    if total:
        return pd.Series(joint, index=pd.Index(model.modalities), name="r2")
    return pd.DataFrame(per_dim, index=pd.Index(model.modalities), columns=[f"z{k + 1}" for k in range(k_dims)])


def _modality_r2(model: Any, tensors: Any, mod: str, rows: Tensor, z_all: Tensor, batch_size: int) -> np.ndarray:
    """``R^2`` of ``mod`` for each single dimension, then for all of them (``(n_latent + 1,)``)."""
    module = model.module
    lik = module.likelihoods[mod]
    device = module.device
    z_bar = z_all.mean(0)
    cat = lik.categorical_columns
    keep = torch.ones(lik.n_vars, dtype=torch.bool)
    if cat is not None and len(cat):
        keep[cat.cpu()] = False
    library = mod in module.library_modalities
    centre = float(lik.log_library(tensors.x[mod][rows]).mean()) if library else 0.0
    k_dims = z_all.shape[1]
    total, resid = _Sums(int(keep.sum())), [_Sums(int(keep.sum())) for _ in range(k_dims + 1)]
    for idx in torch.split(rows, batch_size):
        x = tensors.x[mod][idx]
        observed = tensors.observed[mod]
        obs = (torch.ones_like(x, dtype=torch.bool) if observed is None else observed[idx])[:, keep]
        log_depth = lik.log_library(x) if library else None
        z = z_all[idx]
        inputs = [z_bar.expand_as(z).clone() for _ in range(k_dims)]
        for k in range(k_dims):
            inputs[k][:, k] = z[:, k]
        inputs.append(z)
        stacked = torch.stack(inputs).to(device)  # (k_dims + 1, batch, n_latent)
        kwargs = {"log_library": torch.tensor(centre, device=device)} if library else {}
        means = lik.mean(module.decode(mod, stacked, None, **kwargs)).cpu()
        for k in range(k_dims + 1):
            y, y_hat = _scale(lik, x, means[k], log_depth, centre)
            y, y_hat = y[:, keep], y_hat[:, keep]
            if k == 0:
                total.add(y, obs)
            resid[k].add(y - y_hat, obs)
    ss_tot = total.centred()
    return np.array([1.0 - r.centred() / ss_tot if ss_tot > 0 else np.nan for r in resid])

"""Aggregation of Gaussian experts into one posterior."""

from __future__ import annotations

import torch
from torch import Tensor


def product_of_experts(mu: Tensor, logvar: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    r"""Product of a standard-normal prior expert and the Gaussian experts selected by ``mask``.

    .. math::
        \Lambda = 1 + \sum_m w_m \Lambda_m, \qquad
        \mu = \Lambda^{-1} \sum_m w_m \Lambda_m \mu_m, \qquad \Lambda_m = e^{-\text{logvar}_m}

    Parameters
    ----------
    mu, logvar
        ``(n_experts, batch, n_latent)``.
    mask
        ``(batch, n_experts)``, true where an expert takes part. Unselected experts have
        exactly zero weight, so their inputs (e.g. an absent modality) cannot move the result.

    Returns
    -------
    Posterior mean and variance, each ``(batch, n_latent)``.
    """
    sel = mask.t().unsqueeze(-1)
    zero = mu.new_zeros(())
    prec = torch.where(sel, torch.exp(-logvar), zero)
    total = 1.0 + prec.sum(0)
    mean = torch.where(sel, prec * mu, zero).sum(0) / total
    return mean, 1.0 / total

"""Posteriors that are mixtures of diagonal Gaussians (MoE, MoPoE)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ._base_module import MultimodalVAEModule


def mixture_log_prob(z: Tensor, means: Tensor, variances: Tensor, weights: Tensor) -> Tensor:
    """Log-density of ``z`` ``(..., batch, n_latent)`` under the diagonal Gaussian mixture.

    ``means``/``variances`` are ``(n_components, batch, n_latent)`` and ``weights``
    ``(batch, n_components)``; zero-weight components get exactly no say. Returns ``(..., batch)``.
    """
    comp = torch.distributions.Normal(means, variances.sqrt()).log_prob(z.unsqueeze(-3)).sum(-1)
    w = weights.t()
    log_w = torch.where(w > 0, comp + w.log(), comp.new_full((), -math.inf))
    return torch.logsumexp(log_w, dim=-2)


class MixturePosteriorModule(MultimodalVAEModule):
    """A module whose q(z | x) is a weighted mixture of diagonal Gaussians.

    Subclasses implement :meth:`_components` (component means, variances and per-observation
    weights); moments, sampling and the log-density follow here.
    """

    def _components(self, batch: Mapping[str, Any], use: Tensor) -> tuple[Tensor, Tensor, Tensor]:  # pragma: no cover
        """Means and variances ``(n_components, batch, n_latent)`` and weights ``(batch, n_components)``."""
        raise NotImplementedError

    def posterior(self, batch: Mapping[str, Any], use: Tensor) -> tuple[Tensor, Tensor]:
        return self.posterior_moments(batch, use)

    def posterior_moments(self, batch: Mapping[str, Any], use: Tensor) -> tuple[Tensor, Tensor]:
        """Moment-matched mean and variance of the mixture: law of total variance."""
        means, variances, w = self._components(batch, use)
        w = w.t().unsqueeze(-1)
        mean = (w * means).sum(0)
        return mean, (w * (variances + (means - mean) ** 2)).sum(0)

    def sample_posterior(self, batch: Mapping[str, Any], use: Tensor, n_samples: int) -> Tensor:
        """Per sample and observation, a component drawn from the weights, then z ~ that component."""
        means, variances, w = self._components(batch, use)
        pick = torch.multinomial(w, n_samples, replacement=True).t()  # (n_samples, batch)
        rows = torch.arange(w.shape[0], device=w.device)
        mean, var = means[pick, rows], variances[pick, rows]
        return mean + var.sqrt() * torch.randn_like(mean)

    def posterior_log_prob(self, z: Tensor, batch: Mapping[str, Any], use: Tensor) -> Tensor:
        return mixture_log_prob(z, *self._components(batch, use))

"""Negative-binomial likelihood for overdispersed counts (RNA, ADT)."""

from __future__ import annotations

import pyro.distributions as pdist
import torch
from torch import Tensor, nn

from ._base import register_likelihood
from ._poisson import Poisson


@register_likelihood
class NegativeBinomial(Poisson):
    r"""Negative binomial with a decoded mean and a learned per-feature inverse dispersion.

    .. math::
        x_{g} \mid z \sim \mathrm{NB}(\mu_g(z), \theta_g), \qquad
        \mathbb{E}[x_g] = \mu_g,\ \mathrm{Var}[x_g] = \mu_g + \mu_g^2 / \theta_g .

    The encoder sees standardised :math:`\log(1 + x)` (as for :class:`Poisson`, whose mean
    head it shares).
    """

    name = "nb"

    def __init__(self, n_vars: int, n_hidden: int, **kwargs) -> None:
        super().__init__(n_vars, n_hidden, **kwargs)
        self.log_theta = nn.Parameter(torch.full((n_vars,), 1.0))

    def forward(self, h: Tensor, log_library: Tensor | None = None) -> dict[str, Tensor]:
        return {**super().forward(h, log_library), **self.noise()}

    def noise(self) -> dict[str, Tensor]:
        return {"log_theta": self.log_theta}

    def log_prob(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        return nb_log_prob(x, params["log_mu"], params["log_theta"])

    def pyro_dist(self, params: dict[str, Tensor]):
        log_mu, log_theta = params["log_mu"], params["log_theta"].expand_as(params["log_mu"])
        return pdist.NegativeBinomial(total_count=log_theta.exp(), logits=log_mu - log_theta)

    def sample(self, params: dict[str, Tensor]) -> Tensor:
        mu = params["log_mu"].exp()
        theta = params["log_theta"].exp().expand_as(mu)
        rate = torch.distributions.Gamma(theta, theta / mu.clamp_min(1e-8)).sample()
        return torch.poisson(rate)


def nb_log_prob(x: Tensor, log_mu: Tensor, log_theta: Tensor) -> Tensor:
    """Elementwise NB log-density parameterised by log-mean and log inverse dispersion."""
    theta = log_theta.exp()
    log_theta_mu = torch.logaddexp(log_theta, log_mu)
    return (
        torch.lgamma(x + theta)
        - torch.lgamma(theta)
        - torch.lgamma(x + 1.0)
        + theta * (log_theta - log_theta_mu)
        + x * (log_mu - log_theta_mu)
    )

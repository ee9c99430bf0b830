"""Zero-inflated negative-binomial likelihood for sparse counts with excess zeros."""

from __future__ import annotations

import pyro.distributions as pdist
import torch
import torch.nn.functional as F
from torch import Tensor

from ._base import register_likelihood
from ._negative_binomial import NegativeBinomial, nb_log_prob


@register_likelihood
class ZeroInflatedNegativeBinomial(NegativeBinomial):
    r"""NB mixed with a point mass at zero whose weight is decoded per observation and feature.

    .. math::
        x_g \mid z \sim \pi_g(z)\,\delta_0 + (1 - \pi_g(z))\,\mathrm{NB}(\mu_g(z), \theta_g).
    """

    name = "zinb"

    def __init__(self, n_vars: int, n_hidden: int, **kwargs) -> None:
        super().__init__(n_vars, n_hidden, **kwargs)
        self.gate_head = self.make_head()
        with torch.no_grad():
            self.gate_head.bias.fill_(-3.0)

    def forward(self, h: Tensor, log_library: Tensor | None = None) -> dict[str, Tensor]:
        params = super().forward(h, log_library)
        params["gate_logits"] = self.gate_head(h)
        return params

    def log_prob(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        nb = nb_log_prob(x, params["log_mu"], params["log_theta"])
        g = params["gate_logits"]
        log_pi, log_not_pi = F.logsigmoid(g), F.logsigmoid(-g)
        zero = torch.logaddexp(log_pi, log_not_pi + nb)
        return torch.where(x == 0, zero, log_not_pi + nb)

    def pyro_dist(self, params: dict[str, Tensor]):
        log_mu, log_theta = params["log_mu"], params["log_theta"].expand_as(params["log_mu"])
        return pdist.ZeroInflatedNegativeBinomial(
            total_count=log_theta.exp(), logits=log_mu - log_theta, gate_logits=params["gate_logits"]
        )

    def sample(self, params: dict[str, Tensor]) -> Tensor:
        counts = super().sample(params)
        zero = torch.bernoulli(torch.sigmoid(params["gate_logits"]))
        return counts * (1.0 - zero)

    def mean(self, params: dict[str, Tensor]) -> Tensor:
        return torch.sigmoid(-params["gate_logits"]) * params["log_mu"].exp()

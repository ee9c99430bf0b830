"""Gaussian likelihood for continuous features (normalised expression, embeddings)."""

from __future__ import annotations

import math

import pyro.distributions as pdist
import torch
from torch import Tensor, nn

from ._base import Likelihood, register_likelihood


@register_likelihood
class Gaussian(Likelihood):
    r"""Normal with a decoded mean and a learned per-feature scale, on the data's own scale.

    With training mean :math:`m_g` and sd :math:`s_g` of feature :math:`g`,

    .. math::
        x_g \mid z \sim \mathcal{N}\big(m_g + s_g f_g(z),\ (s_g \sigma_g)^2\big),

    so the network works on standardised values while the density is that of the raw data.
    """

    name = "gaussian"
    main_head = "loc_head"

    def __init__(self, n_vars: int, n_hidden: int, **kwargs) -> None:
        super().__init__(n_vars, n_hidden, **kwargs)
        self.loc_head = self.make_head()
        self.log_sigma = nn.Parameter(torch.full((n_vars,), math.log(0.5)))

    def forward(self, h: Tensor) -> dict[str, Tensor]:
        return {"loc": self.in_loc + self.in_scale * self.loc_head(h), **self.noise()}

    def noise(self) -> dict[str, Tensor]:
        return {"log_scale": self.log_sigma + self.in_scale.log()}

    def log_prob(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        return gaussian_log_prob(x, params["loc"], params["log_scale"])

    def pyro_dist(self, params: dict[str, Tensor]):
        loc = params["loc"]
        return pdist.Normal(loc, params["log_scale"].exp().expand_as(loc))

    def sample(self, params: dict[str, Tensor]) -> Tensor:
        loc = params["loc"]
        return loc + params["log_scale"].exp() * torch.randn_like(loc)

    def mean(self, params: dict[str, Tensor]) -> Tensor:
        return params["loc"]


_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def gaussian_log_prob(x: Tensor, loc: Tensor, log_scale: Tensor) -> Tensor:
    """Elementwise normal log-density."""
    return -0.5 * ((x - loc) * torch.exp(-log_scale)) ** 2 - log_scale - _HALF_LOG_2PI

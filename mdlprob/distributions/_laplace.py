"""Laplace likelihood for continuous features with heavy-tailed errors (intensities, scores)."""

from __future__ import annotations

import math

import pyro.distributions as pdist
import torch
from torch import Tensor, nn

from ._base import Likelihood, register_likelihood

_LOG_2 = math.log(2.0)


@register_likelihood
class Laplace(Likelihood):
    r"""Laplace with a decoded location and a learned per-feature scale, on the data's own scale.

    With training mean :math:`m_g` and sd :math:`s_g` of feature :math:`g`,

    .. math::
        x_g \mid z \sim \mathrm{Laplace}\big(m_g + s_g f_g(z),\ s_g b_g\big),

    with density :math:`\frac{1}{2\beta}e^{-|x-\mu|/\beta}`: the L1 counterpart of
    :class:`Gaussian`, whose median-seeking fit blurs edges of images less.
    """

    name = "laplace"
    main_head = "loc_head"

    def __init__(self, n_vars: int, n_hidden: int, **kwargs) -> None:
        super().__init__(n_vars, n_hidden, **kwargs)
        self.loc_head = self.make_head()
        self.log_b = nn.Parameter(torch.full((n_vars,), math.log(0.5)))

    def forward(self, h: Tensor) -> dict[str, Tensor]:
        return {"loc": self.in_loc + self.in_scale * self.loc_head(h), **self.noise()}

    def noise(self) -> dict[str, Tensor]:
        return {"log_scale": self.log_b + self.in_scale.log()}

    def log_prob(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        log_scale = params["log_scale"]
        return -(x - params["loc"]).abs() * torch.exp(-log_scale) - log_scale - _LOG_2

    def pyro_dist(self, params: dict[str, Tensor]):
        loc = params["loc"]
        return pdist.Laplace(loc, params["log_scale"].exp().expand_as(loc))

    def sample(self, params: dict[str, Tensor]) -> Tensor:
        return self.pyro_dist(params).sample()

    def mean(self, params: dict[str, Tensor]) -> Tensor:
        return params["loc"]

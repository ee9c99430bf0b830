"""Poisson likelihood for counts without overdispersion."""

from __future__ import annotations

import numpy as np
import pyro.distributions as pdist
import torch
from torch import Tensor

from ._base import Likelihood, nan_mean

#: Cap on decoded log-means, so that a wild early step cannot overflow ``exp``.
LOG_MU_MAX = 15.0


class Poisson(Likelihood):
    r"""Poisson counts with a decoded log-rate.

    .. math:: x_g \mid z \sim \mathrm{Poisson}(\mu_g(z)).
    """

    name = "poisson"
    main_head = "mu_head"
    is_count = True
    is_discrete = True

    def __init__(self, n_vars: int, n_hidden: int, **kwargs) -> None:
        super().__init__(n_vars, n_hidden, **kwargs)
        self.mu_head = self.make_head()

    def input_transform(self, x: Tensor) -> Tensor:
        return torch.log1p(x)

    def set_stats(self, x: np.ndarray) -> None:
        super().set_stats(x)
        with torch.no_grad():
            self.mu_head.bias.copy_(torch.as_tensor(np.log(nan_mean(x) + 1e-3), dtype=torch.float32))

    def forward(self, h: Tensor) -> dict[str, Tensor]:
        return {"log_mu": self.mu_head(h).clamp(max=LOG_MU_MAX)}

    def log_prob(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        log_mu = params["log_mu"]
        return x * log_mu - log_mu.exp() - torch.lgamma(x + 1.0)

    def pyro_dist(self, params: dict[str, Tensor]):
        return pdist.Poisson(params["log_mu"].exp())

    def sample(self, params: dict[str, Tensor]) -> Tensor:
        return torch.poisson(params["log_mu"].exp())

    def mean(self, params: dict[str, Tensor]) -> Tensor:
        return params["log_mu"].exp()

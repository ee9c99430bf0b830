"""Bernoulli likelihood for binary features (mutations, binarised calls)."""

from __future__ import annotations

import numpy as np
import pyro.distributions as pdist
import torch
import torch.nn.functional as F
from torch import Tensor

from ._base import Likelihood, nan_mean, register_likelihood


@register_likelihood
class Bernoulli(Likelihood):
    r"""Binary features with decoded logits.

    .. math:: x_g \mid z \sim \mathrm{Bernoulli}(\sigma(f_g(z))).
    """

    name = "bernoulli"
    main_head = "logit_head"
    is_discrete = True
    support = (0.0, 1.0)
    expects = "binary 0/1 values"
    calibratable = False

    def __init__(self, n_vars: int, n_hidden: int, **kwargs) -> None:
        super().__init__(n_vars, n_hidden, **kwargs)
        self.logit_head = self.make_head()

    def set_stats(self, x: np.ndarray) -> None:
        super().set_stats(x)
        p = np.clip(nan_mean(x), 1e-3, 1 - 1e-3)
        with torch.no_grad():
            self.logit_head.bias.copy_(torch.as_tensor(np.log(p / (1 - p)), dtype=torch.float32))

    def forward(self, h: Tensor) -> dict[str, Tensor]:
        return {"logits": self.logit_head(h)}

    def log_prob(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        logits = params["logits"]
        return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")

    def pyro_dist(self, params: dict[str, Tensor]):
        return pdist.Bernoulli(logits=params["logits"])

    def sample(self, params: dict[str, Tensor]) -> Tensor:
        return torch.bernoulli(torch.sigmoid(params["logits"]))

    def mean(self, params: dict[str, Tensor]) -> Tensor:
        return torch.sigmoid(params["logits"])

"""Poisson likelihood for counts without overdispersion."""

from __future__ import annotations

import math

import numpy as np
import pyro.distributions as pdist
import torch
from torch import Tensor

from ._base import Likelihood, nan_mean, register_likelihood

#: Cap on decoded log-means, so that a wild early step cannot overflow ``exp``.
LOG_MU_MAX = 15.0
#: Counts per this many of an observation's total form the depth-normalised encoder input.
SCALE_TO = 1e4


@register_likelihood
class Poisson(Likelihood):
    r"""Poisson counts with a decoded log-rate.

    .. math:: x_g \mid z \sim \mathrm{Poisson}(\mu_g(z)).

    With ``library=True`` (the default of :func:`~mdlprob.data.setup_mudata`), the mean is
    the observation's total count :math:`\ell` times normalised expression,
    :math:`\mu_g(z) = \ell\,\mathrm{softmax}(f(z))_g`, with :math:`\log \ell` an observed
    offset, and the encoder sees :math:`\log(1 + 10^4 x_g / \ell)`; the latent then need not
    encode sequencing depth (as in scVI). Otherwise :math:`\log \mu_g(z) = f_g(z)` and the
    encoder sees :math:`\log(1 + x_g)`.
    """

    name = "poisson"
    main_head = "mu_head"
    is_count = True
    is_discrete = True
    support = (0.0, math.inf)
    expects = ("raw counts (non-negative integers): pass them (e.g. setup_mudata(..., layer={modality: 'counts'})) "
               "or use likelihood 'gaussian' for normalised data")

    def __init__(self, n_vars: int, n_hidden: int, *, library: bool = False, **kwargs) -> None:
        super().__init__(n_vars, n_hidden, **kwargs)
        self.library = bool(library)
        self.mu_head = self.make_head()

    @staticmethod
    def log_library(x: Tensor) -> Tensor:
        """Log total count of each row (``(..., n_vars)`` → ``(...)``; missing entries hold 0, NaN ignored)."""
        return torch.log(torch.nan_to_num(x).sum(-1).clamp_min(1.0))

    def input_transform(self, x: Tensor) -> Tensor:
        if not self.library:
            return torch.log1p(x)
        return torch.log1p(x * (SCALE_TO / self.log_library(x).exp().unsqueeze(-1)))

    def set_stats(self, x: np.ndarray) -> None:
        super().set_stats(x)
        if self.library:
            x = x / np.exp(self.log_library(torch.as_tensor(x, dtype=torch.float64)).numpy())[:, None]
        with torch.no_grad():
            floor = 1e-3 / self.n_vars if self.library else 1e-3
            self.mu_head.bias.copy_(torch.as_tensor(np.log(nan_mean(x) + floor), dtype=torch.float32))

    def forward(self, h: Tensor, log_library: Tensor | None = None) -> dict[str, Tensor]:
        """Log-means from the decoder output; ``log_library`` (the rows' :math:`\\log\\ell`) when ``library``."""
        f = self.mu_head(h)
        if not self.library:
            return {"log_mu": f.clamp(max=LOG_MU_MAX)}
        if log_library is None:
            msg = "This count likelihood models library size: pass log_library, the log total count of each row."
            raise ValueError(msg)
        return {"log_mu": torch.log_softmax(f, dim=-1) + log_library.unsqueeze(-1)}

    def log_prob(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        log_mu = params["log_mu"]
        return x * log_mu - log_mu.exp() - torch.lgamma(x + 1.0)

    def pyro_dist(self, params: dict[str, Tensor]):
        return pdist.Poisson(params["log_mu"].exp())

    def sample(self, params: dict[str, Tensor]) -> Tensor:
        return torch.poisson(params["log_mu"].exp())

    def mean(self, params: dict[str, Tensor]) -> Tensor:
        return params["log_mu"].exp()

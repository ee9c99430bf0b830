"""Beta likelihood for intensities in the unit interval (normalised image pixels, fractions)."""

from __future__ import annotations

import numpy as np
import pyro.distributions as pdist
import torch
from torch import Tensor, nn

from ._base import Likelihood, nan_mean, register_likelihood

#: Values are clamped to ``[EPS, 1 - EPS]`` before the density is evaluated.
EPS = 1e-3
_MIN_CONCENTRATION, _MAX_CONCENTRATION, _DEFAULT_CONCENTRATION = 2.0, 1e3, 10.0
_MIN_SHAPE = 1e-6


@register_likelihood
class Beta(Likelihood):
    r"""Beta with a decoded mean and a learned per-feature concentration, for values in [0, 1].

    .. math::
        \mu_g = \sigma(f_g(z)), \quad
        x_g \mid z \sim \mathrm{Beta}\big(\mu_g \kappa_g,\ (1 - \mu_g) \kappa_g\big),

    so :math:`E[x_g \mid z] = \mu_g` and :math:`\mathrm{Var} = \mu_g(1-\mu_g)/(1+\kappa_g)`.

    Notes
    -----
    Images hold exact 0s and 1s (clipped background, saturated pixels), where the Beta
    density is 0 or infinite. :meth:`log_prob` and :meth:`pyro_observe` therefore clamp
    the data to ``[1e-3, 1 - 1e-3]`` (:data:`EPS`): a value of 0 is scored as 0.001, the
    likelihood of the interval of intensities that round to it. Samples and means stay
    in the open interval. Values outside [0, 1] raise a ``ValueError`` (:meth:`check_values`).
    """

    name = "beta"
    main_head = "logit_head"
    support = (0.0, 1.0)
    expects = "values in [0, 1]: rescale the data or use 'gaussian'"

    def __init__(self, n_vars: int, n_hidden: int, **kwargs) -> None:
        super().__init__(n_vars, n_hidden, **kwargs)
        self.logit_head = self.make_head()
        self.log_concentration = nn.Parameter(torch.full((n_vars,), float(np.log(_DEFAULT_CONCENTRATION))))

    def set_stats(self, x: np.ndarray) -> None:
        """Also start the mean at the feature means and the concentration at the moment estimate.

        The marginal (method-of-moments) concentration :math:`m(1-m)/v - 1`, clipped to
        ``[2, 1000]``, under-states the conditional one, a safe start.
        """
        x = np.asarray(x, dtype=np.float64)
        self.check_values(x)
        super().set_stats(x)
        clamped = np.clip(x, EPS, 1.0 - EPS)
        m = np.clip(nan_mean(clamped), EPS, 1.0 - EPS)  # an all-NaN feature has mean 0
        v = nan_mean((clamped - m) ** 2)
        kappa = np.where(v > 0, m * (1.0 - m) / np.maximum(v, 1e-12) - 1.0, _MAX_CONCENTRATION)
        kappa = np.clip(kappa, _MIN_CONCENTRATION, _MAX_CONCENTRATION)
        with torch.no_grad():
            self.logit_head.bias.copy_(torch.as_tensor(np.log(m / (1.0 - m)), dtype=torch.float32))
            self.log_concentration.copy_(torch.as_tensor(np.log(kappa), dtype=torch.float32))

    @classmethod
    def to_support(cls, x: Tensor) -> Tensor:
        """Clamped into the open interval, where the density is finite."""
        return x.clamp(1e-6, 1.0 - 1e-6)

    def forward(self, h: Tensor) -> dict[str, Tensor]:
        return {"logits": self.logit_head(h), **self.noise()}

    def noise(self) -> dict[str, Tensor]:
        return {"log_concentration": self.log_concentration}

    def _alpha_beta(self, params: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        mu = torch.sigmoid(params["logits"])
        kappa = params["log_concentration"].exp()
        # keeps both shape parameters positive where sigmoid(logits) rounds to 0 or 1
        return (mu * kappa).clamp_min(_MIN_SHAPE), ((1.0 - mu) * kappa).clamp_min(_MIN_SHAPE)

    def log_prob(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        alpha, beta = self._alpha_beta(params)
        x = x.clamp(EPS, 1.0 - EPS)
        return ((alpha - 1.0) * torch.log(x) + (beta - 1.0) * torch.log1p(-x)
                + torch.lgamma(alpha + beta) - torch.lgamma(alpha) - torch.lgamma(beta))

    def pyro_dist(self, params: dict[str, Tensor]):
        return pdist.Beta(*self._alpha_beta(params))

    def pyro_observe(self, name: str, params: dict[str, Tensor], x: Tensor, mask: Tensor) -> None:
        """Observe ``x`` clamped to ``[EPS, 1 - EPS]`` (see the class notes)."""
        super().pyro_observe(name, params, x.clamp(EPS, 1.0 - EPS), mask)

    def sample(self, params: dict[str, Tensor]) -> Tensor:
        return self.pyro_dist(params).sample()

    def mean(self, params: dict[str, Tensor]) -> Tensor:
        return torch.sigmoid(params["logits"])

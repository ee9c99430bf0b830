"""Gaussian likelihood with one scale shared by every feature (e.g. every pixel of an image)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from ._base import register_likelihood
from ._gaussian import Gaussian


@register_likelihood
class GaussianGlobal(Gaussian):
    r"""Normal with a decoded mean and a single learned scale, on the data's own scale.

    .. math::
        x_g \mid z \sim \mathcal{N}\big(m_g + s_g f_g(z),\ \sigma^2\big),

    one :math:`\sigma` for all features: fewer parameters than :class:`Gaussian`'s
    per-feature scales, for features on a common scale with homogeneous noise (image
    intensities of one sequence) when there are few observations per feature.
    """

    name = "gaussian_global"

    def __init__(self, n_vars: int, n_hidden: int, **kwargs) -> None:
        super().__init__(n_vars, n_hidden, **kwargs)
        self.log_sigma = nn.Parameter(torch.zeros(()))

    def set_stats(self, x: np.ndarray) -> None:
        super().set_stats(x)
        with torch.no_grad():  # start at half the typical feature sd, like Gaussian's per-feature start
            self.log_sigma.fill_(float(torch.log(0.5 * self.in_scale.mean())))

    def forward(self, h: Tensor) -> dict[str, Tensor]:
        return {"loc": self.in_loc + self.in_scale * self.loc_head(h), **self.noise()}

    def noise(self) -> dict[str, Tensor]:
        return {"log_scale": self.log_sigma.expand(self.n_vars)}

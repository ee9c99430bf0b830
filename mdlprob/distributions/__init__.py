"""Per-modality likelihoods: decoder heads, log-densities, samplers and encoder inputs."""

from __future__ import annotations

from ._base import LIKELIHOODS, Likelihood, get_likelihood, register_likelihood
from ._bernoulli import Bernoulli
from ._beta import Beta
from ._gaussian import Gaussian
from ._gaussian_global import GaussianGlobal
from ._laplace import Laplace
from ._mixed import Mixed
from ._negative_binomial import NegativeBinomial
from ._poisson import Poisson
from ._zinb import ZeroInflatedNegativeBinomial

__all__ = [
    "LIKELIHOODS",
    "Bernoulli",
    "Beta",
    "Gaussian",
    "GaussianGlobal",
    "Laplace",
    "Likelihood",
    "Mixed",
    "NegativeBinomial",
    "Poisson",
    "ZeroInflatedNegativeBinomial",
    "get_likelihood",
    "register_likelihood",
]

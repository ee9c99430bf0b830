"""Per-modality likelihoods: decoder heads, log-densities, samplers and encoder inputs."""

from __future__ import annotations

from ._base import Likelihood
from ._bernoulli import Bernoulli
from ._beta import Beta
from ._gaussian import Gaussian
from ._gaussian_global import GaussianGlobal
from ._laplace import Laplace
from ._mixed import Mixed
from ._negative_binomial import NegativeBinomial
from ._poisson import Poisson
from ._zinb import ZeroInflatedNegativeBinomial

#: Likelihood classes by the name used in ``setup_mudata(likelihoods=...)``.
LIKELIHOODS: dict[str, type[Likelihood]] = {
    cls.name: cls for cls in (
        NegativeBinomial, ZeroInflatedNegativeBinomial, Poisson, Gaussian, GaussianGlobal, Bernoulli, Mixed, Laplace, Beta,
    )
}

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
]

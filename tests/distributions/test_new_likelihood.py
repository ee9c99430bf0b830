"""A new likelihood is one class with ``@register_likelihood``: nothing else changes.

This file is the whole of a toy log-normal likelihood; setup_mudata validates its values, the
models build and train it, imputation and the FactorModel's loadings work through its facts.
"""

from __future__ import annotations

import math

import numpy as np
import pyro.distributions as pdist
import pytest
import torch
from torch import Tensor, nn

import mdlprob
from mdlprob.data import setup_mudata
from mdlprob.distributions import LIKELIHOODS, Likelihood, register_likelihood
from mdlprob.distributions._gaussian import gaussian_log_prob
from mdlprob.testing import check_likelihood


class LogNormal(Likelihood):
    r"""Log-normal for positive continuous values: :math:`\log x_g \mid z \sim \mathcal{N}(m_g + s_g f_g(z), (s_g\sigma_g)^2)`."""

    name = "test_lognormal"
    main_head = "loc_head"
    support = (0.0, math.inf)
    expects = "positive values"

    def __init__(self, n_vars: int, n_hidden: int, **kwargs) -> None:
        super().__init__(n_vars, n_hidden, **kwargs)
        self.loc_head = self.make_head()
        self.log_sigma = nn.Parameter(torch.full((n_vars,), math.log(0.5)))

    def input_transform(self, x: Tensor) -> Tensor:
        return torch.log(x.clamp_min(1e-3))  # finite on the 0 of rows lacking the modality

    def forward(self, h: Tensor) -> dict[str, Tensor]:
        return {"loc": self.in_loc + self.in_scale * self.loc_head(h), "log_scale": self.log_sigma + self.in_scale.log()}

    def pyro_dist(self, params: dict[str, Tensor]):
        loc = params["loc"]
        return pdist.LogNormal(loc, params["log_scale"].exp().expand_as(loc))

    def log_prob(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        log_x = torch.log(x.clamp_min(1e-12))  # absent rows hold 0: finite, and masked out by the caller
        return gaussian_log_prob(log_x, params["loc"], params["log_scale"]) - log_x

    def pyro_observe(self, name: str, params: dict[str, Tensor], x: Tensor, mask: Tensor) -> None:
        super().pyro_observe(name, params, torch.where(mask, x, torch.ones_like(x)), mask)

    def sample(self, params: dict[str, Tensor]) -> Tensor:
        return self.pyro_dist(params).sample()

    def mean(self, params: dict[str, Tensor]) -> Tensor:
        return (params["loc"] + 0.5 * (2 * params["log_scale"]).exp()).exp()


@pytest.fixture
def registered():
    register_likelihood(LogNormal)
    yield LogNormal
    LIKELIHOODS.pop(LogNormal.name)


@pytest.fixture
def positive():
    m = mdlprob.datasets.synthetic(120, modalities=("rna", "protein"), missing={"protein": 0.3},
                                   n_vars={"rna": 20, "protein": 6}, seed=2)
    m.mod["protein"].X = np.log1p(np.asarray(m.mod["protein"].X, dtype=np.float64)) + 0.1
    return m


def test_a_registered_likelihood_passes_the_contract(registered):
    check_likelihood(registered)


def test_a_registered_likelihood_is_validated_trained_and_imputed(registered, positive):
    bad = positive.copy()
    bad.mod["protein"].X[0, 0] = -1.0
    with pytest.raises(ValueError, match=r"'protein' has 1 negative value.*'test_lognormal' needs positive values"):
        setup_mudata(bad, likelihoods={"rna": "nb", "protein": "test_lognormal"})
    setup_mudata(positive, likelihoods={"rna": "nb", "protein": "test_lognormal"})
    model = mdlprob.PoEVAE(positive, n_latent=3, n_hidden=16)
    model.train(max_epochs=2, progress_bar=False)
    imp = model.impute(positive, "protein", given=["rna"], n_samples=10)
    assert np.isfinite(imp.layers["mean"]).all() and (imp.layers["q05"] > 0).all()
    factors = mdlprob.FactorModel(positive, n_latent=3, n_hidden=16)
    factors.train(max_epochs=1, progress_bar=False)
    assert factors.loadings("protein").shape == (6, 3)


def test_an_unregistered_likelihood_is_refused_clearly(positive):
    with pytest.raises(ValueError, match="Unknown likelihood 'test_lognormal'.*expected one of"):
        setup_mudata(positive, likelihoods={"rna": "nb", "protein": "test_lognormal"})

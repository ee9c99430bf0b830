from __future__ import annotations

import numpy as np
import pytest
import torch

from mdlprob.distributions import LIKELIHOODS, Mixed

N_HIDDEN, N_VARS = 8, 5


def _mixed():
    types = ["gaussian", "categorical", "bernoulli", "gaussian", "categorical"]
    lik = Mixed(5, N_HIDDEN, has_nan=True, column_types=types, n_categories=[0, 3, 0, 0, 2])
    x = torch.tensor([[1.0, 2, 1, -0.5, 0], [0.3, 0, 0, 2.0, 1], [np.nan, 1, 1, 0.1, np.nan]])
    lik.set_stats(x.numpy())
    return lik, x


def test_mixed_log_prob_matches_per_column_references():
    lik, x = _mixed()
    observed = ~torch.isnan(x)
    x = torch.nan_to_num(x)
    params = lik(torch.randn(3, N_HIDDEN))
    lp = lik.log_prob(params, x)
    sd = params["log_scale"].exp()
    ref_g = torch.distributions.Normal(params["loc"], sd).log_prob(x[:, [0, 3]])
    ref_b = torch.distributions.Bernoulli(logits=params["logits"][:, 0]).log_prob(x[:, 2])
    ref_c1 = torch.distributions.Categorical(logits=params["cat_logits"][:, 0, :3]).log_prob(x[:, 1].long())
    ref_c2 = torch.distributions.Categorical(logits=params["cat_logits"][:, 1, :2]).log_prob(x[:, 4].long())
    torch.testing.assert_close(lp, torch.stack([ref_g[:, 0], ref_c1, ref_b, ref_g[:, 1], ref_c2], 1), rtol=1e-5, atol=1e-5)
    assert lik.encode_input(x, observed).shape == (3, lik.in_features)
    assert lik.in_features == 2 + 1 + 3 + 2 + 5


def test_mixed_samples_respect_column_types():
    lik, _ = _mixed()
    draws = lik.sample(lik(torch.randn(500, N_HIDDEN)))
    assert set(draws[:, 1].unique().tolist()) <= {0.0, 1.0, 2.0}
    assert set(draws[:, 4].unique().tolist()) <= {0.0, 1.0}
    assert set(draws[:, 2].unique().tolist()) <= {0.0, 1.0}
    assert draws[:, 0].unique().numel() > 100


def test_mixed_table_without_categorical_columns_samples():
    """Regression: sampling failed on a (..., 0) categorical block."""
    lik = Mixed(3, 8, column_types=["gaussian", "bernoulli", "gaussian"], n_categories=[0, 0, 0])
    params = lik(torch.randn(5, 2, 8))
    draws = lik.sample(params)
    assert draws.shape == (5, 2, 3) and set(draws[..., 1].unique().tolist()) <= {0.0, 1.0}


def test_gaussian_global_shares_one_scale_across_features():
    lik = LIKELIHOODS["gaussian_global"](4, 8, image_shape=None)
    x = np.random.default_rng(0).normal(size=(50, 4)) * np.array([1.0, 2.0, 3.0, 4.0])
    lik.set_stats(x)
    params = lik(torch.randn(3, 8))
    assert params["log_scale"].shape == (4,) and torch.unique(params["log_scale"]).numel() == 1
    assert float(params["log_scale"][0].detach().exp()) == pytest.approx(0.5 * np.std(x, 0).mean(), rel=1e-4)
    torch.testing.assert_close(lik.log_prob(params, torch.zeros(3, 4)),
                               torch.distributions.Normal(params["loc"], params["log_scale"].exp()).log_prob(torch.zeros(3, 4)))


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
def test_noise_is_the_likelihoods_own_parameters_and_what_forward_returns(name):
    """``noise()`` rebuilds the non-decoded entries of ``forward`` from exactly the likelihood's own parameters."""
    lik = _mixed()[0] if name == "mixed" else LIKELIHOODS[name](N_VARS, N_HIDDEN)
    params = lik(torch.randn(3, N_HIDDEN))
    noise = lik.noise()
    own = list(lik.parameters(recurse=False))
    assert set(noise) <= set(params)
    for key, value in noise.items():
        assert torch.equal(torch.broadcast_to(value, params[key].shape), params[key])
        assert value.shape[:1] != (3,)  # not decoded: no batch dimension
    used = {id(p) for v in noise.values() for p in own if torch.autograd.grad(v.sum(), p, allow_unused=True)[0] is not None}
    assert used == {id(p) for p in own}

from __future__ import annotations

import numpy as np
import pytest
import torch

from mdlprob.distributions import LIKELIHOODS, Beta, Laplace
from mdlprob.distributions._base import PixelHead

N_HIDDEN, N_VARS = 8, 5
IMAGE_SHAPE = (1, 8, 8)


def _data(name: str, shape) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if name == "beta":
        return torch.distributions.Beta(2.0, 3.0).sample(shape).clamp(0.01, 0.99)
    return torch.randn(shape, generator=g) * 2.0 + 1.0


def _lik(name: str, *, image: bool = False, n: int = 7):
    n_vars = int(np.prod(IMAGE_SHAPE)) if image else N_VARS
    lik = LIKELIHOODS[name](n_vars, N_HIDDEN, image_shape=IMAGE_SHAPE if image else None)
    x = _data(name, (n, n_vars))
    lik.set_stats(x.numpy())
    # the decoder hands image heads a flattened (n_hidden, H, W) feature map
    width = N_HIDDEN * IMAGE_SHAPE[1] * IMAGE_SHAPE[2] if image else N_HIDDEN
    return lik, x, width


def test_registered_by_name():
    assert LIKELIHOODS["laplace"] is Laplace and LIKELIHOODS["beta"] is Beta


@pytest.mark.parametrize("image", [False, True])
def test_laplace_log_prob_matches_torch(image):
    lik, x, width = _lik("laplace", image=image)
    params = lik(torch.randn(7, width))
    ref = torch.distributions.Laplace(params["loc"], params["log_scale"].exp()).log_prob(x)
    torch.testing.assert_close(lik.log_prob(params, x), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lik.pyro_dist(params).log_prob(x), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("image", [False, True])
def test_beta_log_prob_matches_torch(image):
    lik, x, width = _lik("beta", image=image)
    params = lik(torch.randn(7, width))
    mu = torch.sigmoid(params["logits"])
    kappa = params["log_concentration"].exp()
    ref = torch.distributions.Beta(mu * kappa, (1 - mu) * kappa).log_prob(x)
    torch.testing.assert_close(lik.log_prob(params, x), ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(lik.pyro_dist(params).log_prob(x), ref, rtol=1e-4, atol=1e-4)


def test_beta_clamps_exact_zeros_and_ones():
    lik, _, _ = _lik("beta")
    params = lik(torch.randn(3, N_HIDDEN))
    x = torch.tensor([0.0, 1.0, 0.5, 1e-5, 1 - 1e-5]).expand(3, N_VARS)
    lp = lik.log_prob(params, x)
    assert torch.isfinite(lp).all()
    clamped = torch.tensor([1e-3, 1 - 1e-3, 0.5, 1e-3, 1 - 1e-3]).expand(3, N_VARS)
    torch.testing.assert_close(lp, lik.pyro_dist(params).log_prob(clamped), rtol=1e-4, atol=1e-4)


def test_beta_pyro_observe_is_finite_on_boundary_values():
    from pyro import poutine

    lik, _, _ = _lik("beta")
    params = lik(torch.randn(3, N_HIDDEN))
    x = torch.zeros(3, N_VARS)
    x[0] = 1.0
    mask = torch.ones(3, N_VARS, dtype=torch.bool)
    tr = poutine.trace(lambda: lik.pyro_observe("x", params, x, mask)).get_trace()
    site = tr.nodes["x"]
    lp = site["fn"].log_prob(site["value"])
    assert torch.isfinite(lp).all()
    lp.sum().backward()
    assert torch.isfinite(lik.log_concentration.grad).all()


def test_beta_rejects_values_outside_unit_interval():
    lik = Beta(N_VARS, N_HIDDEN)
    x = np.full((4, N_VARS), 0.5)
    x[1, 2] = 1.5
    with pytest.raises(ValueError, match=r"1 value\(s\) above 1.*'beta' needs values in \[0, 1\]"):
        lik.set_stats(x)


def test_beta_set_stats_starts_at_feature_means_and_handles_nan():
    lik = Beta(N_VARS, N_HIDDEN)
    x = np.random.default_rng(0).beta(2.0, 5.0, size=(400, N_VARS))
    x[:10, 0] = np.nan
    lik.set_stats(x)
    with torch.no_grad():
        mean = lik.mean(lik(torch.zeros(1, N_HIDDEN)))[0].numpy()
    np.testing.assert_allclose(mean, np.nanmean(x, 0), atol=1e-4)
    kappa = lik.log_concentration.exp().detach().numpy()
    np.testing.assert_allclose(kappa, 7.0, rtol=0.25)  # Beta(2, 5): alpha + beta = 7


@pytest.mark.parametrize("name", ["laplace", "beta"])
@pytest.mark.parametrize("image", [False, True])
def test_samples_match_the_conditional_mean(name, image):
    lik, _, width = _lik(name, image=image, n=20)
    with torch.no_grad():
        params = lik(torch.randn(1, width).expand(20000, width))
        draws = lik.sample(params)
        mean = lik.mean(params)[0]
    assert draws.shape == (20000, lik.n_vars)
    tol = 0.02 if name == "beta" else 0.1
    torch.testing.assert_close(draws.mean(0), mean, rtol=0.0, atol=tol)
    if name == "beta":
        assert ((draws >= 0) & (draws <= 1)).all()
        mu, kappa = mean, lik.log_concentration.exp()
        torch.testing.assert_close(draws.var(0), mu * (1 - mu) / (1 + kappa), rtol=0.1, atol=1e-3)
    else:  # Var = 2 b^2
        torch.testing.assert_close(draws.var(0), 2 * params["log_scale"].exp() ** 2, rtol=0.1, atol=1e-3)


@pytest.mark.parametrize("name", ["laplace", "beta"])
@pytest.mark.parametrize("image", [False, True])
def test_log_prob_broadcasts_over_leading_sample_dims(name, image):
    lik, x, width = _lik(name, image=image, n=3)
    h = torch.randn(4, 3, width)
    stacked = lik.log_prob(lik(h), x)
    assert stacked.shape == (4, 3, lik.n_vars)
    assert lik.mean(lik(h)).shape == (4, 3, lik.n_vars)
    assert lik.sample(lik(h)).shape == (4, 3, lik.n_vars)
    for k in range(4):
        torch.testing.assert_close(stacked[k], lik.log_prob(lik(h[k]), x))


@pytest.mark.parametrize("name", ["laplace", "beta"])
def test_image_heads_are_per_pixel_and_shape_checked(name):
    lik, _, width = _lik(name, image=True)
    head = lik.loc_head if name == "laplace" else lik.logit_head
    assert isinstance(head, PixelHead)
    # a 1x1 convolution: a pixel's parameter depends only on that pixel's feature vector
    h = torch.randn(2, width, requires_grad=True)
    key = "loc" if name == "laplace" else "logits"
    lik(h)[key][0, 10].backward()
    touched = h.grad.reshape(2, N_HIDDEN, -1).abs().sum((0, 1)) > 0
    assert touched.nonzero().flatten().tolist() == [10]
    with pytest.raises(ValueError, match="image_shape"):
        LIKELIHOODS[name](60, N_HIDDEN, image_shape=IMAGE_SHAPE)


def test_laplace_works_on_the_data_scale():
    lik = Laplace(N_VARS, N_HIDDEN)
    x = np.random.default_rng(0).normal(100.0, 20.0, size=(500, N_VARS))
    lik.set_stats(x)
    with torch.no_grad():
        params = lik(torch.zeros(1, N_HIDDEN))
    np.testing.assert_allclose(params["loc"][0] - lik.loc_head.bias.detach() * lik.in_scale, x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(params["log_scale"].exp(), 0.5 * x.std(0), rtol=1e-4)

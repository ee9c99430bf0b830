from __future__ import annotations

import numpy as np
import pytest
import torch

from mdlprob import MoPoEVAE
from mdlprob.nn import product_of_experts
from mdlprob.testing import replayed_mean_field_elbo


@pytest.fixture
def mopoe(mdata):
    model = MoPoEVAE(mdata, n_latent=4, n_hidden=32)
    model.train(max_epochs=2, batch_size=64, progress_bar=False)
    return model


def test_subsets_are_every_non_empty_subset(mopoe):
    masks = mopoe.module.subset_masks
    assert masks.shape == (7, 3) and masks.any(1).all()
    assert len({tuple(m.tolist()) for m in masks}) == 7


def test_fast_loss_equals_the_pyro_elbo(mopoe, mdata):
    """The fused loss is the Pyro model/guide's mean-field ELBO for the same subsets and latent draws."""
    module = mopoe.module.train()
    batch = mopoe.tensors(mdata).batch(torch.arange(mdata.n_obs))
    batch["subset"] = module.draw_subsets(batch)
    no_protein = ~batch["presence"][:, 1]
    assert no_protein.any()
    assert not module.subset_masks[batch["subset"][no_protein], 1].any()  # only subsets the observation has
    kl_weight = 0.7
    elbo, guide = replayed_mean_field_elbo(module, batch, kl_weight)
    z = guide.nodes["z"]["value"]
    fast = module.loss(batch, kl_weight=kl_weight, z=z, subset=batch.pop("subset"))
    torch.testing.assert_close(fast, -elbo / mdata.n_obs, rtol=1e-5, atol=1e-4)


def test_svi_backend_trains(mdata):
    model = MoPoEVAE(mdata, n_latent=4, n_hidden=16)
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    model.train(max_epochs=2, inference="svi", progress_bar=False)
    assert all(np.isfinite(model.history_["train_loss"]))
    moved = [k for k, v in model.module.state_dict().items() if not torch.equal(v, before[k])]
    assert any("encoders" in k for k in moved) and any("decoders" in k for k in moved)


def test_one_available_subset_gives_the_product_of_experts(mopoe, mdata):
    module = mopoe.module
    batch = mopoe.tensors(mdata).batch(torch.arange(mdata.n_obs))
    use = torch.tensor([True, False, False]).expand_as(batch["presence"])
    mean, var = module.posterior_moments(batch, use)
    mu, logvar = module.encode(batch)
    poe_mean, poe_var = product_of_experts(mu, logvar, use & batch["presence"])
    torch.testing.assert_close(mean, poe_mean)
    torch.testing.assert_close(var, poe_var)
    z = module.sample_posterior(batch, use, 3)
    gauss = torch.distributions.Normal(poe_mean, poe_var.sqrt()).log_prob(z).sum(-1)
    torch.testing.assert_close(module.posterior_log_prob(z, batch, use), gauss)


def test_mixture_samples_density_and_moments_agree(mopoe, mdata):
    module = mopoe.module
    batch = mopoe.tensors(mdata).batch(torch.arange(5))
    use = torch.ones_like(batch["presence"])
    means, variances, w = module._components(batch, use)
    z = module.sample_posterior(batch, use, 4000)
    mean, var = module.posterior_moments(batch, use)
    torch.testing.assert_close(z.mean(0), mean, atol=0.1, rtol=0.0)
    torch.testing.assert_close(z.var(0), var, atol=0.1, rtol=0.15)
    # the mixture density is the weighted sum of the component densities
    comp = torch.distributions.Normal(means, variances.sqrt()).log_prob(z[:2, None]).sum(-1).exp()
    expected = (comp * w.t()).sum(1).log()
    torch.testing.assert_close(module.posterior_log_prob(z[:2], batch, use), expected, rtol=1e-4, atol=1e-4)
    ll = mopoe.log_likelihood(mdata, n_samples=20)
    assert ll.shape == (mdata.n_obs,) and np.isfinite(ll).all()

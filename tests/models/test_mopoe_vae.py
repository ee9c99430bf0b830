from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from pyro import poutine
from torch.distributions import kl_divergence

from mdlprob import MoPoEVAE
from mdlprob.data import setup_mudata
from mdlprob.nn import product_of_experts
from mdlprob.testing import check_model
from tests.conftest import LIKELIHOODS


@pytest.fixture
def mopoe(mdata):
    model = MoPoEVAE(mdata, n_latent=4, n_hidden=32)
    model.train(max_epochs=2, batch_size=64, progress_bar=False)
    return model


def test_model_contract(mdata):
    check_model(MoPoEVAE, mdata, n_latent=4, n_hidden=16)


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
    guide = poutine.trace(module.guide).get_trace(batch, kl_weight)
    model = poutine.trace(poutine.replay(module.model, trace=guide)).get_trace(batch, kl_weight)
    elbo = 0.0
    for name, site in model.nodes.items():
        if site["type"] != "sample" or name == "obs":
            continue
        if site["is_observed"]:
            elbo = elbo + site["fn"].log_prob(site["value"]).sum()
        else:
            kl = kl_divergence(guide.nodes[name]["fn"].base_dist, site["fn"].base_dist).sum(-1)
            elbo = elbo - kl_weight * kl.sum()
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


def test_absent_modality_values_cannot_move_the_posterior(mdata):
    mask = pd.DataFrame(True, index=mdata.obs_names, columns=list(LIKELIHOODS))
    has_protein = np.asarray(mdata.obsmap["protein"]) > 0
    hidden = np.flatnonzero(has_protein)[:20]
    mask.iloc[hidden, 1] = False
    mdata.obsm["mask"] = mask
    setup_mudata(mdata, likelihoods=LIKELIHOODS, mask_key="mask")
    model = MoPoEVAE(mdata, n_latent=4, n_hidden=16)
    model.train(max_epochs=2, progress_bar=False)
    before = model.get_latent(mdata).copy()
    before_std = mdata.obsm["X_mdlprob_std"].copy()
    mdata.mod["protein"].X = mdata.mod["protein"].X * 7 + 100  # every protein row, masked or not
    after = model.get_latent(mdata)
    np.testing.assert_array_equal(after[hidden], before[hidden])
    np.testing.assert_array_equal(mdata.obsm["X_mdlprob_std"][hidden], before_std[hidden])
    others = np.setdiff1d(np.flatnonzero(has_protein), hidden)
    assert not np.allclose(after[others], before[others])  # the same change moves rows that have protein
    assert np.isfinite(model.impute(mdata, "rna", n_samples=5).layers["mean"]).all()

from __future__ import annotations

import numpy as np
import pytest
import torch
from pyro import poutine

from mdlprob.models import MoEVAE


def _full_batch(model, mdata):
    return model.tensors(mdata).batch(torch.arange(mdata.n_obs))


def _grads(module, loss) -> dict[str, torch.Tensor]:
    module.zero_grad(set_to_none=True)
    loss.backward()
    return {k: p.grad.clone() for k, p in module.named_parameters() if p.grad is not None}


def test_fast_loss_equals_the_pyro_elbo(mdata):
    """With k=1 and the ELBO, the fused loss is the Pyro model/guide's ELBO for the same stratified draws."""
    model = MoEVAE(mdata, n_latent=4, n_hidden=32, n_particles=1, estimator="elbo")
    model.train(max_epochs=2, batch_size=64, progress_bar=False)
    module = model.module.train()
    batch = _full_batch(model, mdata)
    assert not batch["presence"].all()
    kl_weight = 0.7
    guide = poutine.trace(module.guide).get_trace(batch, kl_weight)
    replayed = poutine.trace(poutine.replay(module.model, trace=guide)).get_trace(batch, kl_weight)
    not_plate = lambda name, site: name != "obs"  # noqa: E731
    elbo = replayed.log_prob_sum(not_plate) - guide.log_prob_sum(not_plate)
    z = torch.stack([guide.nodes[f"z_{m}"]["value"] for m in model.modalities]).unsqueeze(1)
    fast = module.loss(batch, kl_weight=kl_weight, z=z)
    torch.testing.assert_close(fast, -elbo / mdata.n_obs, rtol=1e-5, atol=1e-4)
    # each stratum's draw comes from its own expert, not from the mixture
    mu, _ = module.encode(batch)
    has = batch["presence"][:, 0]
    assert (z[0, 0, has] - mu[0, has]).abs().mean() < (z[0, 0, has] - mu[1, has]).abs().mean()


def test_svi_backend_trains(mdata):
    model = MoEVAE(mdata, n_latent=4, n_hidden=16)
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    model.train(max_epochs=2, inference="svi", progress_bar=False)
    assert all(np.isfinite(model.history_["train_loss"]))
    moved = [k for k, v in model.module.state_dict().items() if not torch.equal(v, before[k])]
    assert any("encoders" in k for k in moved) and any("decoders" in k for k in moved)


def test_iwae_is_tighter_and_dreg_changes_only_encoder_gradients(mdata):
    model = MoEVAE(mdata, n_latent=4, n_hidden=32, n_particles=20, estimator="dreg")
    model.train(max_epochs=3, batch_size=64, lr=3e-3, progress_bar=False)
    module = model.module.train()
    batch = _full_batch(model, mdata)

    def loss(estimator: str, seed: int) -> torch.Tensor:
        module.estimator = estimator
        torch.manual_seed(seed)
        return module.loss(batch)

    with torch.no_grad():
        elbo = np.mean([-float(loss("elbo", s)) for s in range(4)])
        iwae = np.mean([-float(loss("iwae", s)) for s in range(4)])
    assert iwae > elbo, (iwae, elbo)
    iwae_loss, dreg_loss = loss("iwae", 7), loss("dreg", 7)
    torch.testing.assert_close(dreg_loss, iwae_loss)  # same value: only the gradient differs
    g_iwae, g_dreg = _grads(module, iwae_loss), _grads(module, dreg_loss)
    assert set(g_iwae) == set(g_dreg)
    generative = [k for k in g_iwae if not k.startswith("encoders")]
    encoders = [k for k in g_iwae if k.startswith("encoders")]
    assert generative and encoders
    for k in generative:  # decoders and likelihoods: the IWAE gradient in both
        torch.testing.assert_close(g_dreg[k], g_iwae[k], rtol=1e-4, atol=1e-5)
    assert any(not torch.allclose(g_dreg[k], g_iwae[k], rtol=1e-3, atol=1e-5) for k in encoders)
    assert all(torch.isfinite(g).all() for g in g_dreg.values())
    # encoders: the DReG surrogate sum_k w_hat^2 w, q's parameters held fixed inside w
    torch.manual_seed(7)
    _, log_w = module.log_weights(batch)
    w_hat = torch.softmax(log_w, dim=1).detach()
    presence = batch["presence"]
    per_stratum = torch.where(presence.t(), (w_hat**2 * log_w).sum(1), 0.0)
    surrogate = -(per_stratum.sum(0) / presence.sum(-1)).sum() / presence.shape[0]
    g_surrogate = _grads(module, surrogate)
    for k in encoders:
        torch.testing.assert_close(g_dreg[k], g_surrogate[k], rtol=1e-4, atol=1e-6)


def test_mixture_of_unimodal_experts(mdata):
    model = MoEVAE(mdata, n_latent=4, n_hidden=32)
    model.train(max_epochs=2, batch_size=64, progress_bar=False)
    module = model.module
    batch = _full_batch(model, mdata)
    mu, logvar = module.encode(batch)
    # one available expert: the expert itself (no product with the prior)
    rna_only = torch.tensor([True, False, False]).expand_as(batch["presence"])
    mean, var = module.posterior_moments(batch, rna_only)
    torch.testing.assert_close(mean, mu[0])
    torch.testing.assert_close(var, logvar[0].exp())
    # nothing available: the prior
    nothing = torch.zeros_like(batch["presence"])
    mean, var = module.posterior_moments(batch, nothing)
    torch.testing.assert_close(mean, torch.zeros_like(mean))
    torch.testing.assert_close(var, torch.ones_like(var))
    # every available expert, equally weighted: samples, density and moments agree
    lacking = torch.nonzero(~batch["presence"][:, 1]).squeeze(-1)
    rows = torch.cat([torch.arange(3), lacking[:2]])
    use = torch.ones_like(batch["presence"])
    z_all = module.sample_posterior(batch, use, 4000)
    z = z_all[:, rows]
    mean, var = module.posterior_moments(batch, use)
    torch.testing.assert_close(z.mean(0), mean[rows], atol=0.1, rtol=0.0)
    torch.testing.assert_close(z.var(0), var[rows], atol=0.1, rtol=0.15)
    normal = torch.distributions.Normal(mu[:, rows], (0.5 * logvar[:, rows]).exp())
    dens = normal.log_prob(z[:2, None]).sum(-1).exp()  # (2, n_mod, 5)
    avail = batch["presence"][rows].t().float()
    expected = ((dens * avail).sum(1) / avail.sum(0)).log()
    torch.testing.assert_close(module.posterior_log_prob(z_all[:2], batch, use)[:, rows], expected, rtol=1e-4, atol=1e-4)
    ll = model.log_likelihood(mdata, n_samples=20)
    assert ll.shape == (mdata.n_obs,) and np.isfinite(ll).all()


def test_bad_arguments_raise(mdata):
    with pytest.raises(ValueError, match="n_particles to be an int"):
        MoEVAE(mdata, n_particles=0)
    with pytest.raises(ValueError, match="estimator"):
        MoEVAE(mdata, estimator="vimco")


def test_k_is_the_deprecated_name_of_n_particles(mdata):
    with pytest.warns(FutureWarning, match=r"MoEVAE\(k=...\) is deprecated; pass n_particles="):
        model = MoEVAE(mdata, n_latent=4, n_hidden=16, k=3)
    assert model.module.k == 3
    with pytest.raises(TypeError, match="both n_particles= and"):
        MoEVAE(mdata, n_particles=2, k=3)

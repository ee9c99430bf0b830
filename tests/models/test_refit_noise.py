"""``refit_noise``: the likelihoods' own noise parameters move, nothing else does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mdlprob
from mdlprob.base._noise import build_noise_cache, cache_shape, newton_fit
from mdlprob.exceptions import NotTrainedError

NOISE = {"likelihoods.rna.log_theta", "likelihoods.protein.log_theta", "likelihoods.clinical.log_sigma"}


@pytest.mark.parametrize("name", ["PoEVAE", "MoEVAE", "MoPoEVAE", "GraphPoEVAE", "FactorModel"])
def test_only_the_noise_parameters_change(mdata, name):
    cls = getattr(mdlprob.models, name)
    model = cls(mdata) if name == "FactorModel" else cls(mdata, n_latent=4, n_hidden=16)
    model.train(max_epochs=1, batch_size=64, refit_noise_steps=0)
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    model.refit_noise(n_steps=15, batch_size=64)
    changed = {k for k, v in model.module.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == NOISE
    assert 1 <= len(model.history_["noise_loss"]) <= 15
    assert all(p.requires_grad for p in model.module.parameters())


def test_mixture_models_refit_by_default_and_it_can_be_turned_off(mdata):
    model = mdlprob.models.MoEVAE(mdata, n_latent=4, n_hidden=16)
    model.train(max_epochs=2, batch_size=64)
    assert model.default_refit_noise_steps == 300
    first = len(model.history_["noise_loss"])
    assert 1 <= first <= 2 * 3  # capped by the training steps (2 epochs of 3 batches)
    model.train(max_epochs=1, batch_size=64, refit_noise_steps=40)
    assert 1 <= len(model.history_["noise_loss"]) - first <= 40
    plain = mdlprob.models.PoEVAE(mdata, n_latent=4, n_hidden=16)
    plain.train(max_epochs=1, batch_size=64)
    assert "noise_loss" not in plain.history_


def test_refit_lowers_the_loss_of_an_inflated_noise(mdata):
    """Start NB dispersion far too high (theta = e^-2): the refit must raise theta and lower the loss."""
    model = mdlprob.models.PoEVAE(mdata, n_latent=4, n_hidden=16)
    model.train(max_epochs=20, batch_size=64, refit_noise_steps=0)
    with torch.no_grad():
        model.module.likelihoods["protein"].log_theta.fill_(-2.0)
    model.refit_noise(n_steps=200)
    losses = model.history_["noise_loss"]
    assert losses[-1] < losses[0]
    assert np.all(np.diff(losses) <= 1e-6 * abs(losses[0]))  # a step that does not help is undone
    assert model.module.likelihoods["protein"].log_theta.mean().item() > -1.0


def test_refit_finds_the_closed_form_gaussian_scale_of_its_cached_draws(mdata):
    """Newton on the cached decoded means reaches the Gaussian scale MLE: the root mean squared residual."""
    model = mdlprob.models.MoEVAE(mdata, n_latent=4, n_hidden=16)
    model.train(max_epochs=3, batch_size=64, refit_noise_steps=0)
    module, lik = model.module, model.module.likelihoods["clinical"]
    cache = build_noise_cache(module, model._tensors, torch.arange(mdata.n_obs), n_proposals=4, budget=2**16,
                              chunk_size=32)
    with torch.no_grad():
        lik.log_sigma.fill_(2.0)  # far too wide
    newton_fit(module, cache, [p for m in model.modalities for p in module.likelihoods[m].parameters(recurse=False)],
               max_steps=100)
    row = torch.arange(cache.n_pairs) // cache.draws
    cols = lik.idx_gaussian
    x, keep = cache.x["clinical"][row][:, cols], cache.keep["clinical"][row][:, cols]
    sq = torch.where(keep, (x - cache.decoded["clinical"]["loc"]) ** 2, 0.0).sum(0) / keep.sum(0)
    fitted = lik.noise()["log_scale"].exp()
    torch.testing.assert_close(fitted, sq.sqrt(), rtol=2e-3, atol=0.0)


def test_the_cache_stays_within_its_budget(mdata):
    assert cache_shape(1000, 50, 10_000) == (200, 1)
    assert cache_shape(10, 50, 10_000) == (10, 8)  # at most 8 draws per row
    assert cache_shape(30, 50, 10_000) == (30, 6)
    model = mdlprob.models.MoPoEVAE(mdata, n_latent=4, n_hidden=16)
    model.train(max_epochs=1, batch_size=64, refit_noise_steps=0)
    width = sum(model.module.likelihoods[m].n_vars for m in model.modalities)
    cache = build_noise_cache(model.module, model._tensors, torch.arange(mdata.n_obs), n_proposals=3,
                              budget=40 * width, chunk_size=16)
    assert len(cache.rows) == 40 and cache.draws == 1 and len(set(cache.rows.tolist())) == 40
    for m, entries in cache.decoded.items():
        assert all(v.shape[0] == 40 for v in entries.values())
        assert cache.x[m].shape == cache.keep[m].shape == (40, model.module.likelihoods[m].n_vars)


def test_lr_is_deprecated_and_ignored(mdata):
    model = mdlprob.models.PoEVAE(mdata, n_latent=4, n_hidden=16)
    model.train(max_epochs=1, batch_size=64)
    with pytest.warns(FutureWarning, match="lr=.*deprecated"):
        model.refit_noise(n_steps=3, lr=0.05)
    assert 1 <= len(model.history_["noise_loss"]) <= 3


def test_refit_is_reproducible(mdata):
    thetas = []
    for _ in range(2):
        mdlprob.settings.seed = 3
        model = mdlprob.models.MoEVAE(mdata, n_latent=4, n_hidden=16)
        model.train(max_epochs=1, batch_size=64, refit_noise_steps=10)
        thetas.append(model.module.likelihoods["protein"].log_theta.detach().clone())
    assert torch.equal(*thetas)


def test_bad_arguments_raise(mdata, tmp_path):
    model = mdlprob.models.PoEVAE(mdata, n_latent=4, n_hidden=16)
    with pytest.raises(NotTrainedError, match="not trained"):
        model.refit_noise()
    with pytest.raises(ValueError, match="refit_noise_steps"):
        model.train(max_epochs=1, refit_noise_steps=-1)
    model.train(max_epochs=1, batch_size=64)
    with pytest.raises(ValueError, match="n_steps"):
        model.refit_noise(n_steps=0)
    with pytest.raises(ValueError, match="n_proposals"):
        model.refit_noise(n_proposals=0)
    model.save(tmp_path / "m")
    loaded = mdlprob.models.PoEVAE.load(tmp_path / "m")
    with pytest.raises(NotTrainedError, match="inference only"):
        loaded.refit_noise()


@pytest.mark.parametrize(("n_obs", "uses_val"), [(300, True), (150, False)])
def test_refit_uses_a_large_enough_validation_split(n_obs, uses_val, monkeypatch):
    """Noise is fit on rows the decoders never saw when there are at least 100 of them."""
    m = mdlprob.datasets.synthetic(n_obs, missing={"protein": 0.3}, n_vars={"rna": 20, "protein": 8}, seed=1)
    mdlprob.data.setup_mudata(m, likelihoods={"rna": "nb", "protein": "nb", "clinical": "mixed"})
    model = mdlprob.models.PoEVAE(m, n_latent=4, n_hidden=16)
    model.train(max_epochs=1, batch_size=64, train_size=0.5)
    seen: list[int] = []
    tensors = model._tensors
    original = type(tensors).batch
    monkeypatch.setattr(type(tensors), "batch", lambda self, idx, device=None: (seen.extend(idx.tolist()),
                                                                                 original(self, idx, device))[1])
    model.refit_noise(n_steps=20, batch_size=32)
    expected = set(model.val_indices_) if uses_val else set(range(n_obs))
    assert set(seen) == expected

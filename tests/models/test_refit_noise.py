"""``refit_noise``: the likelihoods' own noise parameters move, nothing else does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mdlprob
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
    assert len(model.history_["noise_loss"]) == 15
    assert all(p.requires_grad for p in model.module.parameters())


def test_mixture_models_refit_by_default_and_it_can_be_turned_off(mdata):
    model = mdlprob.models.MoEVAE(mdata, n_latent=4, n_hidden=16)
    model.train(max_epochs=2, batch_size=64)
    assert model.default_refit_noise_steps == 300
    assert len(model.history_["noise_loss"]) == 2 * 3  # capped by the training steps (2 epochs of 3 batches)
    model.train(max_epochs=1, batch_size=64, refit_noise_steps=40)
    assert len(model.history_["noise_loss"]) == 6 + 40
    plain = mdlprob.models.PoEVAE(mdata, n_latent=4, n_hidden=16)
    plain.train(max_epochs=1, batch_size=64)
    assert "noise_loss" not in plain.history_


def test_refit_lowers_the_loss_of_an_inflated_noise(mdata):
    """Start NB dispersion far too high (theta = e^-2): the refit must raise theta and lower the loss."""
    model = mdlprob.models.PoEVAE(mdata, n_latent=4, n_hidden=16)
    model.train(max_epochs=20, batch_size=64, refit_noise_steps=0)
    with torch.no_grad():
        model.module.likelihoods["protein"].log_theta.fill_(-2.0)
    model.refit_noise(n_steps=200, lr=0.05, batch_size=64)
    losses = model.history_["noise_loss"]
    assert np.mean(losses[-20:]) < np.mean(losses[:5])
    assert model.module.likelihoods["protein"].log_theta.mean().item() > -1.0


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

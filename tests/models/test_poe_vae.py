from __future__ import annotations

import mudata as md
import numpy as np
import pandas as pd
import pytest
import torch

import mdlprob
from mdlprob import PoEVAE
from mdlprob.exceptions import NotTrainedError, RegistrationError
from mdlprob.testing import replayed_mean_field_elbo


def test_fast_loss_equals_the_pyro_elbo(trained, mdata):
    """The fused loss is the Pyro model/guide's mean-field ELBO for the same latent draws."""
    module = trained.module.train()
    batch = trained.tensors(mdata).batch(torch.arange(mdata.n_obs))
    kl_weight = 0.7
    elbo, guide = replayed_mean_field_elbo(module, batch, kl_weight)
    z = {n[2:]: s["value"] for n, s in guide.nodes.items() if n.startswith("z_")}
    assert set(z) == {"joint", "rna", "protein", "clinical"}
    fast = module.loss(batch, kl_weight=kl_weight, z=z)
    torch.testing.assert_close(fast, -elbo / mdata.n_obs, rtol=1e-5, atol=1e-4)


def test_svi_backend_trains_each_model_separately(mdata):
    first = PoEVAE(mdata, n_latent=4, n_hidden=16)
    first.train(max_epochs=2, inference="svi", progress_bar=False)
    assert all(np.isfinite(first.history_["train_loss"]))
    second = PoEVAE(mdata, n_latent=4, n_hidden=16)
    before = {k: v.clone() for k, v in second.module.state_dict().items()}
    first.train(max_epochs=1, inference="svi", progress_bar=False)  # the first model's params stay in the store
    second.train(max_epochs=1, inference="svi", progress_bar=False)
    moved = [k for k, v in second.module.state_dict().items() if not torch.equal(v, before[k])]
    assert any("encoders" in k for k in moved)


def test_outputs_and_documented_keys_only(trained, mdata):
    obs_before, mods_before = mdata.obs.copy(), {k: v.X.copy() for k, v in mdata.mod.items()}
    obsm_before, uns_before = set(mdata.obsm), set(mdata.uns)
    mean = trained.get_latent(mdata)
    assert mean.shape == (mdata.n_obs, 4)
    assert set(mdata.obsm) - obsm_before == {"X_mdlprob", "X_mdlprob_std"}
    assert set(mdata.uns) == uns_before
    assert (mdata.obsm["X_mdlprob_std"] > 0).all()
    imp = trained.impute(mdata, "protein", n_samples=30, quantiles=(0.05, 0.25, 0.5, 0.95))
    assert imp.shape == (mdata.n_obs, 12)
    assert sorted(imp.layers) == ["mean", "q05", "q25", "q50", "q95", "std"]
    assert imp.obs_names.equals(mdata.obs_names)
    np.testing.assert_array_equal(imp.obs["observed"], np.asarray(mdata.obsmap["protein"]) > 0)
    assert (imp.layers["q05"] <= imp.layers["q50"]).all() and (imp.layers["q50"] <= imp.layers["q95"]).all()
    pd.testing.assert_frame_equal(mdata.obs, obs_before)
    for k, v in mdata.mod.items():
        np.testing.assert_array_equal(v.X, mods_before[k])


def test_categorical_columns_impute_a_valid_code(trained, mdata):
    imp = trained.impute(mdata, "clinical", n_samples=10)
    site = imp.layers["mean"][:, -1]
    assert set(np.unique(site)) <= {0.0, 1.0, 2.0, 3.0}
    assert np.isnan(imp.layers["std"][:, -1]).all()


def test_given_restricts_the_conditioning(trained, mdata):
    full = trained.get_latent(mdata).copy()
    rna_only = trained.get_latent(mdata, given=["rna"])
    assert not np.allclose(full, rna_only)
    no_rna = md.MuData({m: mdata.mod[m] for m in ("protein", "clinical")})
    with pytest.warns(mdlprob.exceptions.DataWarning, match="prior"):
        imp = trained.impute(no_rna, "protein", given=["rna"], n_samples=5)
    assert np.isfinite(imp.layers["mean"]).all()


def test_save_load_round_trip_is_exact(trained, mdata, tmp_path):
    trained.save(tmp_path / "model")
    state = torch.load(tmp_path / "model" / "model.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    loaded = PoEVAE.load(tmp_path / "model", mdata)
    np.testing.assert_array_equal(loaded.get_latent(mdata), trained.get_latent(mdata))
    mdlprob.settings.seed = 5
    a = trained.impute(mdata, "rna", n_samples=10).layers["q95"]
    mdlprob.settings.seed = 5
    b = loaded.impute(mdata, "rna", n_samples=10).layers["q95"]
    np.testing.assert_array_equal(a, b)
    assert loaded.history_ == trained.history_
    with pytest.raises(FileExistsError, match="overwrite=True"):
        trained.save(tmp_path / "model")
    trained.save(tmp_path / "model", overwrite=True)
    with pytest.raises(FileNotFoundError, match="No saved mdlprob model"):
        PoEVAE.load(tmp_path / "nothing")


def test_loading_onto_mismatched_data_fails_clearly(trained, mdata, tmp_path):
    trained.save(tmp_path / "model")
    other = mdlprob.datasets.synthetic(30, n_vars={"rna": 41, "protein": 12})
    with pytest.raises(RegistrationError, match="'rna' has features that differ"):
        PoEVAE.load(tmp_path / "model", other)
    with pytest.raises(RegistrationError, match="differ"):
        trained.get_latent(other)


def test_errors_before_training_and_on_bad_arguments(mdata):
    with pytest.raises(RegistrationError, match="setup_mudata"):
        PoEVAE(mdlprob.datasets.synthetic(20))
    with pytest.raises(ValueError, match="n_latent"):
        PoEVAE(mdata, n_latent=0)
    model = PoEVAE(mdata, n_latent=4, n_hidden=16)
    with pytest.raises(NotTrainedError, match="train"):
        model.impute(mdata, "rna")
    with pytest.raises(ValueError, match="batch_size"):
        model.train(batch_size=0)
    with pytest.raises(ValueError, match="accelerator"):
        model.train(accelerator="tpu")
    with pytest.raises(ValueError, match="inference"):
        model.train(inference="mcmc")
    model.train(max_epochs=1, progress_bar=False)
    with pytest.raises(ValueError, match="registered modalities"):
        model.impute(mdata, "atac")
    with pytest.raises(ValueError, match="given"):
        model.get_latent(mdata, given=["atac"])
    with pytest.raises(ValueError, match="n_samples"):
        model.impute(mdata, "rna", n_samples=1)


def test_early_stopping_keeps_a_validation_split(mdata):
    model = PoEVAE(mdata, n_latent=4, n_hidden=16)
    model.train(max_epochs=40, early_stopping=True, patience=1, lr=0.05, progress_bar=False)
    assert len(model.val_indices_) == 15 and len(model.train_indices_) == 135
    assert len(model.history_["val_loss"]) == len(model.history_["train_loss"]) < 40
    assert set(model.val_indices_).isdisjoint(model.train_indices_)


def test_log_likelihood_is_an_importance_weighted_bound(mdata):
    model = PoEVAE(mdata, n_latent=4, n_hidden=32)
    model.train(max_epochs=30, batch_size=64, lr=3e-3, progress_bar=False)
    ll_1 = model.log_likelihood(mdata, n_samples=1)
    ll_200 = model.log_likelihood(mdata, n_samples=200)
    assert ll_200.shape == (mdata.n_obs,) and np.isfinite(ll_200).all()
    assert ll_200.mean() > ll_1.mean()  # the bound tightens with more samples
    mdlprob.settings.seed = 1
    again = model.log_likelihood(mdata, n_samples=200)
    assert np.abs(again - ll_200).mean() < 0.05 * np.abs(ll_200).mean()
    # protein values shuffled across observations are less likely under the model than the real ones
    shuffled = mdata.copy()
    X = shuffled.mod["protein"].X
    shuffled.mod["protein"].X = X[np.random.default_rng(0).permutation(X.shape[0])]
    assert model.log_likelihood(shuffled, n_samples=200).mean() < ll_200.mean()


def test_early_stopping_is_on_when_the_epochs_are_left_to_the_model(mdata, caplog):
    automatic = PoEVAE(mdata, n_latent=2, n_hidden=8)
    with caplog.at_level("INFO", logger="mdlprob.base._base_model"):
        automatic.train(batch_size=64, patience=2, lr=0.05, progress_bar=False)
    assert automatic.val_indices_ and automatic.history_["best_epoch"][0] <= automatic.history_["stopped_epoch"][0]
    if automatic.history_["stopped_epoch"][0] < 400:
        assert "Early stopping at epoch" in caplog.text
    given = PoEVAE(mdata, n_latent=2, n_hidden=8)
    given.train(max_epochs=3, progress_bar=False)
    assert not given.val_indices_ and len(given.history_["train_loss"]) == 3 and "stopped_epoch" not in given.history_
    with pytest.raises(ValueError, match="early_stopping to be True, False or 'auto', got 'yes'"):
        given.train(max_epochs=1, early_stopping="yes", progress_bar=False)


def test_a_given_validation_split_is_used_and_checked(mdata):
    model = PoEVAE(mdata, n_latent=2, n_hidden=8)
    model.train(max_epochs=2, validation_indices=[3, 1, 7], progress_bar=False)
    assert model.val_indices_ == [1, 3, 7] and len(model.train_indices_) == mdata.n_obs - 3
    for bad in ([1, 1], [mdata.n_obs], list(range(mdata.n_obs))):
        with pytest.raises(ValueError, match="validation_indices to be distinct positions"):
            model.train(max_epochs=1, validation_indices=bad, progress_bar=False)


def test_importance_is_a_deprecated_name_of_n_proposals(trained, mdata):
    mdlprob.settings.seed = 3
    new = trained.sample_predictive(mdata, "protein", n_samples=4, n_proposals=8)
    mdlprob.settings.seed = 3
    with pytest.warns(FutureWarning, match=r"sample_predictive\(importance=...\) is deprecated; pass n_proposals"):
        old = trained.sample_predictive(mdata, "protein", n_samples=4, importance=8)
    np.testing.assert_array_equal(new, old)
    with pytest.warns(FutureWarning, match="impute"):
        imp = trained.impute(mdata, "protein", n_samples=4, importance=8)
    assert imp.uns["mdlprob_impute"]["n_proposals"] == 8
    with pytest.raises(TypeError, match="both n_proposals= and its deprecated name importance="):
        trained.impute(mdata, "protein", n_samples=4, n_proposals=8, importance=8)
    with pytest.raises(ValueError, match="n_proposals"):
        trained.impute(mdata, "protein", n_samples=4, n_proposals=-1)

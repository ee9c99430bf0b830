from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from pyro import poutine

import mdlprob
from mdlprob.data import setup_mudata
from mdlprob.exceptions import NotTrainedError
from mdlprob.models import FactorModel
from mdlprob.testing import replayed_mean_field_elbo


@pytest.fixture
def fitted(mdata):
    model = FactorModel(mdata, n_latent=4, n_hidden=16)
    model.train(max_epochs=2, batch_size=64, progress_bar=False)
    return model


def test_decoders_are_linear_maps_of_the_factors(fitted):
    module = fitted.module
    z = torch.randn(7, 4)
    lik = module.likelihoods["protein"]
    expected = z @ lik.mu_head.weight.T + lik.mu_head.bias
    torch.testing.assert_close(module.decode("protein", z)["log_mu"], expected)
    assert not any(isinstance(m, torch.nn.Linear) for m in module.decoders.modules())


def test_fast_loss_equals_the_pyro_elbo(fitted, mdata):
    """The fused loss is the Pyro model/guide's mean-field ELBO plus the scaled ARD factor."""
    module = fitted.module.train()
    batch = fitted.tensors(mdata).batch(torch.arange(mdata.n_obs))
    kl_weight = 0.7
    elbo, guide = replayed_mean_field_elbo(module, batch, kl_weight)
    assert any(name == "ard_prior" for name in poutine.trace(module.model).get_trace(batch, kl_weight).nodes)
    z = {n[2:]: s["value"] for n, s in guide.nodes.items() if n.startswith("z_")}
    fast = module.loss(batch, kl_weight=kl_weight, z=z)
    torch.testing.assert_close(fast, -elbo / mdata.n_obs, rtol=1e-5, atol=1e-4)
    prior = module.log_prior() / module.n_obs
    assert prior.abs() > 1e-3  # the ARD term is really part of both objectives


def test_ard_precision_is_the_conditional_map(fitted):
    module = fitted.module
    log_alpha = module.ard_precision().log().detach().requires_grad_(True)
    w = module.ard_weights("rna").detach()
    d = w.shape[0]
    a = b = 1e-3
    alpha = log_alpha[0].exp()
    objective = (0.5 * d * log_alpha[0] - 0.5 * alpha * (w**2).sum(0) + a * log_alpha[0] - b * alpha).sum()
    objective.backward()
    torch.testing.assert_close(log_alpha.grad[0], torch.zeros(4), atol=1e-3, rtol=0)


def test_loadings_shape_and_index(fitted, mdata):
    rna = fitted.loadings("rna")
    assert rna.shape == (40, 4)
    assert list(rna.columns) == ["Factor1", "Factor2", "Factor3", "Factor4"]
    assert rna.index.equals(mdata.mod["rna"].var_names)
    assert np.isfinite(rna.to_numpy()).all()
    clinical = fitted.loadings("clinical")
    names = list(mdata.mod["clinical"].var_names)
    expected = [n for n in names if n != "site"] + [f"site={c}" for c in range(4)]
    assert list(clinical.index) == expected
    np.testing.assert_allclose(clinical.loc[[f"site={c}" for c in range(4)]].sum(0), 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="registered modalities"):
        fitted.loadings("atac")


def test_variance_explained_has_no_side_effects(fitted, mdata):
    obsm_before = set(mdata.obsm)
    ve = fitted.variance_explained()
    assert ve.shape == (3, 4) and list(ve.index) == ["rna", "protein", "clinical"]
    assert np.isfinite(ve.to_numpy()).all() and (ve.to_numpy() <= 1).all()
    total = fitted.variance_explained(mdata, total=True)
    assert total.shape == (3,) and (total <= 1).all()
    assert set(mdata.obsm) == obsm_before


def test_variance_explained_after_load_needs_data(fitted, mdata, tmp_path):
    fitted.save(tmp_path / "m")
    loaded = FactorModel.load(tmp_path / "m", accelerator="cpu")
    pd.testing.assert_frame_equal(loaded.variance_explained(mdata), fitted.variance_explained())
    pd.testing.assert_frame_equal(loaded.loadings("rna"), fitted.loadings("rna"))
    with pytest.raises(ValueError, match="pass mdata"):
        loaded.variance_explained()


def test_n_factors_is_a_deprecated_name_of_n_latent(mdata):
    with pytest.warns(FutureWarning, match="n_latent"):
        model = FactorModel(mdata, n_factors=3, n_hidden=8)
    assert model.module.n_latent == 3 and len(model.factor_names) == 3
    with pytest.warns(FutureWarning), pytest.raises(ValueError, match="n_factors"):
        FactorModel(mdata, n_factors=0)


def test_errors(mdata):
    with pytest.raises(ValueError, match="n_latent"):
        FactorModel(mdata, n_latent=0)
    model = FactorModel(mdata, n_latent=3, n_hidden=8)
    with pytest.raises(NotTrainedError, match="train"):
        model.variance_explained()


def test_ard_prunes_factors_and_imputation_beats_the_mean():
    """Ground truth: 3 true factors, 8 fitted; protein hidden for 30% of the observations."""
    mdata = mdlprob.datasets.synthetic(
        600,
        modalities=("rna", "protein"),
        n_vars={"rna": 60, "protein": 15},
        n_latent=3,
        missing={"protein": 0.3},
        seed=0,
    )
    setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb"})
    model = FactorModel(mdata, n_latent=8, n_hidden=32)
    model.train(max_epochs=50, batch_size=200, lr=2e-2, progress_bar=False)
    ve = model.variance_explained()
    assert ((ve < 0.01).sum(1) >= 3).all(), ve  # in every modality, at least 3 factors are switched off
    total = model.variance_explained(total=True)
    assert (total > 0.3).all(), total
    imp = model.impute(mdata, "protein", n_samples=100)
    values, hidden = mdlprob.datasets.hidden_truth(mdata, "protein")
    rows = hidden.all(1)
    truth, pred = np.log1p(values[rows]), np.log1p(imp.layers["mean"][rows])
    baseline = np.log1p(values[~rows]).mean(0)
    rmse, rmse_base = np.sqrt(((truth - pred) ** 2).mean()), np.sqrt(((truth - baseline) ** 2).mean())
    assert rmse < 0.9 * rmse_base, (rmse, rmse_base)

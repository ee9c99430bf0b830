"""Variance explained per modality and latent dimension through any model's decoder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mdlprob
from mdlprob.data import setup_mudata
from mdlprob.interpret import variance_explained
from mdlprob.models import FactorModel, MoPoEVAE


def _gaussian_data():
    mdata = mdlprob.datasets.synthetic(200, modalities=("rna", "protein"), n_vars={"rna": 20, "protein": 8},
                                       missing={"protein": 0.3}, seed=4)
    for mod in ("rna", "protein"):
        mdata.mod[mod].X = np.log1p(mdata.mod[mod].X)
    setup_mudata(mdata, likelihoods={"rna": "gaussian", "protein": "gaussian"})
    return mdata


def test_equals_the_factor_models_own_on_gaussian_features():
    mdata = _gaussian_data()
    model = FactorModel(mdata, n_latent=3, n_hidden=8)
    model.train(max_epochs=20, batch_size=100, lr=1e-2, progress_bar=False)
    ours, theirs = variance_explained(model, mdata), model.variance_explained(mdata)
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), atol=1e-4)
    np.testing.assert_allclose(variance_explained(model, mdata, total=True).to_numpy(),
                               model.variance_explained(mdata, total=True).to_numpy(), atol=1e-4)


def test_every_vae_gets_one_value_per_modality_and_dimension(trained, mdata):
    obsm = set(mdata.obsm)
    ve = variance_explained(trained, mdata)
    assert ve.shape == (3, 4) and list(ve.columns) == ["z1", "z2", "z3", "z4"]
    assert np.isfinite(ve.to_numpy()).all() and (ve.to_numpy() <= 1).all()
    total = variance_explained(trained, mdata, total=True)
    assert isinstance(total, pd.Series) and (total <= 1).all()
    assert set(mdata.obsm) == obsm  # nothing written


def test_a_mixture_model_and_a_trained_latent_explain_the_counts(mdata):
    model = MoPoEVAE(mdata, n_latent=4, n_hidden=32)
    model.train(max_epochs=30, batch_size=64, lr=3e-3, progress_bar=False, refit_noise_steps=0)
    total = variance_explained(model, mdata, total=True)
    assert total["rna"] > 0.1 and total["protein"] > 0.1, total


def test_untrained_model_is_refused(mdata):
    with pytest.raises(mdlprob.exceptions.NotTrainedError, match="train"):
        variance_explained(mdlprob.PoEVAE(mdata, n_latent=2), mdata)

"""Shared fixtures: seeded, Pyro-validated, small synthetic data."""

from __future__ import annotations

import pyro
import pytest
import torch

import mdlprob

LIKELIHOODS = {"rna": "nb", "protein": "nb", "clinical": "mixed"}

# Test models are tiny: intra-op threads only add synchronisation, and on a shared 2-core
# machine an oversubscribed OpenMP pool makes each op orders of magnitude slower.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    mdlprob.settings.seed = 0
    mdlprob.settings.progress_bar = False
    pyro.clear_param_store()
    pyro.enable_validation(True)
    yield
    mdlprob.settings.progress_bar = True


@pytest.fixture
def mdata():
    """150 observations, 3 modalities, protein absent for 30%, NaN entries in clinical."""
    m = mdlprob.datasets.synthetic(150, missing={"protein": 0.3}, n_vars={"rna": 40, "protein": 12}, seed=1)
    mdlprob.data.setup_mudata(m, likelihoods=LIKELIHOODS)
    return m


@pytest.fixture
def trained(mdata):
    model = mdlprob.PoEVAE(mdata, n_latent=4, n_hidden=32)
    model.train(max_epochs=2, batch_size=64, progress_bar=False)
    return model

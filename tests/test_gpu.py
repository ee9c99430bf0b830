"""GPU smoke tests (``-m gpu``; skipped without a CUDA device): every model trains, imputes and
reloads on the GPU, and a model trained there gives the same latent on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mdlprob
from mdlprob.models import all_models

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (run with -m gpu on one)")]


@pytest.fixture(scope="module")
def mdata():
    data = mdlprob.datasets.synthetic(300, missing={"protein": 0.3}, seed=0)
    mdlprob.data.setup_mudata(data, likelihoods={"rna": "nb", "protein": "nb", "clinical": "mixed"})
    return data


@pytest.mark.parametrize("name", list(all_models()))
def test_model_trains_imputes_and_reloads_on_cpu(name, mdata, tmp_path):
    mdlprob.settings.seed = 0
    model = all_models()[name].cls(mdata, n_latent=4, n_hidden=32)
    model.train(max_epochs=3, batch_size=64, accelerator="cuda", progress_bar=False)
    assert model.device.type == "cuda"
    imputed = model.impute(mdata, "protein", n_samples=10)
    assert np.isfinite(imputed.layers["mean"]).all()
    latent = model.get_latent(mdata)
    model.save(tmp_path / "m")
    on_cpu = type(model).load(tmp_path / "m", mdata, accelerator="cpu")
    np.testing.assert_allclose(on_cpu.get_latent(mdata), latent, rtol=1e-4, atol=1e-4)

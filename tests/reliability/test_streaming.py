"""Inference streams in batches bounded by DRAW_BUDGET; results are written in place, in order."""

from __future__ import annotations

import numpy as np

import mdlprob
from mdlprob.base._base_model import DRAW_BUDGET


def test_draw_batch_bounds_the_widest_tensor(trained):
    for n_draws in (2, 200, 5000):
        for modality, everything in (("rna", False), ("protein", True), (None, True)):
            batch = trained._draw_batch_size(n_draws, modality, everything)
            liks = trained.module.likelihoods
            widest = max(trained.module.decoder_width, liks["rna"].n_vars if modality == "rna" else 0,
                         sum(liks[m].n_vars for m in trained.modalities) if everything else 0)
            assert 1 <= batch <= 1024
            assert batch == 1 or batch * n_draws * widest <= DRAW_BUDGET


def test_small_batches_give_the_same_layout_as_one(trained, mdata):
    mdlprob.settings.seed = 3
    small = trained.impute(mdata, "protein", given=["rna"], n_samples=400, batch_size=7)
    mdlprob.settings.seed = 3
    whole = trained.impute(mdata, "protein", given=["rna"], n_samples=400, batch_size=1000)
    assert small.obs_names.equals(whole.obs_names) and (small.obs["observed"] == whole.obs["observed"]).all()
    for layer in ("mean", "q05", "q50", "q95"):
        a, b = small.layers[layer], whole.layers[layer]
        assert np.isfinite(a).all()
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.97  # the same distribution, other random draws
    assert (small.layers["q05"] <= small.layers["q95"]).all()
    ll_small = trained.log_likelihood(mdata, n_samples=50, batch_size=9)
    ll_whole = trained.log_likelihood(mdata, n_samples=50)
    assert ll_small.shape == (mdata.n_obs,) and np.corrcoef(ll_small, ll_whole)[0, 1] > 0.99

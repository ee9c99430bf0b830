"""Count modalities with library size: depth is an observed offset, not something the latent learns."""

from __future__ import annotations

import mudata as md
import numpy as np
import pytest
import torch
from anndata import AnnData

import mdlprob
from mdlprob.data import hide_modality, setup_mudata


def _depth_data(n_obs: int = 300, seed: int = 0) -> tuple[md.MuData, np.ndarray]:
    """Composition driven by a 3-d latent, sequencing depth by an independent log-normal factor (sd 0.8)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_obs, 3))
    depth = rng.normal(np.log(3000), 0.8, n_obs)
    mods = {}
    for name, n_vars, scale in (("rna", 60, 1.0), ("adt", 15, 0.3)):
        logits = z @ rng.normal(0, 1.0, (3, n_vars)) + rng.normal(0, 1, n_vars)
        p = np.exp(logits - logits.max(1, keepdims=True))
        mu = scale * np.exp(depth)[:, None] * p / p.sum(1, keepdims=True)
        counts = rng.poisson(rng.gamma(10.0, mu / 10.0)).astype(np.float32)
        mods[name] = AnnData(counts)
        mods[name].obs_names = [f"c{i}" for i in range(n_obs)]
        mods[name].var_names = [f"{name}{j}" for j in range(n_vars)]
    return md.MuData(mods), depth


def _depth_r2(latent: np.ndarray, depth: np.ndarray) -> float:
    design = np.column_stack([latent, np.ones(len(depth))])
    resid = depth - design @ np.linalg.lstsq(design, depth, rcond=None)[0]
    return 1.0 - resid.var() / depth.var()


@pytest.fixture(scope="module")
def fitted():
    out = {}
    for library in (True, False):
        mdlprob.settings.seed = 0
        mdata, depth = _depth_data()
        setup_mudata(mdata, likelihoods={"rna": "nb", "adt": "nb"}, library_size=library)
        model = mdlprob.PoEVAE(mdata, n_latent=6, n_hidden=32)
        model.train(max_epochs=40, batch_size=64, lr=3e-3, progress_bar=False)
        out[library] = (model, mdata, depth)
    return out


def test_the_latent_no_longer_tracks_sequencing_depth(fitted):
    with_library = _depth_r2(fitted[True][0].get_latent(fitted[True][1]), fitted[True][2])
    without = _depth_r2(fitted[False][0].get_latent(fitted[False][1]), fitted[False][2])
    assert without > 0.5, without  # the earlier count model spends the latent on depth
    assert with_library < 0.5 * without, (with_library, without)


def test_registry_records_the_library_choice():
    mdata, _ = _depth_data(20)
    setup_mudata(mdata, likelihoods={"rna": "nb", "adt": "poisson"})
    assert all(e["library"] for e in mdata.uns["mdlprob"]["modalities"].values())
    setup_mudata(mdata, likelihoods={"rna": "nb", "adt": "nb"}, library_size=False)
    assert not any(e["library"] for e in mdata.uns["mdlprob"]["modalities"].values())
    with pytest.raises(TypeError, match="library_size to be True or False, got 'yes'"):
        setup_mudata(mdata, likelihoods={"rna": "nb", "adt": "nb"}, library_size="yes")


def test_an_absent_count_modality_is_imputed_at_a_predicted_depth(fitted):
    model, mdata, _ = fitted[True]
    hide = np.zeros(mdata.n_obs, dtype=bool)
    hide[::3] = True
    view = hide_modality(mdata, "adt", hide)
    imp = model.impute(view, "adt", given=["rna"], n_samples=50)
    assert np.isfinite(imp.layers["mean"]).all() and (imp.layers["q05"] <= imp.layers["q95"]).all()
    truth = np.log(mdata.mod["adt"].X[hide].sum(1))
    draws = np.log(model.sample_predictive(view, "adt", given=["rna"], n_samples=50)[:, hide].sum(2) + 1).mean(0)
    # both modalities share one depth here, so the RNA depth predicts the ADT depth closely
    assert abs(draws.mean() - truth.mean()) < 0.15, (draws.mean(), truth.mean())
    assert np.corrcoef(draws, truth)[0, 1] > 0.8
    k = model.module.library_modalities.index("adt")
    assert float(model.module.library_sd[k]) < 0.3


def test_observed_depth_is_used_when_the_modality_is_given(fitted):
    model, mdata, _ = fitted[True]
    imp = model.impute(mdata, "adt", n_samples=30)
    totals = mdata.mod["adt"].X.sum(1)
    np.testing.assert_allclose(imp.layers["mean"].sum(1), totals, rtol=0.02)


def test_library_model_survives_save_and_load(fitted, tmp_path):
    model, mdata, _ = fitted[True]
    model.save(tmp_path / "m")
    loaded = mdlprob.PoEVAE.load(tmp_path / "m", mdata)
    torch.testing.assert_close(loaded.module.library_coef, model.module.library_coef)
    torch.testing.assert_close(loaded.module.library_sd, model.module.library_sd)

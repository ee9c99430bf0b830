"""Results where scverse tools look: ``impute(..., inplace=True)`` layers and presence patterns in ``obs``."""

from __future__ import annotations

import numpy as np
import pytest

import mdlprob
from mdlprob.data import presence_pattern, setup_mudata, write_imputation
from mdlprob.models import PoEVAE

LIKELIHOODS = {"rna": "nb", "protein": "nb", "clinical": "mixed"}


@pytest.fixture(scope="module")
def trained():
    mdata = mdlprob.datasets.synthetic(120, n_vars={"rna": 30, "protein": 8}, missing={"protein": 0.3})
    setup_mudata(mdata, likelihoods=LIKELIHOODS)
    mdlprob.settings.seed = 0
    model = PoEVAE(mdata, n_latent=3, n_hidden=16)
    model.train(max_epochs=2, progress_bar=False)
    return model, mdata


def test_impute_inplace_writes_prefixed_layers_for_the_observations_that_have_the_modality(trained):
    model, mdata = trained
    mdata = mdata.copy()
    mdlprob.settings.seed = 3
    returned = model.impute(mdata, "protein", n_samples=10, inplace=True)
    adata = mdata["protein"]
    assert {"mdlprob_mean", "mdlprob_std", "mdlprob_q05", "mdlprob_q50", "mdlprob_q95"} <= set(adata.layers)
    rows = returned.obs_names.get_indexer(adata.obs_names)
    assert adata.n_obs < mdata.n_obs  # protein is absent for some: only the present rows are in its AnnData
    np.testing.assert_array_equal(adata.layers["mdlprob_q95"], returned.layers["q95"][rows])
    np.testing.assert_array_equal(adata.layers["mdlprob_mean"], returned.layers["mean"][rows])
    assert "mdlprob_filled" not in adata.layers and "protein_filled" not in mdata.obsm
    before = mdata.copy()
    model.impute(mdata, "protein", n_samples=10)  # the default writes nothing
    assert set(mdata["protein"].layers) == set(before["protein"].layers)


def test_impute_fill_replaces_only_missing_entries(trained):
    model, mdata = trained
    mdata = mdata.copy()
    x = mdata["clinical"].X.copy()
    assert np.isnan(x).any()  # the synthetic clinical table has NaN entries
    imputed = model.impute(mdata, "clinical", n_samples=10, inplace=True, fill=True)
    filled = mdata["clinical"].layers["mdlprob_filled"]
    measured = ~np.isnan(x)
    np.testing.assert_array_equal(filled[measured], x[measured])  # every measured value kept as it is
    rows = imputed.obs_names.get_indexer(mdata["clinical"].obs_names)
    np.testing.assert_array_equal(filled[~measured], imputed.layers["mean"][rows][~measured])
    complete = mdata.obsm["clinical_filled"]
    assert complete.shape == (mdata.n_obs, x.shape[1]) and np.isfinite(complete).all()


def test_fill_needs_inplace_and_write_imputation_checks_its_input(trained):
    model, mdata = trained
    with pytest.raises(ValueError, match="inplace=True"):
        model.impute(mdata, "protein", n_samples=10, fill=True)
    with pytest.raises(TypeError, match="inplace"):
        model.impute(mdata, "protein", n_samples=10, inplace="yes")
    with pytest.raises(ValueError, match="returned by model.impute"):
        write_imputation(mdata, mdata["protein"])
    imputed = model.impute(mdata, "protein", n_samples=10)
    with pytest.raises(ValueError, match="other observations"):
        write_imputation(mdata[:50].copy(), imputed)
    viewed = mdata.copy()
    viewed.mod["protein"] = viewed.mod["protein"][:10]  # a view: refused before anything is written
    with pytest.raises(ValueError, match="is a view"):
        write_imputation(viewed, imputed, fill=True)
    assert "protein_filled" not in viewed.obsm


def test_presence_pattern_names_each_observations_modalities(trained):
    _, mdata = trained
    mdata = mdata.copy()
    pattern = presence_pattern(mdata)
    has_protein = np.asarray(mdata.obsmap["protein"]) > 0
    assert (pattern[has_protein] == "rna+protein+clinical").all()
    assert (pattern[~has_protein] == "rna+clinical").all()
    assert list(mdata.obs["mdlprob_presence"]) == list(pattern)
    assert pattern.cat.categories[0] == ("rna+protein+clinical" if has_protein.mean() > 0.5 else "rna+clinical")

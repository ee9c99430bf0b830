"""No silent wrong results: duplicate names, unseen categories and never-observed modalities are refused."""

from __future__ import annotations

import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest

import mdlprob
from mdlprob.exceptions import DataWarning, RegistrationError

from ..conftest import LIKELIHOODS


def _synthetic(n=120, seed=1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mdlprob.datasets.synthetic(n, missing={"protein": 0.3}, n_vars={"rna": 20, "protein": 6}, seed=seed)


@pytest.mark.parametrize("axis", ["obs", "var"])
def test_duplicate_names_inside_a_modality_are_refused(axis):
    m = _synthetic()
    rna = m["rna"]
    names = list(getattr(rna, f"{axis}_names"))
    names[3] = names[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mudata's own construction warning
        setattr(rna, f"{axis}_names", names)
        m = md.MuData({"rna": rna, "protein": m["protein"], "clinical": m["clinical"]})
    with pytest.raises(RegistrationError, match=rf"'rna' has 1 duplicate {axis}_names \(e.g. \['{names[1]}'\]\)"):
        mdlprob.data.setup_mudata(m, likelihoods=LIKELIHOODS)


def _with_site(m, labels, codes):
    clinical = m["clinical"].copy()
    j = list(clinical.var_names).index("site")
    clinical.X[:, j] = codes
    clinical.uns["categories"] = {"site": labels}
    return md.MuData({"rna": m["rna"], "protein": m["protein"], "clinical": clinical})


@pytest.fixture
def trained_on_sites():
    m = _synthetic()
    mdlprob.data.setup_mudata(m, likelihoods=LIKELIHOODS)
    assert m.uns["mdlprob"]["modalities"]["clinical"]["categories"] == {"site": ["site0", "site1", "site2", "site3"]}
    model = mdlprob.PoEVAE(m, n_latent=3, n_hidden=8)
    model.train(max_epochs=1, progress_bar=False)
    return model, m


def test_unseen_category_at_prediction_is_named(trained_on_sites):
    model, m = trained_on_sites
    n = m.n_obs
    new = _with_site(m, ["site0", "site1", "site9"], np.arange(n) % 3)
    with pytest.raises(RegistrationError, match=r"'site' of modality 'clinical' has categories the model never saw.*\['site9'\]"):
        model.get_latent(new)


def test_other_category_order_is_refused(trained_on_sites):
    model, m = trained_on_sites
    new = _with_site(m, ["site1", "site0", "site2", "site3"], np.arange(m.n_obs) % 4)
    with pytest.raises(RegistrationError, match="another order"):
        model.impute(new, "protein", n_samples=5)


def test_codes_beyond_the_known_categories_are_refused(trained_on_sites):
    model, m = trained_on_sites
    new = _with_site(m, ["site0", "site1", "site2", "site3"], np.arange(m.n_obs) % 4)
    del new["clinical"].uns["categories"]
    new["clinical"].X[0, list(new["clinical"].var_names).index("site")] = 7
    with pytest.raises(RegistrationError, match=r"category codes \[7\]"):
        model.get_latent(new)


def test_same_categories_and_missing_values_pass(trained_on_sites):
    model, m = trained_on_sites
    new = _with_site(m, ["site0", "site1", "site2", "site3"], np.where(np.arange(m.n_obs) % 5 == 0, np.nan, np.arange(m.n_obs) % 2))
    assert np.isfinite(model.get_latent(new)).all()


def test_imputing_a_never_observed_modality_raises_unless_allowed(tmp_path):
    m = _synthetic()
    rna, protein = m["rna"], m["protein"]
    extra = ad.AnnData(np.zeros((0, 4), dtype=np.float32), var=pd.DataFrame(index=[f"p{i}" for i in range(4)]))
    m = md.MuData({"rna": rna, "protein": protein, "scan": extra})
    with pytest.warns(DataWarning, match="'scan' has no observations"):
        mdlprob.data.setup_mudata(m, likelihoods={"rna": "nb", "protein": "nb", "scan": "gaussian"})
    model = mdlprob.PoEVAE(m, n_latent=3, n_hidden=8)
    model.train(max_epochs=1, progress_bar=False)
    assert model.n_observed_["scan"] == 0 and model.n_observed_["rna"] == m.n_obs
    with pytest.raises(ValueError, match="No training observation had modality 'scan'.*allow_unobserved=True"):
        model.impute(m, "scan", n_samples=5)
    with pytest.raises(ValueError, match="No training observation had modality 'scan'"):
        model.sample_predictive(m, "scan", n_samples=5)
    with pytest.warns(DataWarning, match="never saw data"):
        out = model.impute(m, "scan", n_samples=5, allow_unobserved=True)
    assert out.shape == (m.n_obs, 4)
    model.save(tmp_path / "m")
    with pytest.raises(ValueError, match="No training observation"):
        mdlprob.PoEVAE.load(tmp_path / "m").impute(m, "scan", n_samples=5)


def test_subset_keeps_the_order_when_the_first_modality_is_incomplete():
    """mudata's legacy copy lists the first modality's observations first; subset never reorders."""
    m = _synthetic(60)
    hidden = np.zeros(m.n_obs, dtype=bool)
    hidden[::3] = True
    m = mdlprob.data.hide_modality(m, "rna", hidden)  # the first modality now lacks every third observation
    rows = np.arange(m.n_obs) % 2 == 0
    for index in (rows, np.flatnonzero(rows), m.obs_names[rows]):
        out = mdlprob.data.subset(m, index)
        assert list(out.obs_names) == list(m.obs_names[rows])
        for mod in ("rna", "protein"):
            assert np.array_equal(mdlprob.data.dense_values(out, mod), mdlprob.data.dense_values(m, mod)[rows],
                                  equal_nan=True)
    with pytest.raises(KeyError, match="not observations of mdata"):
        mdlprob.data.subset(m, ["nope"])


def test_latent_head_chunks_keep_the_order_when_the_first_modality_is_incomplete(monkeypatch):
    from sksurv.util import Surv

    m = _synthetic(90)
    hidden = np.zeros(m.n_obs, dtype=bool)
    hidden[::2] = True
    m = mdlprob.data.hide_modality(m, "rna", hidden)
    mdlprob.data.setup_mudata(m, likelihoods=LIKELIHOODS)
    model = mdlprob.PoEVAE(m, n_latent=3, n_hidden=8)
    model.train(max_epochs=2, progress_bar=False)
    y = Surv.from_arrays(m.obs["event"].to_numpy().astype(bool), m.obs["time"].to_numpy())
    est = mdlprob.heads.LatentHead(model, mdlprob.heads.CoxPHHead(prior_scale=1.0, max_epochs=30),
                                   covariates=["age"], modality_latents=False, n_samples=4, random_state=0).fit(m, y)
    whole = est.transform(m)[..., est.feature_names_.index("age")].mean(0)
    monkeypatch.setattr("mdlprob.base._base_model.DRAW_BUDGET", 4 * 40 * 20)  # chunks of 20 observations
    risk = est.predict_risk(m)
    monkeypatch.setattr(est, "_delegate", lambda name: lambda X, *a, **k: X[..., est.feature_names_.index("age")].mean(0))
    age_by_chunks = est.predict_risk(m)  # the age feature, routed through the chunking
    np.testing.assert_allclose(age_by_chunks, whole, atol=1e-6)
    assert risk.shape == (m.n_obs,)


def test_fill_missing_keeps_measured_values_and_fills_the_rest(trained, mdata):
    imp = trained.impute(mdata, "protein", n_samples=10)
    clinical = trained.impute(mdata, "clinical", n_samples=10)
    filled = mdlprob.data.fill_missing(mdata, imp)
    observed = mdlprob.data.dense_values(mdata, "protein")
    measured = ~np.isnan(observed)
    assert np.array_equal(filled[measured], observed[measured])
    assert np.array_equal(filled[~measured], imp.layers["mean"][~measured].astype(float))
    assert (mdata.obsm["protein_filled_imputed"] == ~measured).all() and (mdata.obsm["protein_filled_std"][measured] == 0).all()
    table = mdlprob.data.fill_missing(mdata, clinical, key="clinical_complete")  # NaN entries inside a table
    assert np.isfinite(table).all() and mdata.obsm["clinical_complete_imputed"].any()
    with pytest.raises(ValueError, match="returned by model.impute"):
        mdlprob.data.fill_missing(mdata, mdata["protein"])

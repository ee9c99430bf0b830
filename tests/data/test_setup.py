from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import mdlprob
from mdlprob.data import (
    get_registry,
    presence_mask,
    setup_mudata,
    table_to_anndata,
    tensors_from_mudata,
)
from mdlprob.exceptions import DataWarning, RegistrationError


def _counts(obs, n_vars=5, seed=0):
    X = (np.arange(len(obs))[:, None] + 1) * (np.arange(n_vars)[None] + 1) + seed  # counts, no constant feature
    return ad.AnnData(X.astype(np.float32), obs=pd.DataFrame(index=obs),
                      var=pd.DataFrame(index=[f"f{obs[0]}{j}" for j in range(n_vars)]))


def _two_mod(obs_a=("a", "b", "c"), obs_b=("c", "d")):
    return md.MuData({"rna": _counts(list(obs_a)), "protein": _counts(list(obs_b), seed=1)})


def test_registry_is_json_and_survives_h5mu_round_trip(mdata, tmp_path):
    import json

    reg = get_registry(mdata)
    assert json.loads(json.dumps(reg)) == reg
    assert reg["modalities"]["clinical"]["column_types"] == ["gaussian"] * 3 + ["bernoulli"] * 2 + ["categorical"]
    assert reg["modalities"]["clinical"]["n_categories"][-1] == 4
    path = tmp_path / "d.h5mu"
    mdata.write(path)
    assert get_registry(md.read_h5mu(path)) == reg
    assert list(get_registry(md.read_h5mu(path))["modalities"]) == list(reg["modalities"]) == reg["order"]


def test_presence_comes_from_the_outer_join():
    m = _two_mod()
    setup_mudata(m, likelihoods={"rna": "nb", "protein": "poisson"})
    pres = presence_mask(m, get_registry(m))
    assert m.obs_names.tolist() == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(pres, [[1, 0], [1, 0], [1, 1], [0, 1]])
    t = tensors_from_mudata(m, get_registry(m))
    np.testing.assert_array_equal(t.x["protein"][2].numpy(), m.mod["protein"].X[0])
    assert (t.x["protein"][0] == 0).all()


def test_explicit_mask_is_combined_with_the_join():
    m = _two_mod()
    m.obsm["present"] = pd.DataFrame({"rna": [True, False, True, False], "protein": [False, False, False, True]},
                                     index=m.obs_names)
    with pytest.raises(ValueError, match=r"1 observation\(s\) have none.*'b'"):
        setup_mudata(m, likelihoods={"rna": "nb", "protein": "nb"}, mask_key="present")
    fixed = m.obsm["present"].copy()
    fixed.loc["b", "rna"] = True
    m.obsm["present"] = fixed
    setup_mudata(m, likelihoods={"rna": "nb", "protein": "nb"}, mask_key="present")
    np.testing.assert_array_equal(presence_mask(m, get_registry(m)), [[1, 0], [1, 0], [1, 0], [0, 1]])


def test_setup_touches_only_uns(mdata):
    before = {k: v.X.copy() for k, v in mdata.mod.items()}
    obs = mdata.obs.copy()
    setup_mudata(mdata, likelihoods={"rna": "nb"})
    for k, v in mdata.mod.items():
        np.testing.assert_array_equal(v.X, before[k])
    pd.testing.assert_frame_equal(mdata.obs, obs)


def test_nan_entries_are_masked_not_filled(mdata):
    t = tensors_from_mudata(mdata, get_registry(mdata))
    X = mdata.mod["clinical"].X
    rows = np.asarray(mdata.obsmap["clinical"]) - 1
    obs = t.observed["clinical"].numpy()
    np.testing.assert_array_equal(obs, ~np.isnan(X[rows]))
    assert (t.x["clinical"].numpy()[~obs] == 0).all()
    assert t.observed["rna"] is None


def test_sparse_counts_are_accepted():
    m = _two_mod()
    dense = m.mod["rna"].X.copy()
    m.mod["rna"].X = sp.csr_matrix(dense)
    setup_mudata(m, likelihoods={"rna": "zinb", "protein": "nb"})
    t = tensors_from_mudata(m, get_registry(m))
    np.testing.assert_array_equal(t.x["rna"][:3].numpy(), dense)


@pytest.mark.parametrize(
    ("change", "lik", "error", "match"),
    [
        (lambda X: X * -1, "nb", ValueError, r"negative value\(s\).*'nb' needs raw counts"),
        (lambda X: X + 0.5, "poisson", ValueError, "non-integer values"),
        (lambda X: np.where(X > 3, np.inf, X), "gaussian", ValueError, "inf"),
        (lambda X: X + 2, "bernoulli", ValueError, "0/1"),
        (lambda X: X.astype(str).astype(object), "gaussian", TypeError, "expected numbers"),
    ],
)
def test_bad_values_raise_clear_errors(change, lik, error, match):
    m = _two_mod()
    m.mod["rna"].X = change(m.mod["rna"].X)
    with pytest.raises(error, match=match):
        setup_mudata(m, likelihoods={"rna": lik})


def test_bad_arguments_raise_clear_errors():
    m = _two_mod()
    with pytest.raises(ValueError, match="Unknown likelihood 'negbin'.*expected one of"):
        setup_mudata(m, likelihoods={"rna": "negbin"})
    with pytest.raises(KeyError, match="'atac' is not in the MuData"):
        setup_mudata(m, likelihoods={"atac": "nb"})
    with pytest.raises(KeyError, match="Layer 'counts' not found"):
        setup_mudata(m, likelihoods={"rna": "nb"}, layer={"rna": "counts"})
    with pytest.raises(TypeError, match="mudata.MuData"):
        setup_mudata(m.mod["rna"], likelihoods={"rna": "nb"})
    with pytest.raises(RegistrationError, match="setup_mudata"):
        get_registry(_two_mod())


def test_observation_without_any_registered_modality_is_rejected():
    m = _two_mod()  # 'd' has only protein, so registering rna alone leaves it with nothing
    with pytest.raises(ValueError, match=r"1 observation\(s\) have none.*'d'"):
        setup_mudata(m, likelihoods={"rna": "nb"})


def test_degenerate_features_warn():
    m = _two_mod()
    m.mod["rna"].X[:, 0] = 2.0
    with pytest.warns(DataWarning, match="constant"):
        setup_mudata(m, likelihoods={"rna": "nb", "protein": "nb"})
    clin = ad.AnnData(np.array([[np.nan, 1.0], [np.nan, 2.0], [np.nan, 0.5]], dtype=np.float32),
                      obs=pd.DataFrame(index=["a", "b", "c"]), var=pd.DataFrame(index=["x", "y"]))
    with pytest.warns(DataWarning, match="entirely NaN"):
        setup_mudata(md.MuData({"clinical": clin}), likelihoods={"clinical": "gaussian"})


def test_table_to_anndata_infers_and_overrides_types():
    df = pd.DataFrame({
        "age": [50.0, 61.5, np.nan, 70.0],
        "er": pd.Categorical(["pos", "neg", "pos", None]),
        "grade": pd.Categorical(["1", "2", "3", "2"]),
        "smoker": [True, False, True, False],
        "n_nodes": [0, 3, 5, 1],
    }, index=["p1", "p2", "p3", "p4"])
    a = table_to_anndata(df)
    assert a.var["mdlprob_type"].tolist() == ["gaussian", "categorical", "categorical", "bernoulli", "gaussian"]
    assert np.isnan(a.X[2, 0]) and np.isnan(a.X[3, 1])
    assert a.uns["categories"]["grade"] == ["1", "2", "3"]
    b = table_to_anndata(df, column_types={"er": "bernoulli", "n_nodes": "categorical"})
    assert b.var["mdlprob_type"].tolist()[1] == "bernoulli"
    m = md.MuData({"clinical": b})
    setup_mudata(m, likelihoods={"clinical": "mixed"}, column_types={"clinical": {"n_nodes": "gaussian"}})
    assert get_registry(m)["modalities"]["clinical"]["column_types"][-1] == "gaussian"
    with pytest.raises(ValueError, match="must be one of"):
        table_to_anndata(df, column_types={"age": "poisson"})
    with pytest.raises(ValueError, match="not in df"):
        table_to_anndata(df, column_types={"weight": "gaussian"})


def test_mixed_types_inferred_from_values_without_var_annotation():
    X = np.array([[0, 1.5, 2], [1, 2.5, 0], [1, np.nan, 1], [0, 0.1, 2]], dtype=np.float32)
    a = ad.AnnData(X, obs=pd.DataFrame(index=list("abcd")), var=pd.DataFrame(index=["flag", "level", "grade"]))
    m = md.MuData({"clinical": a})
    setup_mudata(m, likelihoods={"clinical": "mixed"})
    entry = get_registry(m)["modalities"]["clinical"]
    assert entry["column_types"] == ["bernoulli", "gaussian", "categorical"]
    assert entry["n_categories"] == [0, 0, 3]


def test_synthetic_is_reproducible_and_keeps_truth():
    a = mdlprob.datasets.synthetic(50, missing={"rna": 0.5}, seed=3)
    b = mdlprob.datasets.synthetic(50, missing={"rna": 0.5}, seed=3)
    np.testing.assert_array_equal(a.mod["rna"].X, b.mod["rna"].X)
    values, hidden = mdlprob.datasets.hidden_truth(a, "rna")
    assert a.mod["rna"].n_obs == 25 and hidden.all(1).sum() == 25
    assert a.obsm["z_true"].shape == (50, 6)
    assert set(a.obs["label"].cat.categories) == {"A", "B", "C"} and set(np.unique(a.obs["event"])) <= {0, 1}


def test_hide_modality_removes_rows_and_keeps_everything_else():
    m = _two_mod()
    m.obs["label"] = ["x", "y", "z", "w"]
    hidden = mdlprob.data.hide_modality(m, "rna", np.array([False, False, True, False]))
    assert hidden.obs_names.tolist() == m.obs_names.tolist()
    assert hidden.mod["rna"].obs_names.tolist() == ["a", "b"]
    assert hidden.obs["label"].tolist() == ["x", "y", "z", "w"]
    assert m.mod["rna"].n_obs == 3  # input untouched
    m.uns["note"] = {"k": [1, 2]}
    m.obsm["z"] = np.arange(8.0).reshape(4, 2)
    again = mdlprob.data.hide_modality(m, "rna", np.array([False, False, True, False]))
    assert again.uns["note"] == {"k": [1, 2]} and again.uns["note"] is not m.uns["note"]
    np.testing.assert_array_equal(again.obsm["z"], m.obsm["z"])
    with pytest.raises(ValueError, match="no modality at all.*'a'"):
        mdlprob.data.hide_modality(m, "rna", np.array([True, False, False, False]))
    with pytest.raises(ValueError, match="boolean array of shape"):
        mdlprob.data.hide_modality(m, "rna", np.array([1, 0, 1, 0]))
    with pytest.raises(KeyError, match="'atac'"):
        mdlprob.data.hide_modality(m, "atac", np.zeros(4, dtype=bool))


def test_register_outcome_adds_replaces_and_removes_it():
    mdata = mdlprob.datasets.synthetic(60, n_vars={"rna": 8, "protein": 4}, seed=1)
    with pytest.raises(RegistrationError, match="not registered"):
        mdlprob.data.register_outcome(mdata, {"key": "label", "type": "categorical"})
    setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb"})
    modalities = get_registry(mdata)["modalities"]
    mdlprob.data.register_outcome(mdata, {"key": "label", "type": "categorical"})
    assert get_registry(mdata)["outcome"]["classes"] == ["A", "B", "C"]
    mdlprob.data.register_outcome(mdata, {"time_key": "time", "event_key": "event", "type": "coxph", "weight": 2})
    assert get_registry(mdata)["outcome"] == {"time_key": "time", "event_key": "event", "type": "coxph", "weight": 2.0}
    with pytest.raises(KeyError, match="'age' is not a column of mdata.obs"):
        mdlprob.data.register_outcome(mdata, {"key": "age", "type": "categorical"})
    mdlprob.data.register_outcome(mdata, None)
    assert "outcome" not in get_registry(mdata) and get_registry(mdata)["modalities"] == modalities

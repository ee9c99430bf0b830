"""Covariates (batch, categorical, continuous) read from ``mdata.obs`` by ``setup_mudata``."""

from __future__ import annotations

import mudata as md
import numpy as np
import pandas as pd
import pytest
import torch

import mdlprob
from mdlprob.data import setup_mudata, tensors_from_mudata
from mdlprob.data._covariates import batch_column, covariate_array, n_covariates
from mdlprob.exceptions import RegistrationError

LIKELIHOODS = {"rna": "nb", "protein": "nb"}


@pytest.fixture
def mdata() -> md.MuData:
    data = mdlprob.datasets.synthetic(40, modalities=("rna", "protein"), n_vars={"rna": 20, "protein": 5},
                                      missing={"protein": 0.3}, batches=3)
    data.obs["site"] = np.where(np.arange(40) % 2 == 0, "north", "south")
    data.obs["age"] = np.linspace(20.0, 80.0, 40)
    return data


def _setup(data: md.MuData, **kwargs) -> None:
    setup_mudata(data, likelihoods=LIKELIHOODS, **kwargs)


def test_registry_records_categories_and_standardisation(mdata):
    _setup(mdata, batch_key="batch", categorical_covariate_keys=["site"], continuous_covariate_keys=["age"])
    entry = mdata.uns["mdlprob"]["covariates"]
    assert entry["batch_key"] == "batch"
    assert entry["categorical_keys"] == ["batch", "site"]
    assert entry["categories"] == {"batch": ["batch0", "batch1", "batch2"], "site": ["north", "south"]}
    assert entry["continuous_keys"] == ["age"]
    assert entry["continuous_mean"][0] == pytest.approx(50.0)
    assert n_covariates(entry) == 3 + 2 + 1


def test_no_covariates_leaves_registry_and_tensors_as_before(mdata):
    _setup(mdata)
    assert "covariates" not in mdata.uns["mdlprob"]
    assert tensors_from_mudata(mdata, mdata.uns["mdlprob"]).covariates is None


def test_tensors_carry_one_hot_and_standardised_covariates(mdata):
    _setup(mdata, batch_key="batch", continuous_covariate_keys=["age"])
    tensors = tensors_from_mudata(mdata, mdlprob.data.get_registry(mdata))
    cov = tensors.covariates.numpy()
    assert cov.shape == (40, 4)
    np.testing.assert_array_equal(cov[:, :3].argmax(1), mdata.obs["batch"].cat.codes.to_numpy())
    np.testing.assert_array_equal(cov[:, :3].sum(1), 1.0)
    assert cov[:, 3].mean() == pytest.approx(0.0, abs=1e-6)
    assert cov[:, 3].std() == pytest.approx(1.0, abs=1e-5)
    batch = tensors.batch(torch.as_tensor([4, 7]))
    np.testing.assert_array_equal(batch["covariates"].numpy(), cov[[4, 7]])
    assert tensors.subset(torch.as_tensor([1, 2])).covariates.shape == (2, 4)


def test_nan_batch_raises_naming_rows(mdata):
    mdata.obs["batch"] = mdata.obs["batch"].astype(object)
    mdata.obs.loc[["obs3", "obs11"], "batch"] = np.nan
    with pytest.raises(ValueError, match=r"'batch'.*2 row\(s\) \(obs3, obs11\)"):
        _setup(mdata, batch_key="batch")


def test_non_finite_continuous_raises_naming_rows(mdata):
    mdata.obs.loc["obs5", "age"] = np.inf
    with pytest.raises(ValueError, match=r"'age'.*obs5"):
        _setup(mdata, continuous_covariate_keys=["age"])


def test_bad_covariate_arguments_raise(mdata):
    with pytest.raises(KeyError, match="'donor'"):
        _setup(mdata, batch_key="donor")
    with pytest.raises(TypeError, match="list of column names"):
        _setup(mdata, categorical_covariate_keys="site")
    with pytest.raises(ValueError, match="more than once"):
        _setup(mdata, batch_key="site", categorical_covariate_keys=["site"])
    with pytest.raises(TypeError, match="expected numbers"):
        _setup(mdata, continuous_covariate_keys=["site"])


def test_unseen_category_raises_naming_column_and_values(mdata):
    _setup(mdata, batch_key="batch", categorical_covariate_keys=["site"])
    registry = mdlprob.data.get_registry(mdata)
    new = mdata.copy()
    new.obs["site"] = new.obs["site"].replace({"south": "east"})
    with pytest.raises(RegistrationError, match=r"'site'.*\['east'\].*north"):
        tensors_from_mudata(new, registry)
    new = mdata.copy()
    del new.obs["batch"]
    with pytest.raises(KeyError, match="'batch' is not in mdata.obs"):
        tensors_from_mudata(new, registry)


def test_categories_are_matched_by_label_not_code(mdata):
    """New data whose categorical column lists its categories in another order get the training codes."""
    _setup(mdata, categorical_covariate_keys=["site"])
    entry = mdata.uns["mdlprob"]["covariates"]
    obs = pd.DataFrame({"site": pd.Categorical(["south", "north"], categories=["south", "north"])})
    np.testing.assert_array_equal(covariate_array(obs, entry), [[0, 1], [1, 0]])


def test_covariates_survive_an_h5mu_round_trip(mdata, tmp_path):
    _setup(mdata, batch_key="batch", continuous_covariate_keys=["age"])
    del mdata.uns["truth"], mdata.uns["batch_effect"]
    mdata.write(tmp_path / "d.h5mu")
    back = md.read_h5mu(tmp_path / "d.h5mu")
    registry = mdlprob.data.get_registry(back)
    assert registry["covariates"] == mdlprob.data.get_registry(mdata)["covariates"]
    np.testing.assert_array_equal(tensors_from_mudata(back, registry).covariates,
                                  tensors_from_mudata(mdata, registry).covariates)


def test_batch_column_checks_the_batch(mdata):
    _setup(mdata, batch_key="batch")
    entry = mdata.uns["mdlprob"]["covariates"]
    assert batch_column(entry, "batch2") == (slice(0, 3), 2)
    with pytest.raises(ValueError, match=r"training batches of 'batch'.*'batch9'"):
        batch_column(entry, "batch9")
    with pytest.raises(ValueError, match="batch_key"):
        batch_column(None, "batch0")


def test_backed_batches_carry_covariates(mdata, tmp_path):
    from mdlprob.data._backed import rebatch

    _setup(mdata, batch_key="batch", continuous_covariate_keys=["age"])
    del mdata.uns["truth"], mdata.uns["batch_effect"]
    mdata.write(tmp_path / "d.h5mu")
    registry = mdlprob.data.get_registry(mdata)
    memory = tensors_from_mudata(mdata, registry).covariates
    backed = tensors_from_mudata(md.read_h5mu(tmp_path / "d.h5mu", backed="r"), registry)
    np.testing.assert_array_equal(backed.batch(torch.tensor([3, 1]))["covariates"], memory[[3, 1]])
    chunks = backed.chunks([0, 1], 20, np.ones(40, dtype=bool), seed=0)
    batches = list(rebatch(chunks, 40, 3, torch.device("cpu")))
    assert sum(len(b["covariates"]) for b in batches) == 40
    got = torch.cat([b["covariates"] for b in batches])
    assert sorted(map(tuple, got.tolist())) == sorted(map(tuple, memory.tolist()))

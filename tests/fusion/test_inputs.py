"""Inputs of the fusion baselines: MuData conversion, standardisation and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sksurv.util import Surv

import mdlprob
from mdlprob.exceptions import DataWarning, RegistrationError
from mdlprob.fusion import EarlyFusion, IntermediateFusion, LateFusion, fusion_inputs

from .conftest import subset


def test_fusion_inputs(data):
    mdata, X, P = data["mdata"], data["X"], data["presence"]
    assert list(X) == ["rna", "protein", "clinical"]
    registry = mdlprob.data.get_registry(mdata)
    np.testing.assert_array_equal(np.column_stack(list(P.values())), mdlprob.data.presence_mask(mdata, registry))
    assert X["rna"].shape == (300, 60) and X["protein"].shape == (300, 15)
    assert X["clinical"].shape == (300, 5 + 4)  # 'site' one-hot over its 4 categories
    assert np.isnan(X["protein"][~P["protein"]]).all()
    rows = np.asarray(mdata.obsmap["protein"]) - 1
    present = P["protein"]
    np.testing.assert_allclose(X["protein"][present], np.log1p(mdata.mod["protein"].X[rows[present]]))
    raw, _ = fusion_inputs(mdata, log1p=False)
    np.testing.assert_array_equal(raw["protein"][present], mdata.mod["protein"].X[rows[present]])
    site = X["clinical"][:, 5:]
    known = ~np.isnan(site).any(axis=1)
    np.testing.assert_array_equal(site[known].sum(axis=1), 1.0)
    with pytest.raises(RegistrationError, match="setup_mudata"):
        fusion_inputs(mdlprob.datasets.synthetic(20, seed=0))


def test_standardised_with_present_training_rows(data):
    X = {"a": np.array([[1.0, 5.0], [3.0, np.nan], [1e6, 1e6], [5.0, 7.0]]), "b": np.arange(4.0)[:, None]}
    P = {"a": np.array([True, True, False, True])}
    model = EarlyFusion(max_epochs=1, random_state=0).fit(X, [0, 1, 0, 1], presence=P)
    std = model.standardiser_
    np.testing.assert_allclose(std.mean_["a"], [3.0, 6.0])
    np.testing.assert_allclose(std.scale_["a"], [np.sqrt(8 / 3), 1.0])
    block = std.transform(X, {**P, "b": np.ones(4, dtype=bool)})["a"].numpy()
    np.testing.assert_allclose(block[1], [0.0, 0.0, 1.0])  # NaN -> mean, indicator set
    np.testing.assert_array_equal(block[2], 0.0)  # absent row
    Xc = {"a": np.array([[1.0, 2.0], [1.0, np.nan], [1.0, 3.0]])}
    with pytest.warns(DataWarning, match="NaN in every present training row"):
        EarlyFusion(max_epochs=1).fit({"a": Xc["a"], "b": np.array([[np.nan], [np.nan], [1.0]])}, [0, 1, 1],
                                      presence={"b": np.array([True, True, False])})


def test_clone_and_params():
    model = IntermediateFusion(task="survival", fusion="attention", n_latent=4, modality_dropout=0.5)
    params = clone(model).get_params()
    assert params["fusion"] == "attention" and params["n_latent"] == 4 and params["task"] == "survival"
    with pytest.raises(TypeError):
        EarlyFusion("survival")  # options are keyword-only


def _small():
    rng = np.random.default_rng(0)
    X = {"a": rng.normal(size=(30, 3)), "b": rng.normal(size=(30, 2))}
    P = {"a": np.ones(30, dtype=bool), "b": rng.random(30) < 0.5}
    return X, P, np.tile([0, 1, 2], 10), Surv.from_arrays(rng.random(30) < 0.7, rng.exponential(size=30))


def test_input_errors():
    X, P, y, _ = _small()
    model = EarlyFusion(max_epochs=2, random_state=0)
    with pytest.raises(TypeError, match="non-empty dict modality name"):
        model.fit(np.ones((30, 3)), y)
    with pytest.raises(ValueError, match="same number of rows"):
        model.fit({"a": X["a"], "b": X["b"][:20]}, y)
    with pytest.raises(ValueError, match="2-D array"):
        model.fit({"a": X["a"][:, 0]}, y)
    with pytest.raises(TypeError, match="hold numbers"):
        model.fit({"a": X["a"].astype(str)}, y)
    with pytest.raises(ValueError, match=r"presence\['b'\] to be a boolean array"):
        model.fit(X, y, presence={"b": P["b"].astype(int)})
    with pytest.raises(KeyError, match="not in `X`"):
        model.fit(X, y, presence={"c": P["b"]})
    with pytest.raises(ValueError, match="no present modality"):
        model.fit(X, y, presence={"a": ~P["b"], "b": P["b"] & False})
    with pytest.raises(ValueError, match="absent for every training observation"):
        model.fit(X, y, presence={"b": np.zeros(30, dtype=bool)})
    with pytest.raises(ValueError, match="infinite"):
        model.fit({"a": np.where(np.eye(30, 3) > 0, np.inf, X["a"])}, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        model.fit(X, np.zeros(30), presence=P)
    with pytest.raises(ValueError, match="one label per observation"):
        model.fit(X, y[:10], presence=P)
    model.fit(X, y, presence=P)
    with pytest.raises(KeyError, match="not seen at fit"):
        model.predict_proba({**X, "c": X["b"]})
    with pytest.raises(ValueError, match="has 2 features, but the model was fitted with 3"):
        model.predict_proba({"a": X["b"]})
    with pytest.raises(AttributeError, match="predict_risk needs task='survival'"):
        model.predict_risk(X)


def test_survival_target_errors():
    X, P, _, y = _small()
    model = LateFusion(task="survival", max_epochs=2, random_state=0)
    bad = y.copy()
    bad["time"][0] = -1.0
    with pytest.raises(ValueError, match="non-negative times"):
        model.fit(X, bad, presence=P)
    none = Surv.from_arrays(np.zeros(30, dtype=bool), y["time"])
    with pytest.raises(ValueError, match="at least one observed event"):
        model.fit(X, none, presence=P)
    with pytest.raises(ValueError, match="structured array"):
        model.fit(X, y["time"], presence=P)
    model.fit(X, y, presence=P)
    with pytest.raises(ValueError, match="`times` to be non-empty"):
        model.predict_survival_function(X, [-1.0], presence=P)
    with pytest.raises(AttributeError, match="predict_proba needs task='classification'"):
        model.predict_proba(X, presence=P)


@pytest.mark.parametrize(("model", "match"), [
    (EarlyFusion(task="regression"), "`task` to be one of"),
    (EarlyFusion(n_hidden=-1), "`n_hidden`"),
    (EarlyFusion(dropout=1.0), "`dropout`"),
    (EarlyFusion(batch_size=1), "`batch_size`"),
    (EarlyFusion(lr=0), "`lr`"),
    (LateFusion(combine="max"), "`combine` to be one of"),
    (IntermediateFusion(fusion="concat"), "`fusion` to be one of"),
    (IntermediateFusion(modality_dropout=1.0), "`modality_dropout`"),
    (IntermediateFusion(n_latent=0), "`n_latent`"),
    (IntermediateFusion(n_latent=400), "lower n_latent or use fusion='attention'"),
])
def test_parameter_errors(model, match):
    X, P, y, _ = _small()
    with pytest.raises(ValueError, match=match):
        model.fit(X, y, presence=P)


def test_predict_before_fit(data):
    X, P = subset(data["X"], data["test"]), subset(data["presence"], data["test"])
    for model in (EarlyFusion(), LateFusion(task="survival"), IntermediateFusion()):
        with pytest.raises(NotFittedError):
            model.predict(X, presence=P)

"""Joint (semi-supervised) training with an outcome decoded from the latent space."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mdlprob
from mdlprob.base._outcome import OutcomeHead, cox_partial_log_lik
from mdlprob.data import setup_mudata
from tests.conftest import LIKELIHOODS

CATEGORICAL = {"key": "label", "type": "categorical"}
COX = {"time_key": "time", "event_key": "event", "type": "coxph"}
HAZARD = {"time_key": "time", "event_key": "event", "type": "logistic_hazard", "n_bins": 6}


def _data(n_obs=300, *, unlabelled=0.5, seed=0):
    mdata = mdlprob.datasets.synthetic(n_obs, missing={"protein": 0.3}, n_vars={"rna": 60, "protein": 15}, seed=seed)
    hide = np.random.default_rng(seed).random(n_obs) < unlabelled
    mdata.obs["label"] = mdata.obs["label"].astype(object).where(~hide, None)
    mdata.obs.loc[hide, ["time", "event"]] = np.nan
    return mdata, hide


def test_cox_partial_likelihood_matches_a_direct_breslow_sum():
    rng = np.random.default_rng(1)
    n = 12
    time = rng.integers(1, 6, n).astype(float)  # ties on purpose
    event = rng.random(n) < 0.6
    present = rng.random(n) < 0.8
    risk = rng.normal(size=n)
    expected = np.zeros(n)
    for i in range(n):
        if event[i] and present[i]:
            at_risk = present & (time >= time[i])
            expected[i] = risk[i] - np.log(np.exp(risk[at_risk]).sum())
    got = cox_partial_log_lik(torch.tensor(risk), torch.tensor(time), torch.tensor(event), torch.tensor(present))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)


def test_logistic_hazard_likelihood_follows_its_convention():
    head = OutcomeHead({"type": "logistic_hazard", "cuts": [1.0, 2.0]}, n_latent=2, n_hidden=4)
    z = torch.zeros(3, 2)
    h = torch.sigmoid(head(z))[0]  # same hazards for every row
    y = {"present": torch.tensor([True, True, False]), "bin": torch.tensor([2, 1, 0]),
         "event": torch.tensor([True, False, True])}
    lp = head.log_prob(z, y)
    expected = [torch.log(1 - h[0]) + torch.log(1 - h[1]) + torch.log(h[2]), torch.log(1 - h[0]), 0.0]
    torch.testing.assert_close(lp, torch.stack([torch.as_tensor(e, dtype=lp.dtype) for e in expected]))
    torch.testing.assert_close(head.survival(z)[0], torch.cumprod(1 - h, 0))


@pytest.mark.parametrize(("outcome", "match", "exc"), [
    ({"key": "label", "type": "ordinal"}, "Unknown outcome type", ValueError),
    ({"key": "nope", "type": "categorical"}, "not a column of mdata.obs", KeyError),
    ({"time_key": "time", "type": "coxph"}, "required", ValueError),
    ({"key": "label", "type": "categorical", "weight": 0}, "weight", ValueError),
    ({**HAZARD, "n_bins": 1}, "n_bins", ValueError),
])
def test_bad_outcome_specifications_are_rejected(outcome, match, exc):
    mdata, _ = _data(60)
    with pytest.raises(exc, match=match):
        setup_mudata(mdata, likelihoods=LIKELIHOODS, outcome=outcome)


def test_bad_outcome_values_are_rejected():
    mdata, _ = _data(60)
    mdata.obs["one_class"] = "A"
    with pytest.raises(ValueError, match="need at least 2"):
        setup_mudata(mdata, likelihoods=LIKELIHOODS, outcome={"key": "one_class", "type": "categorical"})
    mdata.obs["no_event"] = 0
    with pytest.raises(ValueError, match="no events"):
        setup_mudata(mdata, likelihoods=LIKELIHOODS, outcome={**COX, "event_key": "no_event"})
    mdata.obs["neg_time"] = -mdata.obs["time"]
    with pytest.raises(ValueError, match="times <= 0"):
        setup_mudata(mdata, likelihoods=LIKELIHOODS, outcome={**COX, "time_key": "neg_time"})


def _fit(outcome, *, n_obs=300, epochs=60, model_cls=mdlprob.models.PoEVAE):
    mdlprob.settings.seed = 0
    mdata, hide = _data(n_obs)
    setup_mudata(mdata, likelihoods=LIKELIHOODS, outcome=outcome)
    model = model_cls(mdata, n_latent=6, n_hidden=64)
    model.train(max_epochs=epochs, batch_size=128, lr=3e-3, progress_bar=False)
    return model, mdata, hide


def test_joint_classifier_predicts_unlabelled_observations():
    model, mdata, hide = _fit(CATEGORICAL)
    pred = model.predict_outcome(mdata, n_samples=30)
    classes = ["A", "B", "C"]
    np.testing.assert_allclose(pred[classes].sum(1), 1.0, rtol=1e-6)
    assert ((pred[[f"{c}_lower" for c in classes]].to_numpy() <= pred[classes].to_numpy() + 1e-12).all())
    truth = mdlprob.datasets.synthetic(300, missing={"protein": 0.3}, n_vars={"rna": 60, "protein": 15}).obs["label"]
    acc = (pred["predicted"].astype(str).to_numpy()[hide] == truth.astype(str).to_numpy()[hide]).mean()
    majority = truth[hide].value_counts(normalize=True).max()
    assert acc > majority + 0.1, (acc, majority)


@pytest.mark.parametrize("outcome", [COX, HAZARD], ids=["coxph", "logistic_hazard"])
def test_joint_survival_ranks_unlabelled_patients(outcome):
    model, mdata, hide = _fit(outcome)
    pred = model.predict_outcome(mdata, n_samples=30)
    assert (pred["risk_lower"] <= pred["risk"] + 1e-9).all() and (pred["risk"] <= pred["risk_upper"] + 1e-9).all()
    full = mdlprob.datasets.synthetic(300, missing={"protein": 0.3}, n_vars={"rna": 60, "protein": 15}).obs
    c = mdlprob.metrics.harrell_c(full["event"].to_numpy()[hide].astype(bool), full["time"].to_numpy()[hide],
                                  pred["risk"].to_numpy()[hide])
    assert c > 0.6, c


def test_outcome_is_never_an_input_and_survives_save_load(tmp_path):
    model, mdata, _ = _fit(CATEGORICAL, n_obs=120, epochs=2)
    mdlprob.settings.seed = 3
    before = model.predict_outcome(mdata, n_samples=10)
    mdata.obs["label"] = None  # the labels are gone: nothing the model computes may change
    mdlprob.settings.seed = 3
    after = model.predict_outcome(mdata, n_samples=10)
    np.testing.assert_array_equal(before.drop(columns="predicted").to_numpy(), after.drop(columns="predicted").to_numpy())
    model.save(tmp_path / "m")
    loaded = mdlprob.models.PoEVAE.load(tmp_path / "m", mdata, accelerator="cpu")
    mdlprob.settings.seed = 3
    np.testing.assert_array_equal(loaded.predict_outcome(mdata, n_samples=10)["A"], before["A"])


def test_predict_outcome_needs_an_outcome():
    model, mdata, _ = _fit(None, n_obs=60, epochs=1)
    with pytest.raises(ValueError, match="no outcome"):
        model.predict_outcome(mdata)


def test_svi_refuses_an_outcome_it_would_ignore():
    mdata, _ = _data(60)
    setup_mudata(mdata, likelihoods=LIKELIHOODS, outcome=CATEGORICAL)
    model = mdlprob.models.PoEVAE(mdata, n_latent=3)
    with pytest.raises(ValueError, match="inference='fast'"):
        model.train(max_epochs=1, inference="svi", progress_bar=False)


@pytest.mark.parametrize("outcome", [CATEGORICAL, COX, HAZARD], ids=["categorical", "coxph", "logistic_hazard"])
def test_new_data_without_outcome_columns_are_predicted(outcome):
    model, mdata, _ = _fit(outcome, n_obs=120, epochs=2)
    mdlprob.settings.seed = 3
    before = model.predict_outcome(mdata, n_samples=10)
    fresh = mdata.copy()
    fresh.obs = fresh.obs.drop(columns=["label", "time", "event"])  # unseen patients: no outcome recorded
    mdlprob.settings.seed = 3
    after = model.predict_outcome(fresh, n_samples=10)
    np.testing.assert_array_equal(before.select_dtypes("number").to_numpy(), after.select_dtypes("number").to_numpy())

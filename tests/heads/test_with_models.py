from __future__ import annotations

import numpy as np
import pytest
from sksurv.util import Surv

import mdlprob
from mdlprob.heads import ClassifierHead, CoxPHHead


def test_heads_fit_on_posterior_samples_of_a_trained_model(trained, mdata):
    y_surv = Surv.from_arrays(mdata.obs["event"].to_numpy().astype(bool), mdata.obs["time"].to_numpy())
    cox = CoxPHHead(max_epochs=100, n_posterior_samples=20, random_state=0).fit_from_model(trained, mdata, y_surv, n_samples=5)
    samples = trained.get_latent(mdata, n_samples=5)
    risk, lower, upper = cox.predict_risk(samples, return_interval=True)
    assert risk.shape == (mdata.n_obs,) and (lower <= upper).all()
    labels = mdata.obs["label"].to_numpy()
    clf = ClassifierHead(max_epochs=100, n_posterior_samples=20, random_state=0).fit_from_model(trained, mdata, labels)
    proba = clf.predict_proba(samples)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    assert set(clf.classes_) == {"A", "B", "C"}
    assert isinstance(mdlprob.heads.CoxPHHead(), CoxPHHead)


@pytest.mark.parametrize("head_cls", ["CoxPHHead", "LogisticHazardHead", "WeibullAFTHead"])
def test_survival_function_without_times_gives_sksurv_step_functions(head_cls):
    """The scikit-survival habit: predict_survival_function(X) returns StepFunction objects."""
    from sksurv.functions import StepFunction
    from sksurv.util import Surv

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    time = rng.exponential(np.exp(-X[:, 0])) + 0.01
    y = Surv.from_arrays(rng.random(80) < 0.8, time)
    head = getattr(mdlprob.heads, head_cls)(prior_scale=1.0, max_epochs=100, random_state=0).fit(X, y)
    fns = head.predict_survival_function(X[:5])
    assert fns.shape == (5,) and all(isinstance(f, StepFunction) for f in fns)
    grid = head.unique_times_
    np.testing.assert_allclose(np.stack([f(grid) for f in fns]), head.predict_survival_function(X[:5], grid), rtol=1e-6)
    with pytest.raises(ValueError, match="needs evaluation times"):
        head.predict_survival_function(X[:5], return_interval=True)

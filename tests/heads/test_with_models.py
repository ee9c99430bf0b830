from __future__ import annotations

import numpy as np
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

"""Evidence that the heads carry the latent uncertainty of a trained model into their outputs.

(a) A patient's risk interval widens as modalities are withheld: fewer experts in the product
    of experts give a wider latent posterior, whose draws the head integrates over.
(b) With enough data, the Bayesian classifier on latent draws is calibrated on held-out
    patients (ECE <= 0.05).
"""

from __future__ import annotations

import pytest
from sksurv.util import Surv

import mdlprob
from mdlprob.heads import ClassifierHead, CoxPHHead
from mdlprob.metrics import expected_calibration_error
from tests.conftest import LIKELIHOODS

VIEWS = (None, ["clinical", "protein"], ["clinical"])  # all three, two, one modality


def _trained_poe(n_obs: int, *, n_vars: dict[str, int], n_latent: int, n_hidden: int, max_epochs: int):
    mdata = mdlprob.datasets.synthetic(n_obs, n_vars=n_vars, seed=3)  # no missing modality
    mdlprob.data.setup_mudata(mdata, likelihoods=LIKELIHOODS)
    model = mdlprob.models.PoEVAE(mdata, n_latent=n_latent, n_hidden=n_hidden)
    model.train(max_epochs=max_epochs, batch_size=128, lr=3e-3, progress_bar=False)
    return mdata, model


def _risk_interval_widths(n_obs: int = 300, n_samples: int = 30) -> list[float]:
    """Mean 90% risk-interval width of the SAME patients under each view of ``VIEWS``."""
    mdata, model = _trained_poe(n_obs, n_vars={"rna": 40, "protein": 12}, n_latent=4, n_hidden=32, max_epochs=20)
    y = Surv.from_arrays(mdata.obs["event"].to_numpy().astype(bool), mdata.obs["time"].to_numpy())
    head = CoxPHHead(max_epochs=100, n_posterior_samples=100, random_state=0)
    head.fit_from_model(model, mdata, y, n_samples=10)
    widths = []
    for given in VIEWS:
        _, lower, upper = head.predict_risk(model.get_latent(mdata, given=given, n_samples=n_samples),
                                            return_interval=True)
        widths.append(float((upper - lower).mean()))
    return widths


def _held_out_ece(n_obs: int = 3000, n_train: int = 2000) -> float:
    """ECE of ClassifierHead on ``n_obs - n_train`` patients it was not fitted on.

    The PoEVAE is unsupervised (it never sees ``label``) and is trained on every patient;
    the head sees the labels of the first ``n_train`` only.
    """
    mdata, model = _trained_poe(n_obs, n_vars={"rna": 100, "protein": 20}, n_latent=8, n_hidden=64, max_epochs=60)
    labels = mdata.obs["label"].cat.codes.to_numpy()
    Z = model.get_latent(mdata, n_samples=20)
    head = ClassifierHead(random_state=0).fit(Z[:, :n_train], labels[:n_train])
    proba = head.predict_proba(Z[:, n_train:])
    return expected_calibration_error(labels[n_train:], proba)


def test_risk_interval_widens_as_modalities_go_missing():
    widths = _risk_interval_widths()
    assert widths[0] < widths[1] < widths[2], widths


@pytest.mark.slow
def test_classifier_head_is_calibrated_on_held_out_patients():
    ece = _held_out_ece()
    assert ece <= 0.05, ece

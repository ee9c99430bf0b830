"""Expected and realised value of measuring a missing view."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sksurv.util import Surv

import mdlprob
from mdlprob.data import presence_mask, setup_mudata
from mdlprob.heads import ClassifierHead, CoxPHHead, LatentHead
from mdlprob.interpret import expected_information_gain, gain_agreement, realised_information_gain
from mdlprob.interpret._augment import augmented, presence
from tests.conftest import LIKELIHOODS


@pytest.fixture
def classifier(trained, mdata):
    head = LatentHead(trained, ClassifierHead(max_epochs=30), n_samples=4, modality_latents=False)
    return head.fit(mdata, mdata.obs["label"].to_numpy())


def test_values_every_observation_lacking_the_view_by_its_presence_mask(trained, mdata):
    gain = expected_information_gain(trained, mdata, "protein", n_samples=4)
    lacking = ~presence_mask(mdata, trained.registry_)[:, trained.modalities.index("protein")]
    assert list(gain.index) == list(mdata.obs_names[lacking])
    assert list(gain.columns) == ["latent_entropy", "latent_entropy_gain"]
    assert np.isfinite(gain.to_numpy()).all()
    assert gain.attrs["modality"] == "protein" and gain.attrs["n_samples"] == 4


def test_a_product_of_experts_always_gains_from_one_more_expert(trained, mdata):
    # Gaussian experts multiply: precisions add, so every posterior shrinks when a view is added.
    gain = expected_information_gain(trained, mdata, "protein", n_samples=3)
    assert (gain["latent_entropy_gain"] > 0).all()


def test_no_observation_lacks_a_view_every_one_has(trained, mdata):
    gain = expected_information_gain(trained, mdata, "rna", n_samples=3)
    assert gain.empty and "latent_entropy_gain" in gain


def test_missingness_comes_from_the_registered_mask_not_from_values(mdata):
    mask = presence_mask(mdata, mdlprob.data.get_registry(mdata))
    mask[:5, 0] = False  # rna recorded as not measured for 5 observations that hold values
    mdata.obsm["measured"] = mask
    setup_mudata(mdata, likelihoods=LIKELIHOODS, mask_key="measured")
    trained_on = mdlprob.PoEVAE(mdata, n_latent=3, n_hidden=16)
    trained_on.train(max_epochs=1, progress_bar=False)
    rna = expected_information_gain(trained_on, mdata, "rna", n_samples=2)
    assert list(rna.index) == list(mdata.obs_names[:5])


def test_augmented_copies_hold_the_drawn_view_and_keep_the_rest(trained, mdata):
    part = mdlprob.data.subset(mdata, np.arange(6))
    draws = np.arange(2 * 6 * 12, dtype=np.float32).reshape(2, 6, 12)
    aug = augmented(trained, part, "protein", draws)
    assert list(aug.obs_names[:2]) == ["obs0|draw0", "obs1|draw0"] and aug.n_obs == 12
    assert presence(trained, aug)[:, 1].all()
    np.testing.assert_array_equal(mdlprob.data.dense_values(aug, "protein"), draws.reshape(12, 12))
    rna = mdlprob.data.dense_values(part, "rna")
    np.testing.assert_array_equal(mdlprob.data.dense_values(aug, "rna"), np.vstack([rna, rna]))
    assert list(aug.obs["label"]) == list(part.obs["label"]) * 2


def test_same_seed_same_values(trained, mdata):
    mdlprob.settings.seed = 3
    a = expected_information_gain(trained, mdata, "protein", n_samples=3)
    mdlprob.settings.seed = 3
    b = expected_information_gain(trained, mdata, "protein", n_samples=3)
    pd.testing.assert_frame_equal(a, b)


def test_a_classifier_head_adds_interval_and_decision_columns(trained, mdata, classifier):
    gain = expected_information_gain(trained, mdata, "protein", target=classifier, n_samples=3)
    assert {"interval_width", "interval_width_gain", "decision_change"} <= set(gain)
    assert gain["decision_change"].between(0, 1).all()
    assert (gain["interval_width"] > 0).all()


def test_a_survival_head_on_latent_draws_splits_risk_at_the_median(trained, mdata):
    y = Surv.from_arrays(mdata.obs["event"].to_numpy().astype(bool), mdata.obs["time"].to_numpy())
    head = CoxPHHead(max_epochs=30).fit_from_model(trained, mdata, y, n_samples=3)
    gain = expected_information_gain(trained, mdata, "protein", target=head, n_samples=3)
    assert gain["decision_change"].between(0, 1).all()
    assert np.isfinite(gain.attrs["risk_threshold"])
    fixed = expected_information_gain(trained, mdata, "protein", target=head, n_samples=3, risk_threshold=1e9)
    assert fixed.attrs["risk_threshold"] == 1e9
    assert (fixed["decision_change"] == 0).all()  # nobody crosses a threshold no risk reaches


def test_obs_restricts_to_named_observations_lacking_the_view(trained, mdata):
    lacking = expected_information_gain(trained, mdata, "protein", n_samples=2).index
    some = expected_information_gain(trained, mdata, "protein", n_samples=2, obs=list(lacking[:3][::-1]))
    assert list(some.index) == list(lacking[:3])
    have = mdata.obs_names[~mdata.obs_names.isin(lacking)][0]
    with pytest.raises(ValueError, match="must name observations that lack 'protein'"):
        expected_information_gain(trained, mdata, "protein", obs=[have])
    with pytest.raises(KeyError, match="not observations"):
        expected_information_gain(trained, mdata, "protein", obs=["nobody"])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"modality": "mri"}, ValueError, "Expected modality to be one of"),
        ({"target": "risk"}, ValueError, "Expected target to be 'latent'"),
        ({"n_samples": 1}, ValueError, "n_samples to be an int >= 2"),
        ({"target": ClassifierHead()}, ValueError, "head fitted on the model's latent"),
    ],
)
def test_bad_arguments_are_named(trained, mdata, kwargs, error, match):
    args = {"modality": "protein", **kwargs}
    with pytest.raises(error, match=match):
        expected_information_gain(trained, mdata, args.pop("modality"), **args)


def test_a_head_of_another_model_is_refused(trained, mdata, classifier):
    other = mdlprob.PoEVAE(mdata, n_latent=4, n_hidden=16)
    other.train(max_epochs=1, progress_bar=False)
    with pytest.raises(ValueError, match="fitted on another model"):
        expected_information_gain(other, mdata, "protein", target=classifier)


def test_realised_gain_hides_then_reveals_the_view(trained, mdata, classifier):
    frame = realised_information_gain(trained, mdata, "protein", target=classifier, n_samples=3)
    have = presence_mask(mdata, trained.registry_)[:, 1]
    assert list(frame.index) == list(mdata.obs_names[have])
    assert (frame["realised_latent_entropy_gain"] > 0).all()  # a product of experts shrinks with the true view too
    assert set(np.unique(frame["realised_decision_change"])) <= {0.0, 1.0}
    summary = gain_agreement(frame)
    assert list(summary.index) == ["latent_entropy_gain", "interval_width_gain", "decision_change"]
    assert summary["spearman_rho"].between(-1, 1).all() and (summary["n_obs"] == have.sum()).all()


def test_gain_agreement_refuses_other_frames():
    with pytest.raises(ValueError, match="output of realised_information_gain"):
        gain_agreement(pd.DataFrame({"a": [1.0]}))


def test_an_ensemble_is_refused_with_the_fix(mdata):
    ensemble = mdlprob.models.Ensemble("PoEVAE", mdata, n_models=2, n_latent=2, n_hidden=8)
    with pytest.raises(TypeError, match=r"pass one of its members \(ensemble.members_\[0\]\)"):
        expected_information_gain(ensemble, mdata, "protein")

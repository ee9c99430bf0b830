"""LatentHead: latent draws with modality dropout, covariates and presence, and a learned prior per group."""

from __future__ import annotations

import numpy as np
import pytest
from sksurv.util import Surv

import mdlprob
from mdlprob.data import hide_modality
from mdlprob.heads import ClassifierHead, CoxPHHead, LatentHead, LogisticHazardHead, WeibullAFTHead


@pytest.fixture(scope="module")
def fitted_model():
    mdlprob.settings.seed = 0
    mdata = mdlprob.datasets.synthetic(300, missing={"protein": 0.3}, n_vars={"rna": 40, "protein": 12}, seed=3)
    mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb", "clinical": "mixed"})
    model = mdlprob.PoEVAE(mdata, n_latent=4, n_hidden=32)
    model.train(max_epochs=30, batch_size=64, lr=3e-3, progress_bar=False)
    return model, mdata


def _surv(mdata):
    return Surv.from_arrays(mdata.obs["event"].to_numpy().astype(bool), mdata.obs["time"].to_numpy())


def test_inputs_are_latent_covariates_and_presence(fitted_model):
    model, mdata = fitted_model
    est = LatentHead(model, CoxPHHead(prior_scale="auto", max_epochs=100), covariates=["age", "smoker"],
                     modality_latents=False, n_samples=4, random_state=0).fit(mdata, _surv(mdata))
    assert est.feature_names_ == ["z1", "z2", "z3", "z4", "age", "smoker", "has_rna", "has_protein", "has_clinical"]
    assert list(est.feature_groups_) == ["latent"] * 4 + ["covariate"] * 2 + ["presence"] * 3
    X = est.transform(mdata)
    assert X.shape == (4, mdata.n_obs, 9)
    present = model.tensors(mdata).presence.numpy()
    np.testing.assert_array_equal(X[0, :, 6:] + 0.5, present)  # no dropout at prediction
    np.testing.assert_allclose(X[0, :, 4:6].mean(0), 0.0, atol=0.05)  # standardised with training statistics
    assert est.head_.prior_scale_.shape == (3,)


def test_dropout_shows_the_head_posteriors_without_a_view(fitted_model):
    model, mdata = fitted_model
    est = LatentHead(model, ClassifierHead(max_epochs=50), modality_dropout=0.5, n_samples=50, random_state=0,
                     modality_latents=False)
    est.fit(mdata, mdata.obs["label"].to_numpy())
    X = est._features(mdata, fit=True)
    present = model.tensors(mdata).presence.numpy()
    seen = X[..., -3:] + 0.5
    complete = present.sum(1) == 3
    dropped = 1.0 - seen[:, complete].sum(-1).mean() / 3.0
    assert 0.1 < dropped < 0.25  # one of three views dropped in about half the draws
    assert (seen.sum(-1) >= 1).all() and (seen <= present[None]).all()  # never the last view, never an absent one


def test_every_survival_head_predicts_risk_and_curves(fitted_model):
    model, mdata = fitted_model
    y = _surv(mdata)
    for head in (CoxPHHead(max_epochs=50), WeibullAFTHead(max_epochs=50), LogisticHazardHead(max_epochs=50, n_bins=4)):
        est = LatentHead(model, head, covariates=["age"], n_samples=3, random_state=0, modality_latents=False)
        est = est.fit(mdata, y)
        risk, lower, upper = est.predict_risk(mdata, return_interval=True)
        assert risk.shape == (mdata.n_obs,) and (lower <= upper).all()
        surv = est.predict_survival_function(mdata, [1.0, 2.0])
        assert surv.shape == (mdata.n_obs, 2) and (np.diff(surv, axis=1) <= 1e-12).all()
        assert 0.0 <= est.score(mdata, y) <= 1.0
        with pytest.raises(AttributeError, match="has no predict_proba"):
            est.predict_proba(mdata)


def test_new_observations_with_fewer_views_get_wider_intervals(fitted_model):
    model, mdata = fitted_model
    est = LatentHead(model, CoxPHHead(max_epochs=200), n_samples=30, random_state=0, modality_latents=False)
    est = est.fit(mdata, _surv(mdata))
    has = model.tensors(mdata).presence.numpy()[:, 1]
    _, lo_all, hi_all = est.predict_risk(mdata[has].copy(), return_interval=True)
    fewer = hide_modality(mdata, "rna", np.ones(mdata.n_obs, dtype=bool))[has].copy()
    _, lo_few, hi_few = est.predict_risk(fewer, return_interval=True)
    assert (hi_few - lo_few).mean() > (hi_all - lo_all).mean()


def test_per_modality_latents_are_added_or_chosen_by_cross_validation(fitted_model):
    model, mdata = fitted_model
    y = mdata.obs["label"].to_numpy()
    with_blocks = LatentHead(model, ClassifierHead(max_epochs=50), modality_latents=True, n_samples=3,
                             random_state=0).fit(mdata, y)
    assert with_blocks.modality_latents_ and "z1|protein" in with_blocks.feature_names_
    X = with_blocks.transform(mdata)
    assert X.shape == (3, mdata.n_obs, len(with_blocks.feature_names_))
    lacks = ~model.tensors(mdata).presence.numpy()[:, 1]
    block = X[:, lacks][..., with_blocks.feature_names_.index("z1|protein")]
    assert abs(block.mean()) < 0.3 and 0.7 < block.std() < 1.3  # no protein: the block is a prior draw
    auto = LatentHead(model, ClassifierHead(prior_scale="auto", max_epochs=50), n_samples=3, random_state=0).fit(mdata, y)
    assert set(auto.selection_scores_) == {False, True}
    assert auto.modality_latents_ == (auto.selection_scores_[True] > auto.selection_scores_[False])


def test_bad_arguments_fail_clearly(fitted_model):
    model, mdata = fitted_model
    y = mdata.obs["label"].to_numpy()
    with pytest.raises(KeyError, match="Covariate 'nope' is neither a column of mdata.obs"):
        LatentHead(model, ClassifierHead(), covariates=["nope"]).fit(mdata, y)
    with pytest.raises(TypeError, match="Covariate 'label' of mdata.obs has dtype"):
        LatentHead(model, ClassifierHead(), covariates=["label"]).fit(mdata, y)
    with pytest.raises(TypeError, match="Expected `head` to be an mdlprob head"):
        LatentHead(model, object()).fit(mdata, y)
    with pytest.raises(ValueError, match="modality_latents` to be True, False or 'auto'"):
        LatentHead(model, ClassifierHead(), modality_latents="yes").fit(mdata, y)
    with pytest.raises(ValueError, match="modality_dropout"):
        LatentHead(model, ClassifierHead(), modality_dropout=1.0).fit(mdata, y)
    untrained = mdlprob.PoEVAE(mdata, n_latent=2, n_hidden=8)
    with pytest.raises(ValueError, match="trained mdlprob model"):
        LatentHead(untrained, ClassifierHead()).fit(mdata, y)


def test_sample_latent_writes_nothing_and_respects_the_mask(fitted_model):
    model, mdata = fitted_model
    before = set(mdata.obsm)
    mask = np.zeros((mdata.n_obs, 3), dtype=bool)
    draws = model.sample_latent(mdata, mask=mask, n_samples=200)
    assert set(mdata.obsm) == before
    np.testing.assert_allclose(draws.mean(0), 0.0, atol=0.3)  # nothing to condition on: the prior
    np.testing.assert_allclose(draws.std(0), 1.0, atol=0.2)
    with pytest.raises(ValueError, match="mask to be a boolean array of shape"):
        model.sample_latent(mdata, mask=np.ones((3, 3), dtype=bool))


def test_predictions_stream_in_chunks_of_observations(fitted_model, monkeypatch):
    """A small draw budget cuts the observations into chunks; the predictions keep their order and meaning."""
    model, mdata = fitted_model
    est = LatentHead(model, CoxPHHead(prior_scale=1.0, max_epochs=100), modality_latents=False, n_samples=8,
                     random_state=0).fit(mdata, _surv(mdata))
    whole = est.predict_risk(mdata, return_interval=True)
    monkeypatch.setattr("mdlprob.base._base_model.DRAW_BUDGET", 8 * 40 * 30)  # chunks of 40 observations
    chunked = est.predict_risk(mdata, return_interval=True)
    assert all(a.shape == b.shape == (mdata.n_obs,) for a, b in zip(whole, chunked, strict=True))
    assert np.corrcoef(whole[0], chunked[0])[0, 1] > 0.95
    assert (chunked[1] <= chunked[0]).all() and (chunked[0] <= chunked[2]).all()
    assert est.predict(mdata).shape == (mdata.n_obs,)


def test_given_conditions_as_if_the_other_views_were_absent(fitted_model):
    model, mdata = fitted_model
    est = LatentHead(model, ClassifierHead(max_epochs=30), covariates=["age"], modality_latents=False, n_samples=3,
                     random_state=0).fit(mdata, mdata.obs["label"].to_numpy())
    no_protein = hide_modality(mdata, "protein", model.tensors(mdata).presence[:, 1].numpy())
    mdlprob.settings.seed = 5
    given = est.transform(mdata, given=["rna", "clinical"])
    mdlprob.settings.seed = 5
    hidden = est.transform(no_protein)
    np.testing.assert_allclose(given, hidden, rtol=1e-6)
    assert (given[..., -2] == -0.5).all()  # has_protein says the posterior did not see it
    assert est.predict_proba(mdata, given=["rna"]).shape == (mdata.n_obs, 3)
    with pytest.raises(ValueError, match="given to be a non-empty list"):
        est.predict(mdata, given=["mri"])

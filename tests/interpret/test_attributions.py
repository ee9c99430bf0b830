"""Integrated-gradients attributions through encoder, posterior and decoder or head (Captum)."""

from __future__ import annotations

import numpy as np
import pytest

from mdlprob.heads import ClassifierHead, CoxPHHead, LatentHead, WeibullAFTHead
from mdlprob.interpret import feature_attributions

pytest.importorskip("captum", reason="feature attributions need Captum (the interpret extra)")


def test_imputation_attributions_are_complete_and_zero_at_the_baseline(trained, mdata):
    attr = feature_attributions(trained, mdata, "rna", target="protein", n_samples=2, n_steps=16, baseline="zeros")
    rna = mdata.mod["rna"]
    assert attr.shape == (rna.n_obs, rna.n_vars) and list(attr.columns) == list(rna.var_names)
    assert np.isfinite(attr.to_numpy()).all()
    zero = np.asarray(rna[attr.index].X) == 0
    assert zero.any() and (attr.to_numpy()[zero] == 0).all()  # x equal to the baseline: no path, no attribution
    attr = feature_attributions(trained, mdata, "rna", target="protein", n_samples=2, n_steps=32)
    total = np.abs(attr.to_numpy().sum(1)).mean()
    assert total > 0 and attr.attrs["delta"] < 0.1 * total  # attributions add up to f(x) - f(baseline)


def test_only_observations_holding_the_source_view_are_attributed(trained, mdata):
    attr = feature_attributions(trained, mdata, "protein", target="rna", features=["gene0", "gene1"], n_samples=1,
                                n_steps=8, baseline="mean")
    assert list(attr.index) == list(mdata.mod["protein"].obs_names)


def test_head_attributions_for_latent_heads(trained, mdata):
    y = mdata.obs["label"].to_numpy()
    head = ClassifierHead(max_epochs=20).fit_from_model(trained, mdata, y, n_samples=2)
    attr = feature_attributions(trained, mdata, "rna", target=head, class_="A", n_samples=1, n_steps=8)
    assert np.isfinite(attr.to_numpy()).all() and np.abs(attr.to_numpy()).sum() > 0
    latent = LatentHead(trained, ClassifierHead(max_epochs=20), covariates=["age"], modality_latents=False,
                        n_samples=2).fit(mdata, y)
    attr = feature_attributions(trained, mdata, "protein", target=latent, class_="B", n_samples=1, n_steps=8)
    assert attr.shape == mdata.mod["protein"].shape
    event, time = mdata.obs["event"].to_numpy().astype(bool), mdata.obs["time"].to_numpy()
    from sksurv.util import Surv

    cox = CoxPHHead(max_epochs=20).fit_from_model(trained, mdata, Surv.from_arrays(event, time), n_samples=2)
    assert np.isfinite(feature_attributions(trained, mdata, "rna", target=cox, n_samples=1, n_steps=8).to_numpy()).all()


def test_bad_arguments_are_named(trained, mdata):
    y = mdata.obs["label"].to_numpy()
    head = ClassifierHead(max_epochs=5).fit_from_model(trained, mdata, y, n_samples=2)
    with pytest.raises(ValueError, match="class_ to name one of"):
        feature_attributions(trained, mdata, "rna", target=head, class_="Z")
    with pytest.raises(ValueError, match="source to be one of"):
        feature_attributions(trained, mdata, "mri", target="rna")
    with pytest.raises(ValueError, match="target to be a fitted head or one of"):
        feature_attributions(trained, mdata, "rna", target="mri")
    with pytest.raises(KeyError, match="not features of 'protein'"):
        feature_attributions(trained, mdata, "rna", target="protein", features=["gene0"])
    from sksurv.util import Surv

    surv = Surv.from_arrays(mdata.obs["event"].to_numpy().astype(bool), mdata.obs["time"].to_numpy())
    weibull = WeibullAFTHead(max_epochs=5).fit_from_model(trained, mdata, surv, n_samples=2)
    with pytest.raises(TypeError, match="supports ClassifierHead and CoxPHHead"):
        feature_attributions(trained, mdata, "rna", target=weibull)

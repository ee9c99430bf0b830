"""save_head / load_head: a saved head predicts what it predicted before, without pickle."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sksurv.util import Surv

import mdlprob
from mdlprob.exceptions import ModelFileError, NotTrainedError
from mdlprob.heads import (
    ClassifierHead,
    CoxPHHead,
    LatentHead,
    LogisticHazardHead,
    WeibullAFTHead,
    load_head,
    read_head_metadata,
    save_head,
)

RNG = np.random.default_rng(0)
X = RNG.normal(size=(3, 60, 4))
LABELS = np.where(X[0, :, 0] > 0, "up", "down")
SURV = Surv.from_arrays(RNG.random(60) < 0.7, RNG.exponential(size=60) + 0.1)


@pytest.mark.parametrize(("head", "y", "method"), [
    (ClassifierHead(max_epochs=20, random_state=0), LABELS, "predict_proba"),
    (ClassifierHead(n_hidden=3, prior_scale={"a": 1.0, "b": 0.5}, max_epochs=20, random_state=0), LABELS, "predict_proba"),
    (CoxPHHead(prior_scale="eb", max_epochs=20, random_state=0), SURV, "predict_risk"),
    (LogisticHazardHead(max_epochs=20, random_state=0), SURV, "predict_risk"),
    (WeibullAFTHead(max_epochs=20, random_state=0), SURV, "predict_risk"),
])
def test_saved_head_predicts_the_same(tmp_path, head, y, method):
    head.fit(X, y, feature_groups=np.array(["a", "a", "b", "b"]))
    save_head(head, tmp_path / "h", metadata={"target": "y"})
    loaded = load_head(tmp_path / "h")
    assert type(loaded) is type(head) and loaded.get_params() == head.get_params()
    for a, b in zip(getattr(head, method)(X, return_interval=True), getattr(loaded, method)(X, return_interval=True),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    assert read_head_metadata(tmp_path / "h") == {"target": "y", "class": type(head).__name__}
    assert "pickle" not in (tmp_path / "h" / "head.json").read_text()
    with pytest.raises(FileExistsError, match="already exists"):
        save_head(head, tmp_path / "h")


def test_latent_head_round_trip_needs_its_model(tmp_path):
    mdlprob.settings.seed = 0
    mdata = mdlprob.datasets.synthetic(80, missing={"protein": 0.3}, n_vars={"rna": 12, "protein": 4}, seed=1)
    mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb"})
    model = mdlprob.PoEVAE(mdata, n_latent=2, n_hidden=8)
    model.train(max_epochs=2, progress_bar=False)
    est = LatentHead(model, ClassifierHead(max_epochs=10), n_samples=3, random_state=0).fit(mdata, mdata.obs["label"])
    save_head(est, tmp_path / "h")
    with pytest.raises(ValueError, match="pass the trained model"):
        load_head(tmp_path / "h")
    loaded = load_head(tmp_path / "h", model)
    assert loaded.feature_names_ == est.feature_names_ and loaded.modality_latents_ == est.modality_latents_
    mdlprob.settings.seed = 5
    expected = est.predict_proba(mdata)
    mdlprob.settings.seed = 5
    np.testing.assert_array_equal(loaded.predict_proba(mdata), expected)


def test_save_and_load_refuse_clearly(tmp_path):
    with pytest.raises(NotTrainedError, match="not fitted"):
        save_head(CoxPHHead(), tmp_path / "a")
    with pytest.raises(TypeError, match="Expected `head` to be one of"):
        save_head(object(), tmp_path / "a")
    with pytest.raises(ModelFileError, match="holds no saved head"):
        load_head(tmp_path)
    head = CoxPHHead(max_epochs=5).fit(X[0], SURV)
    save_head(head, tmp_path / "h")
    config = json.loads((tmp_path / "h" / "head.json").read_text())
    config["estimator"]["class"] = "os.system"
    (tmp_path / "h" / "head.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="this mdlprob reads format 1"):
        load_head(tmp_path / "h")

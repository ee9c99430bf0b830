"""The contract every mdlprob model passes."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mudata as md
import numpy as np
import pandas as pd

from .._settings import settings
from ..data import get_registry, setup_mudata
from ..data._mudata import make_mudata
from ..exceptions import NotTrainedError, RegistrationError


def check_model(model_cls, mdata: md.MuData, **init_kwargs) -> None:
    """Assert that ``model_cls`` honours the model contract on registered ``mdata``.

    Checks: a clear error before training and on unregistered data; one epoch gives a
    finite loss; latent shape and ``obsm`` keys; observations lacking a modality, and an
    evaluation set lacking a modality entirely, get finite latents; imputation layers;
    save/load gives identical latent means; the same seed gives the same model; values of a
    modality masked as absent do not move the posterior (mean and sd).
    """
    unregistered = make_mudata({m: mdata.mod[m].copy() for m in mdata.mod})
    try:
        model_cls(unregistered, **init_kwargs)
    except RegistrationError:
        pass
    else:
        msg = "building a model on unregistered data did not raise RegistrationError"
        raise AssertionError(msg)

    settings.seed = 0
    model = model_cls(mdata, **init_kwargs)
    try:
        model.get_latent(mdata)
    except NotTrainedError:
        pass
    else:
        msg = "get_latent before train did not raise NotTrainedError"
        raise AssertionError(msg)
    model.train(max_epochs=1, progress_bar=False)
    assert np.isfinite(model.history_["train_loss"][-1]), "non-finite training loss"
    latent = model.get_latent(mdata)
    n_latent = model._module_kwargs["n_latent"]
    assert latent.shape == (mdata.n_obs, n_latent)
    assert np.isfinite(latent).all()
    assert mdata.obsm["X_mdlprob_std"].shape == latent.shape
    samples = model.get_latent(mdata, n_samples=3)
    assert samples.shape == (3, mdata.n_obs, n_latent)

    first = model.modalities[0]
    lacking = make_mudata({m: mdata.mod[m] for m in mdata.mod if m != first})
    for key in _covariate_keys(get_registry(mdata)):
        lacking.obs[key] = mdata.obs.loc[lacking.obs_names, key]
    if lacking.n_obs:
        assert np.isfinite(model.get_latent(lacking)).all()
    imp = model.impute(mdata, first, n_samples=5)
    assert imp.shape == (mdata.n_obs, mdata.mod[first].n_vars)
    assert {"mean", "std"} <= set(imp.layers)

    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "m")
        loaded = model_cls.load(Path(tmp) / "m", mdata, accelerator="cpu")
        np.testing.assert_array_equal(loaded.get_latent(mdata), model.get_latent(mdata))

    settings.seed = 0
    again = model_cls(mdata, **init_kwargs)
    again.train(max_epochs=1, progress_bar=False)
    np.testing.assert_array_equal(again.get_latent(mdata), latent)
    _check_masked_values_are_ignored(model_cls, mdata, **init_kwargs)


def _check_masked_values_are_ignored(model_cls, mdata: md.MuData, **init_kwargs) -> None:
    """Values of a modality marked absent must not move the posterior, nor may its expert take part."""
    registry = get_registry(mdata)
    likelihoods = {m: e["likelihood"] for m, e in registry["modalities"].items()}
    target = max(likelihoods, key=lambda m: int((np.asarray(mdata.obsmap[m]) > 0).sum()) if m in mdata.mod else -1)
    others = [m for m in likelihoods if m != target]
    if not others:
        return
    data = mdata.copy()
    has = np.asarray(data.obsmap[target]) > 0
    other_present = np.column_stack([np.asarray(data.obsmap[m]) > 0 for m in others]).any(1)
    masked = np.flatnonzero(has & other_present)[::2]
    mask = pd.DataFrame(True, index=data.obs_names, columns=list(likelihoods))
    mask.iloc[masked, list(likelihoods).index(target)] = False
    data.obsm["mdlprob_check_mask"] = mask
    setup_mudata(data, likelihoods=likelihoods, mask_key="mdlprob_check_mask",
                 layer={m: e["layer"] for m, e in registry["modalities"].items() if e["layer"]},
                 **_covariate_setup(registry))
    model = model_cls(data, **init_kwargs)
    model.train(max_epochs=1, progress_bar=False)
    before = model.get_latent(data).copy()
    before_std = data.obsm["X_mdlprob_std"].copy()
    X = data.mod[target].X
    data.mod[target].X = X * 3 + 1  # every row of the modality, masked or not (stays valid for counts)
    after = model.get_latent(data)
    np.testing.assert_array_equal(after[masked], before[masked])
    np.testing.assert_array_equal(data.obsm["X_mdlprob_std"][masked], before_std[masked])
    unmasked = np.setdiff1d(np.flatnonzero(has), masked)
    assert not np.allclose(after[unmasked], before[unmasked]), "changing present values did not move the posterior"
    # conditioning only on a modality the observation lacks must give exactly the prior N(0, I)
    prior_mean = model.get_latent(data, given=[target])[masked]
    np.testing.assert_allclose(prior_mean, 0.0, atol=1e-6)
    np.testing.assert_allclose(data.obsm["X_mdlprob_std"][masked], 1.0, atol=1e-6)


def _covariate_setup(registry) -> dict:
    """The covariate arguments of ``setup_mudata`` that gave ``registry``."""
    cov = registry.get("covariates")
    if not cov:
        return {}
    batch = cov["batch_key"] or None
    return {"batch_key": batch, "categorical_covariate_keys": cov["categorical_keys"][1 if batch else 0:],
            "continuous_covariate_keys": cov["continuous_keys"]}


def _covariate_keys(registry) -> list[str]:
    cov = registry.get("covariates")
    return [*cov["categorical_keys"], *cov["continuous_keys"]] if cov else []

"""The contract every mdlprob model passes."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mudata as md
import numpy as np

from .._settings import settings
from ..data._mudata import make_mudata
from ..exceptions import NotTrainedError, RegistrationError


def check_model(model_cls, mdata: md.MuData, **init_kwargs) -> None:
    """Assert that ``model_cls`` honours the model contract on registered ``mdata``.

    Checks: a clear error before training and on unregistered data; one epoch gives a
    finite loss; latent shape and ``obsm`` keys; observations lacking a modality, and an
    evaluation set lacking a modality entirely, get finite latents; imputation layers;
    save/load gives identical latent means; the same seed gives the same model.
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

"""Image modalities (pixels flattened in X, ``uns["image_shape"]``) get convolutional experts."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

import mdlprob
from mdlprob.data import make_mudata, setup_mudata
from mdlprob.nn import ConvDecoder, ConvEncoder
from mdlprob.testing import check_model

SIZE = 16


def _scans(n_obs: int = 60, *, missing_t2: int = 15, seed: int = 0):
    """Two 'sequences' of a disc whose position and radius follow a 2-d latent, plus a vector view."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n_obs, 2))
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    cx, r = 0.5 + 0.15 * z[:, :1, None], 0.25 + 0.08 * np.tanh(z[:, 1:, None])
    disc = 1 / (1 + np.exp((np.sqrt((xx - cx) ** 2 + (yy - 0.5) ** 2) - r) * 30))
    names = [f"s{i}" for i in range(n_obs)]

    def view(img, name):
        a = ad.AnnData(img.reshape(n_obs, -1).astype(np.float32))
        a.obs_names, a.var_names = names, [f"{name}_{j}" for j in range(a.n_vars)]
        a.uns["image_shape"] = [1, SIZE, SIZE]
        return a

    t1 = view(0.8 * disc + 0.05 * rng.normal(size=disc.shape), "t1")
    t2 = view(0.3 + 0.5 * (1 - disc) * (disc > 0.1) + 0.05 * rng.normal(size=disc.shape), "t2")[missing_t2:].copy()
    clin = ad.AnnData(z @ rng.normal(size=(2, 3)) + 0.1 * rng.normal(size=(n_obs, 3)))
    clin.obs_names, clin.var_names = names, ["a", "b", "c"]
    mdata = make_mudata({"t1": t1, "t2": t2, "clinical": clin}, obs_order=names)
    setup_mudata(mdata, likelihoods={"t1": "gaussian", "t2": "gaussian", "clinical": "gaussian"})
    return mdata


@pytest.fixture(scope="module")
def scans():
    return _scans()


def test_registry_records_image_shape_and_model_builds_conv_experts(scans):
    assert scans.uns["mdlprob"]["modalities"]["t1"]["image_shape"] == [1, SIZE, SIZE]
    assert "image_shape" not in scans.uns["mdlprob"]["modalities"]["clinical"]
    model = mdlprob.models.PoEVAE(scans, n_latent=4)
    assert isinstance(model.module.encoders["t1"], ConvEncoder)
    assert isinstance(model.module.decoders["t2"], ConvDecoder)
    assert not isinstance(model.module.encoders["clinical"], ConvEncoder)


@pytest.mark.parametrize("model_cls", [info.cls for info in mdlprob.models.all_models().values() if info.image_experts])
def test_image_models_pass_the_model_contract(scans, model_cls):
    check_model(model_cls, scans, n_latent=3)


def test_imputed_scan_layers_reshape_to_images(scans):
    model = mdlprob.models.PoEVAE(scans, n_latent=3)
    model.train(max_epochs=1, progress_bar=False)
    imp = model.impute(scans, "t2", n_samples=4, given=["t1"])
    assert imp.uns["image_shape"] == [1, SIZE, SIZE]
    sd = imp.layers["std"].reshape(-1, *imp.uns["image_shape"])
    assert sd.shape == (scans.n_obs, 1, SIZE, SIZE) and (sd > 0).all()
    assert (imp.layers["q05"] <= imp.layers["q95"]).all()


def test_bad_image_shape_is_rejected():
    mdata = _scans(10, missing_t2=0)
    mdata.mod["t1"].uns["image_shape"] = [1, SIZE, SIZE + 1]
    with pytest.raises(ValueError, match=r"C\*H\*W = 272 pixels but the modality has 256 features"):
        setup_mudata(mdata, likelihoods={"t1": "gaussian"})
    mdata.mod["t1"].uns["image_shape"] = [SIZE, SIZE]
    with pytest.raises(ValueError, match="three positive ints"):
        setup_mudata(mdata, likelihoods={"t1": "gaussian"})

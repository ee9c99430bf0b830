"""Property-based: random MuData layouts either raise a clear error at setup, or train and give finite outputs
without changing the input."""

from __future__ import annotations

import hashlib
import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed (pip install -e '.[dev]')")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import mdlprob  # noqa: E402

NAMES = st.sampled_from(["a", "é", "x y", "1", "cell/1", "ünï", "_", "Ω", "name.with.dots"])


@st.composite
def layouts(draw):
    n_obs = draw(st.integers(4, 30))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    prefix = draw(NAMES)
    obs_names = [f"{prefix}{i}" for i in range(n_obs)]
    mods, liks = {}, {}
    for k in range(draw(st.integers(1, 3))):
        lik = draw(st.sampled_from(["nb", "poisson", "gaussian", "bernoulli"]))
        n_vars = draw(st.integers(1, 5))
        rows = np.sort(rng.choice(n_obs, size=draw(st.integers(0, n_obs)), replace=False))
        if lik in ("nb", "poisson"):
            x = rng.poisson(3.0, size=(len(rows), n_vars)).astype(draw(st.sampled_from([np.float32, np.float64, np.int64])))
        elif lik == "bernoulli":
            x = rng.integers(0, 2, size=(len(rows), n_vars)).astype(np.float32)
        else:
            x = rng.normal(size=(len(rows), n_vars)).astype(draw(st.sampled_from([np.float32, np.float64])))
            if draw(st.booleans()):
                x[rng.random(x.shape) < 0.3] = np.nan
        if draw(st.booleans()) and lik != "gaussian":
            x = sp.csr_matrix(x)
        name = f"m{k}{draw(NAMES)}"
        adata = ad.AnnData(x, obs=pd.DataFrame(index=[obs_names[r] for r in rows]),
                           var=pd.DataFrame(index=[f"{name}_{draw(NAMES)}{j}" for j in range(n_vars)]))
        mods[name], liks[name] = adata, lik
    return mods, liks


def _digest(mdata) -> str:
    h = hashlib.sha256()
    for name, adata in mdata.mod.items():
        h.update(name.encode())
        x = adata.X
        for part in ((x.data, x.indices, x.indptr) if sp.issparse(x) else (np.ascontiguousarray(x),)):
            h.update(np.asarray(part).tobytes())
        h.update("|".join(adata.obs_names).encode() + b"#" + "|".join(adata.var_names).encode())
    return h.hexdigest()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layouts())
def test_random_layouts_raise_clearly_or_train_to_finite_outputs(layout):
    mods, liks = layout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData(mods)
        before = _digest(mdata)
        try:
            mdlprob.data.setup_mudata(mdata, likelihoods=liks)
        except (ValueError, KeyError, TypeError) as err:
            hypothesis.event(f"refused: {type(err).__name__}")
            assert len(str(err)) > 20  # a sentence, not a bare key
            assert _digest(mdata) == before
            return
        mdlprob.settings.seed = 0
        hypothesis.event("trained")
        model = mdlprob.PoEVAE(mdata, n_latent=2, n_hidden=4)
        model.train(max_epochs=2, batch_size=8, progress_bar=False)
        latent = model.get_latent(mdata)
        assert latent.shape == (mdata.n_obs, 2) and np.isfinite(latent).all()
        for name in liks:
            try:
                out = model.impute(mdata, name, n_samples=4)
            except ValueError as err:
                assert "No training observation" in str(err)
                continue
            assert out.shape == (mdata.n_obs, mods[name].n_vars)
            assert all(np.isfinite(layer).all() for layer in out.layers.values())
        assert np.isfinite(model.log_likelihood(mdata, n_samples=4)).all()
    assert _digest(mdata) == before

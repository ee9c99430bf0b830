"""``mdlprob.pl.embedding``: the latent through scanpy, coloured by obs columns."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

import mdlprob
from mdlprob.data import setup_mudata

pytest.importorskip("scanpy", reason="mdlprob.pl.embedding needs scanpy (the 'scanpy' extra)")


@pytest.fixture(scope="module")
def latent_mdata():
    mdata = mdlprob.datasets.synthetic(120, n_vars={"rna": 30, "protein": 8}, missing={"protein": 0.3}, batches=2)
    setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb", "clinical": "mixed"}, batch_key="batch")
    mdlprob.settings.seed = 0
    model = mdlprob.models.PoEVAE(mdata, n_latent=3, n_hidden=16)
    model.train(max_epochs=2, progress_bar=False)
    model.get_latent(mdata)
    return mdata


def test_embedding_draws_one_panel_per_colour_and_stores_the_umap(latent_mdata, tmp_path):
    mdata = latent_mdata.copy()
    fig = mdlprob.pl.embedding(mdata, color=["batch", "label", "mdlprob_presence"], path=tmp_path / "umap.png")
    assert isinstance(fig, Figure)
    assert len([a for a in fig.axes if a.collections]) == 3
    assert (tmp_path / "umap.png").stat().st_size > 0
    assert mdata.obsm["X_mdlprob_umap"].shape == (mdata.n_obs, 2)
    assert set(mdata.obs["mdlprob_presence"].cat.categories) == {"rna+protein+clinical", "rna+clinical"}
    stored = mdata.obsm["X_mdlprob_umap"].copy()
    mdlprob.pl.embedding(mdata, color="batch")  # reuses the stored UMAP
    np.testing.assert_array_equal(mdata.obsm["X_mdlprob_umap"], stored)


def test_embedding_latent_axes_into_a_callers_ax(latent_mdata):
    fig = Figure()
    ax = fig.add_subplot()
    assert mdlprob.pl.embedding(latent_mdata, color="batch", basis="latent", ax=ax) is fig
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(np.sort(np.asarray(offsets)[:, 0]), np.sort(latent_mdata.obsm["X_mdlprob"][:, 0]), rtol=1e-5)


def test_embedding_errors_name_the_fix(latent_mdata, monkeypatch):
    mdata = latent_mdata.copy()
    with pytest.raises(KeyError, match="not among"):
        mdlprob.pl.embedding(mdata, color="nope")
    del mdata.obsm["X_mdlprob"]
    with pytest.raises(KeyError, match="get_latent"):
        mdlprob.pl.embedding(mdata, color="batch")
    monkeypatch.setitem(sys.modules, "scanpy", None)  # as if scanpy were not installed
    with pytest.raises(ImportError, match=r"mdlprob\[scanpy\]"):
        mdlprob.pl.embedding(latent_mdata, color="batch")

"""Out-of-core data: backed .h5mu read in chunks must give the same values and statistics as in memory."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import mdlprob
from mdlprob.data import _backed, make_mudata, setup_mudata, tensors_from_mudata
from mdlprob.data._backed import BackedTensors, rebatch, streamed_loc_scale
from mdlprob.data._tensors import set_training_stats
from mdlprob.distributions import LIKELIHOODS
from mdlprob.exceptions import RegistrationError
from mdlprob.train._loop import Local, _epoch_fn

LIKS = {"rna": "nb", "protein": "nb", "clinical": "mixed"}


def _write(mdata: md.MuData, path) -> md.MuData:
    mdata.uns.pop("truth", None)
    mdata.write_h5mu(path)
    return md.read_h5mu(path, backed="r")


@pytest.fixture
def pair(tmp_path):
    """(in-memory, backed) copies of one dataset: RNA as CSR, protein dense and 30% absent, clinical with NaN."""
    m = mdlprob.datasets.synthetic(300, missing={"protein": 0.3}, n_vars={"rna": 40, "protein": 12}, seed=2)
    setup_mudata(m, likelihoods=LIKS)
    m.mod["rna"].X = sp.csr_matrix(m.mod["rna"].X)
    backed = _write(m, tmp_path / "d.h5mu")
    yield m, backed
    backed.file.close()


def _index_mudata(n: int, path) -> md.MuData:
    """A gaussian modality whose first column names the observation (20% absent), and a complete one."""
    keep = np.random.default_rng(0).random(n) > 0.2
    names = pd.Index([f"o{i}" for i in range(n)])
    vals = np.column_stack([np.arange(n), np.random.default_rng(1).normal(size=n)]).astype(np.float32)
    full = ad.AnnData(np.random.default_rng(2).normal(size=(n, 3)).astype(np.float32), obs=pd.DataFrame(index=names),
                      var=pd.DataFrame(index=["f0", "f1", "f2"]))
    part = ad.AnnData(vals[keep], obs=pd.DataFrame(index=names[keep]), var=pd.DataFrame(index=["index", "noise"]))
    m = make_mudata({"idx": part, "other": full}, obs_order=names)
    setup_mudata(m, likelihoods={"idx": "gaussian", "other": "gaussian"})
    return _write(m, path)


def _positions(backed: md.MuData, values: np.ndarray) -> np.ndarray:
    """Global row of each value of the ``idx`` modality's first column."""
    order = np.argsort([int(name[1:]) for name in backed.obs_names])
    return order[values.astype(int)]


def test_backed_batch_equals_in_memory(pair):
    mem, backed = pair
    a = tensors_from_mudata(mem, mem.uns["mdlprob"])
    b = tensors_from_mudata(backed, mdlprob.data.get_registry(backed))
    assert isinstance(b, BackedTensors)
    assert b.has_nan == {"rna": False, "protein": False, "clinical": True}
    idx = torch.randperm(300)[:77]
    ba, bb = a.batch(idx), b.batch(idx, torch.device("cpu"))
    torch.testing.assert_close(bb["presence"], ba["presence"])
    for mod in LIKS:
        torch.testing.assert_close(bb["x"][mod], ba["x"][mod])
        assert (bb["observed"][mod] is None) == (ba["observed"][mod] is None)
    torch.testing.assert_close(bb["observed"]["clinical"], ba["observed"]["clinical"])


def test_chunks_are_contiguous_shuffled_and_complete(tmp_path):
    backed = _index_mudata(1000, tmp_path / "i.h5mu")
    t = tensors_from_mudata(backed, mdlprob.data.get_registry(backed))
    keep = np.random.default_rng(3).random(1000) < 0.7
    seen = []
    for c, chunk in zip([3, 0, 2, 1], t.chunks([3, 0, 2, 1], 256, keep, seed=5), strict=True):
        present = chunk["presence"][:, 0].numpy()
        rows = _positions(backed, chunk["x"]["idx"][:, 0].numpy()[present])
        assert ((rows >= 256 * c) & (rows < 256 * (c + 1))).all()
        seen.append(rows)
    rows = np.concatenate(seen)
    expected = np.flatnonzero(keep & t.presence[:, 0].numpy())
    np.testing.assert_array_equal(np.sort(rows), expected)
    assert not np.array_equal(rows, np.sort(rows))
    backed.file.close()


def test_rebatch_cuts_a_stream_into_equal_batches_across_chunks():
    parts = [{"x": {"a": torch.arange(n0, n1).float()[:, None]}, "observed": {"a": None},
              "presence": torch.ones(n1 - n0, 1, dtype=torch.bool)} for n0, n1 in [(0, 7), (7, 9), (9, 30)]]
    out = list(rebatch(iter(parts), 30, 4, torch.device("cpu")))
    assert [len(b["presence"]) for b in out] == [8, 8, 7, 7]
    torch.testing.assert_close(torch.cat([b["x"]["a"] for b in out])[:, 0], torch.arange(30).float())


@pytest.mark.parametrize("lik", ["nb", "gaussian", "poisson", "bernoulli"])
def test_streamed_loc_scale_equals_set_stats(lik):
    rng = np.random.default_rng(0)
    x = rng.poisson(3.0, size=(500, 6)).astype(np.float32)
    if lik == "bernoulli":
        x = (x > 3).astype(np.float32)
    x[:, 5] = 2.0  # constant column: sd set to 1
    if lik == "gaussian":
        x[rng.random(x.shape) < 0.2] = np.nan
    reference = LIKELIHOODS[lik](6, 8, has_nan=lik == "gaussian")
    reference.set_stats(x)
    loc, scale = streamed_loc_scale(reference, (x[i:i + 64] for i in range(0, 500, 64)))
    torch.testing.assert_close(loc, reference.in_loc, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(scale, reference.in_scale, rtol=1e-5, atol=1e-5)


def test_set_training_stats_backed_matches_in_memory(pair):
    mem, backed = pair
    a, b = mdlprob.PoEVAE(mem, n_latent=3, n_hidden=8), mdlprob.PoEVAE(backed, n_latent=3, n_hidden=8)
    set_training_stats(b.module.likelihoods, b._tensors)
    assert b._tensors.stats_streamed
    for mod in LIKS:  # the sample holds every row here, so the head-bias initialisations agree too
        sa, sb = a.module.likelihoods[mod].state_dict(), b.module.likelihoods[mod].state_dict()
        stats = [k for k in sa if k in ("in_loc", "in_scale") or k.endswith("head.bias")]
        assert len(stats) == 3
        for key in stats:
            torch.testing.assert_close(sb[key], sa[key], rtol=1e-5, atol=1e-5, msg=f"{mod}.{key}")


def test_stats_sample_is_bounded(pair, monkeypatch):
    _, backed = pair
    monkeypatch.setattr(_backed, "SAMPLE_ROWS", 50)
    t = tensors_from_mudata(backed, mdlprob.data.get_registry(backed))
    assert t.stats_sample("rna").shape == (50, 40)
    assert t.stats_sample("protein").shape == (50, 12)


def test_backed_epoch_visits_each_training_row_once(tmp_path):
    backed = _index_mudata(600, tmp_path / "i.h5mu")
    t = tensors_from_mudata(backed, mdlprob.data.get_registry(backed))
    train = np.sort(np.random.default_rng(4).permutation(600)[:500])
    cfg = mdlprob.train.FitConfig(max_epochs=1, batch_size=32, lr=1e-3, weight_decay=0.0, early_stopping=False,
                                  patience=1, beta=1.0, kl_warmup_epochs=0, inference="fast", chunk_size=128,
                                  progress_bar=False, description="")
    plan, epoch = _epoch_fn(t, train, 16, torch.device("cpu"), cfg, Local())
    batches = list(epoch(plan(), 0))
    assert len(batches) == round(500 / 32)
    got = _positions(backed, np.concatenate([b["x"]["idx"][:, 0].numpy()[b["presence"][:, 0].numpy()] for b in batches]))
    np.testing.assert_array_equal(np.sort(got), train[t.presence[train, 0].numpy()])
    assert sum(len(b["presence"]) for b in batches) == 500
    backed.file.close()


def test_model_trains_on_backed_data(pair):
    mem, backed = pair
    model = mdlprob.PoEVAE(backed, n_latent=3, n_hidden=16)
    model.train(max_epochs=2, batch_size=64, train_size=0.8, chunk_size=100, progress_bar=False)
    assert model.is_trained_ and len(model.history_["val_loss"]) == 2
    assert all(np.isfinite(model.history_["train_loss"]))
    latent = model.get_latent(backed)
    np.testing.assert_allclose(model.get_latent(mem), latent, rtol=1e-4, atol=1e-5)
    assert model.impute(backed, "protein", n_samples=3).shape == (300, 12)


def test_csc_matrix_is_refused_with_a_fix(pair, tmp_path):
    mem, _ = pair
    mem.mod["rna"].X = sp.csc_matrix(mem.mod["rna"].X)
    backed = _write(mem, tmp_path / "csc.h5mu")
    with pytest.raises(RegistrationError, match="csr_matrix"):
        tensors_from_mudata(backed, mdlprob.data.get_registry(backed))
    backed.file.close()


def test_backed_batches_carry_the_outcome(tmp_path):
    m = mdlprob.datasets.synthetic(200, missing={"protein": 0.3}, n_vars={"rna": 20, "protein": 8}, seed=3)
    setup_mudata(m, likelihoods=LIKS, outcome={"key": "label", "type": "categorical"})
    mem = tensors_from_mudata(m, mdlprob.data.get_registry(m))
    backed = _write(m, tmp_path / "o.h5mu")
    t = tensors_from_mudata(backed, mdlprob.data.get_registry(backed))
    idx = torch.randperm(200)[:50]
    for key, value in mem.batch(idx)["outcome"].items():
        torch.testing.assert_close(t.batch(idx)["outcome"][key], value)
    model = mdlprob.PoEVAE(backed, n_latent=3, n_hidden=8)
    model.train(max_epochs=1, batch_size=32, chunk_size=64, progress_bar=False)
    assert np.isfinite(model.history_["train_loss"]).all()
    backed.file.close()

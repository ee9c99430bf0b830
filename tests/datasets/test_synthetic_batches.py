"""``synthetic(..., batches=K)``: batches with a known additive and multiplicative effect."""

from __future__ import annotations

import numpy as np
import pytest

from mdlprob.datasets import synthetic

SIZES = {"rna": 40, "protein": 10}


def test_without_batches_the_data_are_those_of_earlier_versions():
    plain = synthetic(80, n_vars=SIZES)
    assert "batch" not in plain.obs and "batch_effect" not in plain.uns
    no_effect = synthetic(80, n_vars=SIZES, batches=3, batch_effect=0.0)
    for m in ("rna", "protein", "clinical"):
        np.testing.assert_array_equal(no_effect.mod[m].X, plain.mod[m].X)
    one = synthetic(80, n_vars=SIZES, batches=1)
    assert list(one.obs["batch"].cat.categories) == ["batch0"]
    np.testing.assert_array_equal(one.mod["rna"].X, plain.mod["rna"].X)


def test_batch_effect_is_the_documented_shift_and_scale():
    data = synthetic(300, n_vars=SIZES, batches=3, batch_effect=0.5, seed=2)
    batch = data.obs["batch"].cat.codes.to_numpy()
    assert set(batch) == {0, 1, 2}
    assert list(data.obs["batch"].cat.categories) == ["batch0", "batch1", "batch2"]
    for m in ("rna", "protein"):
        effect = data.uns["batch_effect"][m]
        assert effect["shift"].shape == effect["scale"].shape == (3, SIZES[m])
        truth = data.uns["truth"][m]
        # log mean - log mean_batch_free = (s - 1) zW + a: its median over a batch's rows is about a
        # (zW is symmetric about 0), and a is of the order of batch_effect
        diff = np.log(truth["mean"]) - np.log(truth["mean_batch_free"])
        rows = batch == 1
        assert np.abs(effect["shift"][1]).mean() > 0.2
        np.testing.assert_allclose(np.median(diff[rows], 0), effect["shift"][1], atol=0.15)
    assert "mean_batch_free" not in data.uns["batch_effect"]["rna"]


def test_batches_are_reproducible_and_checked():
    a, b = synthetic(50, n_vars=SIZES, batches=2, seed=1), synthetic(50, n_vars=SIZES, batches=2, seed=1)
    np.testing.assert_array_equal(a.mod["rna"].X, b.mod["rna"].X)
    assert (a.obs["batch"] == b.obs["batch"]).all()
    with pytest.raises(ValueError, match="batches"):
        synthetic(50, batches=0)
    with pytest.raises(ValueError, match="batch_effect"):
        synthetic(50, batches=2, batch_effect=-1.0)


def test_batches_with_feature_links_affect_the_linked_protein():
    data = synthetic(100, n_vars=SIZES, batches=2, feature_links=True)
    truth = data.uns["truth"]["protein"]
    assert not np.allclose(truth["mean"], truth["mean_batch_free"])

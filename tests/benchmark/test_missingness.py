"""Invariants of the missingness scenarios: rates, dependence, cohorts, no mutation, seeds."""

from __future__ import annotations

import numpy as np
import pytest

import mdlprob
from mdlprob.benchmark import missingness
from mdlprob.benchmark._frame import dense_values, presence


@pytest.fixture(scope="module")
def full():
    return mdlprob.datasets.synthetic(400, missing={}, n_vars={"rna": 20, "protein": 6}, seed=3)


def _snapshot(m):
    return {"obs_names": list(m.obs_names), "obs": m.obs.copy(),
            **{f"X_{k}": dense_values(m, k) for k in m.mod}, **{f"n_{k}": m.mod[k].n_obs for k in m.mod}}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if k.startswith("X_"):
            np.testing.assert_array_equal(a[k], b[k])
        elif k == "obs":
            assert a[k].equals(b[k])
        else:
            assert a[k] == b[k]


SCENARIOS = [
    ("mcar", "protein", {}),
    ("block", "protein", {}),
    ("block", "protein", {"by": "label"}),
    ("mnar", "protein", {"by": "label"}),
    ("mnar", "protein", {"by": "latent"}),
    ("mnar", "protein", {"by": "event"}),
    ("entry_mcar", "clinical", {}),
]


@pytest.mark.parametrize(("name", "modality", "params"), SCENARIOS)
def test_input_unchanged_and_seeded(full, name, modality, params):
    before = _snapshot(full)
    out1, t1 = missingness.apply_scenario(name, full, modality=modality, rate=0.3, seed=5, **params)
    out2, t2 = missingness.apply_scenario(name, full, modality=modality, rate=0.3, seed=5, **params)
    _, t3 = missingness.apply_scenario(name, full, modality=modality, rate=0.3, seed=6, **params)
    _assert_same(before, _snapshot(full))
    np.testing.assert_array_equal(t1.entries, t2.entries)
    _assert_same(_snapshot(out1), _snapshot(out2))
    if not (name == "block" and params):  # cohorts by label: seeds may pick the same levels
        assert not np.array_equal(t1.entries, t3.entries)
    # truth = the input's values; hidden entries are unknown in the output, the rest unchanged
    np.testing.assert_array_equal(t1.values, dense_values(full, modality))
    hidden_view = dense_values(out1, modality)
    assert np.isnan(hidden_view[t1.entries]).all()
    known = ~t1.entries & ~np.isnan(t1.values)
    np.testing.assert_array_equal(hidden_view[known], t1.values[known])
    for other in full.mod:
        if other != modality:
            np.testing.assert_array_equal(dense_values(out1, other), dense_values(full, other))
    np.testing.assert_array_equal(out1.obs["label"].to_numpy(), full.obs["label"].to_numpy())


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.5, 0.9])
@pytest.mark.parametrize("name", ["mcar", "mnar", "block"])
def test_row_rates_achieved(full, name, rate):
    out, truth = missingness.apply_scenario(name, full, modality="protein", rate=rate, seed=1)
    assert truth.rows.sum() == round(rate * full.n_obs)
    assert truth.achieved_rate == pytest.approx(rate, abs=1 / full.n_obs)
    assert out["protein"].n_obs == full.n_obs - truth.rows.sum()
    np.testing.assert_array_equal(presence(out, "protein"), ~truth.rows)


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.6])
def test_entry_rate_achieved(full, rate):
    _, truth = missingness.entry_mcar(full, modality="clinical", rate=rate, seed=2)
    known = ~np.isnan(dense_values(full, "clinical"))
    assert truth.entries.sum() == round(rate * known.sum())
    assert not (truth.entries & ~known).any()
    assert truth.achieved_rate == pytest.approx(rate, abs=1e-3)


def test_mnar_depends_on_label(full):
    _, truth = missingness.mnar(full, modality="protein", rate=0.3, by="label", strength=3.0, seed=0)
    label = full.obs["label"].astype(str).to_numpy()
    is_c = label == "C"  # the last category is the more often missing one
    assert truth.rows[is_c].mean() > 2 * truth.rows[~is_c].mean()
    _, chosen = missingness.mnar(full, modality="protein", rate=0.3, by="label", level="A", strength=3.0, seed=0)
    assert chosen.rows[label == "A"].mean() > 2 * chosen.rows[label != "A"].mean()


def test_mnar_depends_on_latent_and_strength_zero_is_mcar(full):
    z = full.obsm["z_true"][:, 0]
    _, truth = missingness.mnar(full, modality="protein", rate=0.3, by="latent", strength=2.0, seed=0)
    assert z[truth.rows].mean() - z[~truth.rows].mean() > 0.8
    _, flat = missingness.mnar(full, modality="protein", rate=0.3, by="latent", strength=0.0, seed=0)
    assert abs(z[flat.rows].mean() - z[~flat.rows].mean()) < 0.3


def test_block_hides_whole_cohorts(full):
    _, truth = missingness.block(full, modality="protein", rate=0.3, by="label", seed=4)
    label = full.obs["label"].astype(str).to_numpy()
    for level in np.unique(label):
        hidden = truth.rows[label == level]
        assert hidden.all() or not hidden.any()
    assert truth.achieved_rate >= 0.3


def test_block_without_column_is_one_run(full):
    _, truth = missingness.block(full, modality="protein", rate=0.25, seed=4)
    idx = np.flatnonzero(truth.rows)
    gaps = np.diff(idx)
    assert (gaps == 1).sum() >= idx.size - 2  # consecutive, allowing one wrap-around
    assert idx.size == 100


def test_never_hides_the_only_modality():
    m = mdlprob.datasets.synthetic(200, modalities=("rna", "protein"), missing={"rna": 0.5},
                                   n_vars={"rna": 10, "protein": 4}, seed=0)
    only_protein = presence(m, "protein") & ~presence(m, "rna")
    _, truth = missingness.mcar(m, modality="protein", rate=0.4, seed=0)
    assert not truth.rows[only_protein].any()
    with pytest.raises(ValueError, match="only .* hold another modality"):
        missingness.mcar(m, modality="protein", rate=0.9, seed=0)


def test_bad_arguments(full):
    with pytest.raises(ValueError, match=r"rate in \[0, 1\)"):
        missingness.mcar(full, modality="protein", rate=1.0)
    with pytest.raises(KeyError, match="Expected modality"):
        missingness.mcar(full, modality="image", rate=0.1)
    with pytest.raises(ValueError, match="non-negative int"):
        missingness.mcar(full, modality="protein", rate=0.1, seed=-1)
    with pytest.raises(KeyError, match="obs column"):
        missingness.mnar(full, modality="protein", rate=0.1, by="stage")
    with pytest.raises(ValueError, match="Expected level"):
        missingness.mnar(full, modality="protein", rate=0.1, by="label", level="Z")
    with pytest.raises(ValueError, match="Expected scenario"):
        missingness.apply_scenario("mar", full, modality="protein", rate=0.1)
    no_z = mdlprob.datasets.breast_cancer()
    with pytest.raises(KeyError, match="z_true"):
        missingness.mnar(no_z, modality="expression", rate=0.1, by="latent")

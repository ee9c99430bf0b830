from __future__ import annotations

import mudata as md
import numpy as np
import pytest
from scipy.stats import spearmanr

from mdlprob.datasets import hidden_truth, synthetic_scans
from mdlprob.datasets._synthetic_scans import LABELS, LATENT_NAMES, LOAD_THRESHOLDS
from mdlprob.metrics import harrell_c


@pytest.fixture(scope="module")
def scans():
    return synthetic_scans(300, sequences=("t1", "t2", "flair", "pd"), size=40, seed=1)


def test_structure(scans):
    m = scans
    assert list(m.mod) == ["t1", "t2", "flair", "pd"] and m.n_obs == 300
    for name, adata in m.mod.items():
        assert adata.X.dtype == np.float32 and adata.shape == (300, 1600)
        assert adata.uns["image_shape"].dtype == np.int64 and tuple(adata.uns["image_shape"]) == (1, 40, 40)
        assert 0.0 <= adata.X.min() and adata.X.max() <= 1.0 and (adata.X == 0).any()
        assert list(adata.obs_names) == list(m.obs_names)
        assert adata.var_names[0] == f"{name}_px0"
        np.testing.assert_array_equal(m.uns["truth"][name]["values"], adata.X)
    assert m.obsm["z_true"].shape == (300, len(LATENT_NAMES))
    assert list(m.obs["label"].cat.categories) == list(LABELS)
    load = m.obs["lesion_load"].to_numpy()
    np.testing.assert_array_equal(m.obs["label"].cat.codes, np.searchsorted(LOAD_THRESHOLDS, load))
    assert m.obs["label"].value_counts().min() >= 60  # three roughly balanced classes
    assert set(m.obs["event"].unique()) == {0, 1} and (m.obs["time"] > 0).all()


def test_same_seed_same_scans():
    a = synthetic_scans(6, size=28, seed=3)
    b = synthetic_scans(6, size=28, seed=3)
    c = synthetic_scans(6, size=28, seed=4)
    np.testing.assert_array_equal(a["flair"].X, b["flair"].X)
    np.testing.assert_array_equal(a.obs["lesion_load"], b.obs["lesion_load"])
    assert not np.array_equal(a["flair"].X, c["flair"].X)


def test_lesions_drive_flair_label_and_outcome(scans):
    m = scans
    load, n_lesions = m.obs["lesion_load"].to_numpy(), m.obs["n_lesions"].to_numpy()
    flair = m.uns["truth"]["flair"]["mean"]  # noise-free images
    bright = (flair > 0.75).sum(1)  # only lesions are that bright in FLAIR
    assert (bright[n_lesions == 0] == 0).all() and (load[n_lesions == 0] == 0).all()
    assert (load[n_lesions > 0] > 0).all()
    assert spearmanr(bright, load)[0] > 0.9
    assert harrell_c(m.obs["event"].to_numpy(), m.obs["time"].to_numpy(), load) > 0.58


def test_sequence_contrasts_and_latent_anatomy(scans):
    m = scans
    t1, t2, flair = (m.uns["truth"][s]["mean"] for s in ("t1", "t2", "flair"))
    fluid = t2 > 0.8  # CSF and lesions: bright in T2, dark in T1
    assert (t1[fluid] < 0.35).mean() > 0.99
    free = m.obs["n_lesions"].to_numpy() == 0
    assert (flair[free][t2[free] > 0.8] < 0.3).mean() > 0.98  # FLAIR suppresses CSF
    z = m.obsm["z_true"]
    assert spearmanr((t1 > 0.05).sum(1), z[:, LATENT_NAMES.index("head_size")])[0] > 0.85
    ventricles = (t2[free] > 0.8).sum(1)
    assert spearmanr(ventricles, z[free, LATENT_NAMES.index("atrophy")])[0] > 0.8


def test_missing_sequences_and_hidden_truth():
    m = synthetic_scans(40, size=28, missing={"t2": 0.5, "flair": 0.5, "t1": 0.5}, seed=2)
    present = np.column_stack([np.asarray(m.obsmap[s]) > 0 for s in m.mod])
    assert present.any(1).all() and (~present).sum(0).min() > 0
    for j, s in enumerate(m.mod):
        assert m[s].n_obs == present[:, j].sum() <= 40
        assert abs(m[s].n_obs - 20) <= 10  # at most the given-back observations above 50%
        values, hidden = hidden_truth(m, s)
        assert values.shape == (40, 28 * 28)
        np.testing.assert_array_equal(hidden.all(1), ~present[:, j])
        assert not hidden[present[:, j]].any()
        rows = np.asarray(m.obsmap[s])[present[:, j]] - 1
        np.testing.assert_array_equal(values[present[:, j]], m[s].X[rows])


def test_h5mu_round_trip(tmp_path):
    m = synthetic_scans(5, size=32, missing={"t2": 0.4}, seed=0)
    m.write(tmp_path / "scans.h5mu")
    with md.set_options(pull_on_update=False):
        r = md.read_h5mu(tmp_path / "scans.h5mu")
    assert tuple(r["t2"].uns["image_shape"]) == (1, 32, 32)
    np.testing.assert_array_equal(hidden_truth(r, "t2")[1], hidden_truth(m, "t2")[1])
    assert r["t2"].X.reshape(-1, *r["t2"].uns["image_shape"]).shape == (3, 1, 32, 32)


@pytest.mark.parametrize("size", [28, 128])
def test_size_limits(size):
    m = synthetic_scans(2, sequences=("flair",), size=size)
    assert m["flair"].n_vars == size * size


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_obs": 1}, "n_obs"),
        ({"size": 27}, r"size to be an int in \[28, 128\]"),
        ({"size": 129}, "size"),
        ({"size": 64.0}, "size"),
        ({"sequences": ("t1", "dwi")}, "distinct names"),
        ({"sequences": ("t1", "t1")}, "distinct names"),
        ({"sequences": ()}, "distinct names"),
        ({"missing": {"t2": 1.0}}, r"rate in \[0, 1\)"),
        ({"missing": {"pd": 0.2}}, r"missing\['pd'\]"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    args = {"n_obs": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        synthetic_scans(args.pop("n_obs"), **args)

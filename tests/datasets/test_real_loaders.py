"""Loaders for the shared real datasets (skipped when the shared data folder is absent)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from mdlprob.datasets._citeseq import citeseq_pbmc
from mdlprob.datasets._ham10000 import ham10000_metadata
from mdlprob.datasets._medmnist import medmnist_npz
from mdlprob.datasets._mixomics import mixomics_breast
from mdlprob.datasets._paths import data_root
from mdlprob.datasets._tcga import tcga_survival


def _require(name: str) -> None:
    root = data_root()
    if not (root / name).is_dir():
        pytest.skip(f"shared dataset {name} not found under {root}; set MDLPROB_DATA")


def _check_structure(mdata, *, nan_rows_ok: bool = False) -> None:
    """Unique string names; each modality holds only present observations, no NaN-filled rows."""
    assert mdata.obs_names.is_unique
    assert all(isinstance(n, str) for n in mdata.obs_names[:20])
    for mod, adata in mdata.mod.items():
        assert adata.obs_names.is_unique
        assert adata.var_names.is_unique
        assert set(adata.obs_names) <= set(mdata.obs_names)
        assert int(np.asarray(mdata.obsm[mod]).sum()) == adata.n_obs
        X = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
        assert X.dtype == np.float32
        assert nan_rows_ok or not np.isnan(X).all(axis=1).any(), (
            f"{mod} has all-NaN rows"
        )
    assert mdata.var_names.is_unique


# --------------------------------------------------------------------------- TCGA


@pytest.fixture(scope="module")
def blca_mcat():
    _require("tcga_mcat_sig")
    return tcga_survival("blca", source="mcat")


def test_tcga_mcat_blca_shapes(blca_mcat):
    m = blca_mcat
    _check_structure(m)
    assert m.n_obs == 373
    assert set(m.mod) == {"rna", "cnv", "clinical"}
    assert m["rna"].shape == (373, 2814) and m["cnv"].shape == (373, 248)
    assert all(
        a.n_obs == 373 for a in m.mod.values()
    )  # every patient has every modality
    assert isinstance(m["rna"].X, np.ndarray) and m["rna"].X.dtype == np.float32
    assert not any(v.endswith("_rnaseq") for v in m["rna"].var_names)
    assert (m["cnv"].var["gene"] + "_cnv").tolist() == m["cnv"].var_names.tolist()
    assert set(np.unique(m["cnv"].X)) <= {-2.0, -1.0, 0.0, 1.0, 2.0}


def test_tcga_mcat_blca_outcomes_and_folds(blca_mcat):
    obs = blca_mcat.obs
    assert set(obs["event"].unique()) == {0, 1}
    assert obs["event"].mean() == pytest.approx(0.453, abs=0.005)  # 1 - censorship
    assert (obs["time"] >= 0).all() and obs["time"].median() == pytest.approx(
        17.6, abs=0.5
    )
    counts = obs["fold_0"].value_counts()
    assert (counts["train"], counts["val"]) == (298, 75)
    for k in range(5):
        assert obs[f"fold_{k}"].notna().all()
    val = pd.concat(
        [obs.index[obs[f"fold_{k}"] == "val"].to_series() for k in range(5)]
    )
    assert (
        val.is_unique and len(val) == 373
    )  # each patient validates in exactly one fold
    assert obs["n_slides"].sum() == 437


def test_tcga_clinical_has_covariates_only(blca_mcat):
    clin = blca_mcat["clinical"]
    assert set(clin.var_names) <= {"age", "is_female", "oncotree_code", "site"}
    assert {"age", "is_female"} <= set(clin.var_names)
    assert "oncotree_code" not in clin.var_names  # constant (BLCA) columns are dropped
    assert set(clin.var["mdlprob_type"]) <= {"gaussian", "bernoulli", "categorical"}
    assert not {"survival_months", "censorship", "train"} & set(clin.var_names)


@pytest.mark.parametrize(
    ("cancer", "n", "n_rna", "n_cnv", "n_mut", "event_rate"),
    [
        ("blca", 373, 1554, 256, 371, 0.453),
        ("brca", 956, 1558, 1333, 21, 0.136),
        ("luad", 453, 1555, 517, 864, 0.349),
    ],
)
def test_tcga_porpoise(cancer, n, n_rna, n_cnv, n_mut, event_rate):
    _require("tcga_porpoise_mutsig")
    m = tcga_survival(cancer, source="porpoise")
    _check_structure(m)
    assert m.n_obs == n
    assert (m["rna"].n_vars, m["cnv"].n_vars, m["mut"].n_vars) == (n_rna, n_cnv, n_mut)
    assert set(np.unique(m["mut"].X)) <= {0.0, 1.0}
    assert m.obs["event"].mean() == pytest.approx(event_rate, abs=0.005)
    assert [f"fold_{k}" for k in range(5)] == [
        c for c in m.obs.columns if c.startswith("fold_")
    ]
    if cancer == "brca":
        assert "oncotree_code" in m["clinical"].var_names  # 11 BRCA histologies
    if cancer == "luad":
        assert np.isnan(
            m["clinical"][:, "age"].X
        ).any()  # age missing for a few patients


def test_tcga_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"valid cancers are \['blca', 'luad'\]"):
        tcga_survival("brca", source="mcat", data_dir=tmp_path)
    with pytest.raises(ValueError, match="source must be one of"):
        tcga_survival("blca", source="survpath", data_dir=tmp_path)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- mixOmics


def test_mixomics_breast():
    _require("mixomics_breast_tcga")
    m = mixomics_breast()
    _check_structure(m)
    assert m.n_obs == 220
    assert m["mrna"].shape == (220, 200) and m["mirna"].shape == (220, 184)
    assert m["protein"].shape == (150, 142)
    train = m.obs_names[m.obs["split"] == "train"]
    assert len(train) == 150 and (m.obs["split"] == "test").sum() == 70
    assert set(m["protein"].obs_names) == set(
        train
    )  # test patients lack protein: absent, not zero-filled
    assert not (m["protein"].X == 0).all(axis=1).any()
    assert np.asarray(m.obsm["protein"]).sum() == 150
    assert m.obs["subtype"].value_counts().to_dict() == {
        "LumA": 110,
        "Basal": 66,
        "Her2": 44,
    }


# --------------------------------------------------------------------------- CITE-seq


@pytest.fixture(scope="module")
def citeseq():
    _require("citefuse_eccite_pbmc")
    return citeseq_pbmc(include_hto=True)


def test_citeseq_counts(citeseq):
    m = citeseq
    _check_structure(m)
    assert m.n_obs == 500
    assert (
        m["rna"].shape == (500, 19521)
        and m["adt"].shape == (500, 49)
        and m["hto"].shape == (500, 4)
    )
    for a in m.mod.values():
        assert sp.isspmatrix_csr(a.X) and a.X.dtype == np.float32
        assert np.array_equal(a.X.data, np.round(a.X.data)) and a.X.data.min() >= 0
    assert m["rna"].X.nnz == 663_563
    assert not any(g.startswith("hg19_") for g in m["rna"].var_names)
    assert m["rna"].var["gene_id"].str.startswith("hg19_").all()
    assert "CD4" in m["rna"].var_names and "CD4_adt" in m["adt"].var_names
    assert m["adt"].var["isotype_control"].sum() == 2


def test_citeseq_arguments(tmp_path):
    with pytest.raises(ValueError, match="min_cells"):
        citeseq_pbmc(min_cells=-1, data_dir=tmp_path)
    with pytest.raises(TypeError, match="include_hto"):
        citeseq_pbmc(include_hto="yes", data_dir=tmp_path)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- MedMNIST


def test_medmnist_pneumonia():
    _require("medmnist_pneumonia_balanced")
    m = medmnist_npz()
    _check_structure(m)
    assert m.n_obs == 3166 and m["image"].n_vars == 784
    assert tuple(m["image"].uns["image_shape"]) == (1, 28, 28)
    X = m["image"].X
    assert (
        isinstance(X, np.ndarray)
        and 0.0 <= X.min()
        and X.max() <= 1.0
        and X.max() > 0.5
    )
    assert m.obs["split"].value_counts().to_dict() == {
        "train": 2428,
        "test": 468,
        "val": 270,
    }
    assert m.obs["label"].dtype.kind == "i" and m.obs["label"].mean() == pytest.approx(
        0.5
    )


def test_medmnist_rgb_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    imgs = {
        s: rng.integers(0, 256, size=(n, 4, 5, 3), dtype=np.uint8)
        for s, n in (("train", 6), ("val", 2), ("test", 3))
    }
    arrays = {f"{s}_images": v for s, v in imgs.items()} | {
        f"{s}_labels": np.arange(len(v))[:, None] % 2 for s, v in imgs.items()
    }
    np.savez(tmp_path / "rgb.npz", **arrays)
    m = medmnist_npz(tmp_path / "rgb.npz")
    assert tuple(m["image"].uns["image_shape"]) == (3, 4, 5)
    assert m.n_obs == 11 and m["image"].n_vars == 60
    first = m["image"][m.obs_names[0]].X.reshape(3, 4, 5)
    np.testing.assert_allclose(
        first, np.moveaxis(imgs["train"][0], -1, 0) / 255.0, rtol=1e-6
    )
    np.savez(
        tmp_path / "vol.npz",
        train_images=np.zeros((2, 8, 8, 8), np.uint8),
        train_labels=np.zeros((2, 1)),
    )
    with pytest.raises(ValueError, match="not supported"):
        medmnist_npz(tmp_path / "vol.npz")
    with pytest.raises(FileNotFoundError, match="nothere.npz"):
        medmnist_npz(tmp_path / "nothere.npz")


# --------------------------------------------------------------------------- HAM10000


def test_ham10000_metadata():
    _require("ham10000_metadata")
    m = ham10000_metadata()
    _check_structure(m, nan_rows_ok=True)
    assert m.n_obs == 10015 and m.obs_names.str.startswith("ISIC_").all()
    assert m.obs["dx"].nunique() == 7 and m.obs["dx"].value_counts()["nv"] == 6705
    assert m.obs["lesion_id"].nunique() == 7470
    clin = m["clinical"]
    assert list(clin.var_names) == ["age", "sex", "localization"]
    assert clin.uns["categories"]["sex"] == ["female", "male"]
    assert "unknown" not in clin.uns["categories"]["localization"]
    assert np.isnan(clin.X).sum(axis=0).tolist() == [57, 57, 234]
    assert (
        np.isnan(clin.X).all(axis=1).sum() == 47
    )  # source rows with no covariate at all


def test_ham10000_unknown_is_missing(tmp_path):
    csv = tmp_path / "meta.csv"
    csv.write_text(
        "lesion_id,image_id,dx,dx_type,age,sex,localization\n"
        "L1,I1,nv,histo,40,male,back\nL1,I2,nv,histo,,unknown,unknown\nL2,I3,mel,consensus,70,female,face\n"
    )
    m = ham10000_metadata(csv)
    X = m["clinical"].X
    assert np.isnan(X[1]).all() and not np.isnan(X[[0, 2]]).any()
    assert m.obs["dx"].tolist() == ["nv", "nv", "mel"]


# --------------------------------------------------------------------------- missing data


@pytest.mark.parametrize(
    ("loader", "expected"),
    [
        (lambda d: tcga_survival("blca", data_dir=d), "tcga_mcat_sig"),
        (
            lambda d: tcga_survival("luad", source="porpoise", data_dir=d),
            "tcga_porpoise_mutsig",
        ),
        (lambda d: mixomics_breast(data_dir=d), "mixomics_breast_tcga"),
        (lambda d: citeseq_pbmc(data_dir=d), "citefuse_eccite_pbmc"),
        (lambda d: medmnist_npz(data_dir=d), "medmnist_pneumonia_balanced"),
        (lambda d: ham10000_metadata(data_dir=d), "ham10000_metadata"),
    ],
)
def test_missing_dataset_names_expected_path(tmp_path, loader, expected):
    with pytest.raises(FileNotFoundError) as err:
        loader(tmp_path)
    assert str((tmp_path / expected).resolve()) in str(err.value)

"""Smoke tests of the real-data evidence scripts benchmarks/survival_tcga.py and benchmarks/classify_mixomics.py.

Each script runs end to end in ``--quick`` mode (tiny models, few epochs) on the shared data and
must write complete, well-formed results; the tests skip when the dataset folder is absent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mdlprob.datasets._paths import data_root
from tests._bench import benchmark_module


def _require(dataset: str) -> None:
    if not (data_root() / dataset).is_dir():
        pytest.skip(f"shared dataset {dataset!r} not found under {data_root().resolve()} (set MDLPROB_DATA)")


@pytest.fixture(scope="module")
def survival():
    with benchmark_module("survival_tcga") as module:
        yield module


@pytest.fixture(scope="module")
def mixomics():
    with benchmark_module("classify_mixomics") as module:
        yield module


# ------------------------------------------------------------------------------ survival helpers
def test_hidden_rna_masks_are_nested_and_sized(survival):
    masks = {r: survival.hidden_rna(200, r, 3) for r in (0.0, 0.25, 0.5, 0.75)}
    assert [int(m.sum()) for m in masks.values()] == [0, 50, 100, 150]
    assert np.all(masks[0.5][masks[0.25]]) and np.all(masks[0.75][masks[0.5]])
    assert not np.array_equal(masks[0.5], survival.hidden_rna(200, 0.5, 4))


def test_standardise_fills_with_training_mean(survival):
    train = np.array([[1.0, 5.0], [3.0, np.nan], [np.nan, 5.0]])
    test = np.array([[np.nan, 7.0]])
    tr, te = survival._standardise(train, test)
    assert np.isfinite(tr).all() and np.isfinite(te).all()
    np.testing.assert_allclose(tr.mean(0), 0.0, atol=1e-12)
    assert te[0, 0] == pytest.approx(0.0)  # NaN -> training mean -> 0 after centring
    assert te[0, 1] == pytest.approx(2.0)  # constant training column: scale 1


@pytest.mark.timeout(600)
@pytest.mark.filterwarnings("ignore::mdlprob.exceptions.DataWarning")
def test_survival_quick_run(survival, tmp_path):
    _require("tcga_mcat_sig")
    table = survival.main(["--quick", "--cancers", "BLCA", "--folds", "1", "--rates", "0,0.5", "--out", str(tmp_path)])
    methods = {"poe+coxph", "poe_joint", "early", "late", "intermediate_kronecker", "intermediate_attention", "coxnet"}
    assert set(table["method"]) == methods
    assert len(table) == len(methods) * 2  # one fold, two rates
    assert table["harrell_c"].between(0, 1).all()
    saved = pd.read_csv(tmp_path / "survival_tcga.csv")
    assert len(saved) == len(table)
    bayes = table[table["method"].isin(["poe+coxph", "poe_joint"])]
    assert bayes.loc[bayes["missing_rna"] == 0, "width_without_rna"].isna().all()
    half = bayes[bayes["missing_rna"] == 0.5]
    assert (half[["width_with_rna", "width_without_rna"]] > 0).all().all()
    md = (tmp_path / "survival_tcga.md").read_text()
    snn = pd.read_csv(data_root() / "tcga_mcat_sig" / "results" / "ICCV"
                      / "SNNsm_nll_surv_a0.0_reg1e-04_5foldcv_gc32_sig" / "cindex.csv")
    blca = snn.loc[snn.iloc[:, 0].str.lower() == "blca", "Val C-Index (Mean)"].iloc[0]
    assert f"{blca:.3f}" in md and "SNN genomic-only" in md
    assert "| BLCA | poe_joint |" in md
    assert (tmp_path / "survival_tcga.png").stat().st_size > 0
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


# ----------------------------------------------------------------------------- mixomics helpers
def test_predicted_width_uses_the_predicted_class(mixomics):
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    lower = proba - np.array([[0.1, 0.5, 0.5], [0.5, 0.5, 0.2]])
    upper = proba + np.array([[0.1, 0.5, 0.5], [0.5, 0.5, 0.3]])
    assert mixomics.predicted_width(proba, lower, upper) == pytest.approx((0.2 + 0.5) / 2)


@pytest.mark.timeout(600)
@pytest.mark.filterwarnings("ignore::mdlprob.exceptions.DataWarning")
def test_mixomics_quick_run(mixomics, tmp_path):
    _require("mixomics_breast_tcga")
    table = mixomics.main(["--quick", "--out", str(tmp_path)])
    expected = ["poe+classifier", "poe_joint", "early", "late", "intermediate_kronecker",
                "intermediate_attention", "logreg_mrna_mirna"]
    assert table["method"].tolist() == expected
    assert (table["n_train"] == 150).all() and (table["n_test"] == 70).all()
    for m in ("accuracy", "macro_f1"):
        assert ((table[f"{m}_lo"] <= table[m]) & (table[m] <= table[f"{m}_hi"])).all()
        assert table[[m, f"{m}_lo", f"{m}_hi"]].stack().between(0, 1).all()
    bayes = table["method"].isin(["poe+classifier", "poe_joint"])
    assert table.loc[bayes, "prob_width_test"].between(0, 1, inclusive="right").all()
    assert table.loc[~bayes, "prob_width_test"].isna().all()
    assert len(pd.read_csv(tmp_path / "classify_mixomics.csv")) == len(expected)
    md = (tmp_path / "classify_mixomics.md").read_text()
    assert "| logreg_mrna_mirna |" in md and "test patients (mRNA, miRNA; 0 with protein)" in md
    assert not list(tmp_path.glob(".*"))

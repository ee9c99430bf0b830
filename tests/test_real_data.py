"""Real-data quality: the recommended configuration against the strongest baseline (slow; shared data).

Each test runs one task of ``benchmarks/real.py`` as the committed scoreboard does and fails
when mdlprob falls below the strongest baseline by more than the noise band measured there
(``benchmarks/results/real.md``: the 90% interval of the paired difference).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from mdlprob.datasets import data_root
from tests._bench import benchmark_module

pytestmark = pytest.mark.slow


def _needs(folder: str) -> None:
    if not (data_root() / folder).exists():
        pytest.skip(f"shared data set {folder!r} not found under {data_root()} (set MDLPROB_DATA)")


def _args(**kwargs) -> argparse.Namespace:
    base = {"quick": False, "data_dir": None, "seeds": None, "folds": 5, "rates": [0.5], "cancers": "BLCA",
            "fusion_epochs": 100, "out": Path("."), "tasks": []}
    return argparse.Namespace(**{**base, **kwargs})


def _board(real, rows):
    import pandas as pd

    return real.scoreboard(pd.DataFrame(rows))


def test_subtype_classification_ties_the_strongest_baseline():
    _needs("mixomics_breast_tcga")
    with benchmark_module("real") as real:
        board = _board(real, real.run_classification(_args(seeds=[0])))
    for _, row in board.iterrows():
        assert row["difference"] > -0.045, row.to_dict()  # 3 of 70 test patients; measured band about +-0.04
        mine = float(row["ECE mdlprob / best baseline ECE"].split(" / ")[0])
        assert mine < 0.10, row.to_dict()


def test_protein_imputation_stays_within_its_measured_gap_to_ridge():
    _needs("mixomics_breast_tcga")
    with benchmark_module("real") as real:
        rows = real.run_imputation(_args(seeds=[0]))
    board = _board(real, [r for r in rows if r["dataset"] == "mixOmics protein"])
    row = board.iloc[0]
    # measured -0.058 [-0.068, -0.048] (a regression guard; the goal, >= 0, is open in issue 13)
    assert row["difference"] > -0.08, row.to_dict()
    assert 0.85 <= float(row["coverage 90% (mdlprob)"]) <= 0.95, row.to_dict()


def test_survival_with_half_the_patients_lacking_rna_ties_the_strongest_baseline():
    _needs("tcga_mcat_sig")
    with benchmark_module("real") as real:
        board = _board(real, real.run_survival(_args(cancers="BLCA,LUAD")))
    for _, row in board.iterrows():  # measured at 50%: BLCA -0.017 [-0.039, +0.004], LUAD -0.029 [-0.052, -0.007]
        assert row["difference"] > -0.04, row.to_dict()
        assert np.isfinite(row["mdlprob"]) and row["mdlprob"] > 0.57, row.to_dict()

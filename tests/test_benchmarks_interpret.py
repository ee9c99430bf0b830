"""Smoke test of benchmarks/interpret.py (``--quick``, synthetic cohort, in-process)."""

from __future__ import annotations

import json

import pytest

from tests._bench import benchmark_module


@pytest.fixture(scope="module")
def interpret():
    with benchmark_module("interpret") as module:
        yield module


def test_quick_run_writes_agreement_contributions_and_figures(interpret, tmp_path):
    report = interpret.main(["--quick", "--cohorts", "synthetic", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "interpret.json").read_text())
    assert set(saved["results"]) == {"synthetic"} and saved["command"].endswith(str(tmp_path))
    res = report["results"]["synthetic"]
    assert {(r["view"], r["quantity"]) for r in res["agreement"]} == {
        (v, q) for v in ("rna", "protein", "clinical")
        for q in ("latent_entropy_gain", "interval_width_gain", "decision_change")}
    assert [r["modality"] for r in res["shapley"]] == ["rna", "protein", "clinical"]
    assert [r["n_modalities"] for r in res["cost_curve"]] == [0, 1, 2, 3]
    for kind in ("shapley", "cost", "acquisition"):
        assert (tmp_path / f"interpret_synthetic_{kind}.png").stat().st_size > 1000
    assert "| synthetic | rna | latent_entropy_gain |" in (tmp_path / "interpret.md").read_text()
    assert res["command"] == saved["command"]  # each cohort records the run that measured it


def test_unknown_cohort_is_refused(interpret):
    with pytest.raises(SystemExit):
        interpret.parse_args(["--cohorts", "brca"])

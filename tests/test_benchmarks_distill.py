"""Smoke test of benchmarks/distill.py: it runs end to end and writes every subset's three predictors."""

from __future__ import annotations

import json

import pytest

from tests._bench import benchmark_module


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_quick_run_writes_every_subset_and_predictor(tmp_path):
    with benchmark_module("distill") as module:
        rows = module.main(["--n-obs", "160", "--epochs", "2", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "distill.json").read_text())
    assert data["rows"] == json.loads(json.dumps(rows))
    assert len(rows) == 3 * len(module.SUBSETS)
    full = [r for r in rows if r["predictor"] == "teacher, all views"]
    assert all(r["mse_to_full"] == 0 and abs(r["kl_to_full"]) < 1e-4 for r in full)  # the reference scores itself
    for r in rows:
        assert 0 <= r["coverage90"] <= 1 and -1 <= r["impute_r"] <= 1 and 0 <= r["accuracy"] <= 1
    assert data["meta"]["command"].startswith("python benchmarks/distill.py")
    assert "| subset | predictor |" in (tmp_path / "distill.md").read_text()
    assert not list(tmp_path.glob(".*"))

"""Smoke test of benchmarks/throughput.py: it runs end to end and writes complete results (no timing assertion)."""

from __future__ import annotations

import json

import pytest

from tests._bench import benchmark_module


@pytest.fixture(scope="module")
def throughput():
    with benchmark_module("throughput") as module:
        yield module


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_quick_run_writes_every_system(throughput, tmp_path, capsys):
    # In-process (mdlprob and torch are already imported), so the run takes seconds.
    report = throughput.main(["--quick", "--device", "cpu", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "throughput.json").read_text())
    assert data == json.loads(json.dumps(report))
    systems = {"reference", "mdlprob_fast", "mdlprob_svi"}
    batch_sizes = data["config"]["batch_sizes"]
    assert len(batch_sizes) == 2
    for bs in batch_sizes:
        rows = {r["system"]: r for r in data["results"] if r["batch_size"] == bs}
        assert set(rows) == systems
        for r in rows.values():
            assert r["obs_per_s"] > 0
            assert r["ratio_vs_reference"] > 0
        assert rows["reference"]["ratio_vs_reference"] == pytest.approx(1.0)
    for key in ("date", "command", "device_name", "torch_version", "cpu_count", "n_threads"):
        assert data["meta"][key]
    # Same objective: with mdlprob's weights and the same noise, the reference gives mdlprob's loss.
    init = data["init_loss"]
    assert init["order_of_magnitude_ok"]
    assert init["reference_with_mdlprob_weights"] == pytest.approx(init["mdlprob"], rel=1e-4)
    assert [g["batch_size"] for g in data["goal"]["per_batch_size"]] == batch_sizes
    md = (tmp_path / "throughput.md").read_text()
    assert "| system | batch | obs/s | ratio vs reference |" in md
    assert "PASS" in md or "FAIL" in md
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind
    assert "mdlprob_fast" in capsys.readouterr().out


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::mdlprob.exceptions.DataWarning")
def test_models_benchmark_quick_run(tmp_path):
    with benchmark_module("models") as module:
        table = module.main(["--quick", "--scenarios", "synthetic", "--models", "PoEVAE", "--out", str(tmp_path)])
    assert set(table["method"]) == {"feature_mean", "knn_imputer", "PoEVAE"}
    assert "error" not in table or table["error"].isna().all()
    poe = table[table["method"] == "PoEVAE"]
    assert poe["coverage_90"].between(0, 1).all() and poe["heldout_loglik"].notna().all()
    assert {"models.csv", "models.md", "models.png"} <= {p.name for p in tmp_path.iterdir()}
    record = json.loads((tmp_path / "models.provenance.json").read_text())
    assert record["command"].startswith("python benchmarks/models.py") and record["packages"]["mdlprob"]
    assert "## Provenance" in (tmp_path / "models.md").read_text()


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_feature_links_benchmark_quick_run(tmp_path):
    with benchmark_module("feature_links") as module:
        table = module.main(["--n-obs", "80", "--epochs", "2", "--absent", "0.5", "--strengths", "1",
                             "--out", str(tmp_path)])
    assert list(table["links"]) == ["none", "feature_links", "feature_links_shuffled"]
    assert table["pearson_r"].notna().all() and table["temperature"].iloc[1:].gt(0).all()
    assert {"feature_links.json", "feature_links.md"} <= {p.name for p in tmp_path.iterdir()}

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
def test_quick_run_writes_every_model(throughput, tmp_path, capsys):
    # In-process (mdlprob and torch are already imported), so the run takes seconds.
    report = throughput.main(["--quick", "--device", "cpu", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "throughput.json").read_text())
    assert data == json.loads(json.dumps(report))
    models = ["PoEVAE", "MoEVAE", "MoPoEVAE", "FactorModel", "GraphPoEVAE"]
    assert [r["model"] for r in data["results"]] == models
    for r in data["results"]:
        assert r["reference_obs_per_s"] > 0 and r["train_obs_per_s"] >= r["default_obs_per_s"] > 0
        assert r["ratio_default"] == pytest.approx(r["default_obs_per_s"] / r["reference_obs_per_s"])
        assert r["refit_share"] >= 0 and len(r["refit_seconds"]) == data["config"]["repeats"]
    steps = {r["model"]: r["refit_steps"] for r in data["results"]}
    assert steps["PoEVAE"] == steps["FactorModel"] == steps["GraphPoEVAE"] == 0 and steps["MoEVAE"] > 0 and steps["MoPoEVAE"] > 0  # the mixtures refit by default
    for key in ("date", "command", "device_name", "torch_version", "cpu_count", "n_threads"):
        assert data["meta"][key]
    assert [g["model"] for g in data["goal"]["per_model"]] == models
    md = (tmp_path / "throughput.md").read_text()
    assert "| model | batch | reference obs/s |" in md
    assert "PASS" in md or "FAIL" in md
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind
    assert "MoPoEVAE" in capsys.readouterr().out


@pytest.mark.parametrize("model", ["PoEVAE", "MoEVAE", "MoPoEVAE", "FactorModel", "GraphPoEVAE"])
def test_references_compute_mdlprobs_objective(throughput, model):
    """With mdlprob's weights and the same random state, the hand-written reference gives mdlprob's loss."""
    args = throughput.parse_args(["--quick"])
    mdata, xs, presence = throughput.make_data(args)
    presence[::3, 1] = False  # some observations without protein: the objectives' masking must agree too
    for j in range(len(throughput.MODALITIES)):
        xs[j][~presence[:, j]] = 0.0
    mdata = _drop_rows(mdata, "protein", presence[:, 1].numpy())
    check = throughput.init_loss_check(model, mdata, xs, presence, args, 64)
    assert check["reference_with_mdlprob_weights"] == pytest.approx(check["mdlprob"], rel=1e-5)
    assert check["reference_fresh_init"] != pytest.approx(check["mdlprob"], rel=1e-5)  # the check can fail


def _drop_rows(mdata, modality: str, keep):
    """``mdata`` with ``modality`` measured only for the observations where ``keep``."""
    import mudata as md

    import mdlprob

    mods = {m: mdata.mod[m] for m in mdata.mod}
    names = mdata.obs_names[keep]
    mods[modality] = mods[modality][mods[modality].obs_names.isin(names)].copy()
    out = md.MuData(mods)
    registry = mdlprob.data.get_registry(mdata)
    mdlprob.data.setup_mudata(out, likelihoods={m: e["likelihood"] for m, e in registry["modalities"].items()},
                              library_size=False)
    return out


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


@pytest.mark.timeout(120)
def test_refit_cost_quick_run(tmp_path):
    with benchmark_module("refit_cost") as module:
        report = module.main(["--quick", "--out", str(tmp_path)])
    assert [r["model"] for r in report["results"]] == ["MoEVAE", "MoPoEVAE"]
    for r in report["results"]:
        assert r["cached_seconds"] > 0 and r["per_step_seconds"] > 0 and 1 <= r["cached_steps"] <= r["cap"]
        assert r["cached_log_theta"] != r["trained_log_theta"]
    assert "| MoEVAE |" in (tmp_path / "refit_cost.md").read_text()

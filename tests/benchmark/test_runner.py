"""Runner: tidy CSV, resumability, failures as rows, skipped data, suite validation, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from mdlprob.benchmark import (
    COLUMNS,
    METHODS,
    Prediction,
    load_suite,
    parse_suite,
    read_results,
    register_method,
    run_cell,
    run_suite,
)
from mdlprob.benchmark import _runner as runner_module
from mdlprob.benchmark._provenance import git_state
from mdlprob.cli import app

TRAIN = {"max_epochs": 2, "batch_size": 64, "n_latent": 3, "n_hidden": 16, "n_samples": 20, "head_epochs": 20,
         "latent_samples": 4}
SYNTHETIC = {"name": "synthetic", "params": {"n_obs": 120, "n_rna": 20, "n_protein": 6}}


def _suite(methods, *, scenarios=None, datasets=None, **extra):
    config = {"name": "tiny", "seeds": [0], "cells_per_process": 0, "train": TRAIN,
              "datasets": datasets or [SYNTHETIC], "scenarios": scenarios or [{"name": "mcar", "rates": [0.3]}],
              "methods": methods, **extra}
    return parse_suite(config)


@pytest.mark.parametrize("method", ["early_fusion", "late_fusion", "intermediate_fusion"])
def test_fusion_baselines_are_suite_methods_scored_on_survival(tmp_path, method):
    run_suite(_suite([method]), out=tmp_path, progress_bar=False)
    saved = read_results(tmp_path)
    assert (saved["status"] == "ok").all(), saved["error"].dropna().tolist()
    values = dict(zip(saved["metric"], saved["value"], strict=True))
    assert 0.5 < values["harrell_c"] <= 1.0 and np.isfinite(values["ibs"])  # synthetic risk is linear in z


@pytest.fixture
def failing_method():
    def boom(ctx):
        msg = "boom"
        raise RuntimeError(msg)

    register_method("test_boom", boom)
    yield "test_boom"
    METHODS.pop("test_boom", None)


def test_one_cell_in_process_writes_tidy_csv(tmp_path):
    table = run_suite(_suite(["PoEVAE"]), out=tmp_path, progress_bar=False)
    assert (tmp_path / "results.csv").exists() and (tmp_path / "meta.json").exists()
    saved = read_results(tmp_path)
    assert list(saved.columns) == COLUMNS
    assert len(saved) == len(table) and saved["cell"].nunique() == 1
    assert (saved["status"] == "ok").all()
    values = dict(zip(saved["metric"], saved["value"], strict=True))
    for metric in ("pearson", "spearman", "rmse", "coverage_50", "coverage_90", "crps", "knn_accuracy", "silhouette",
                   "accuracy", "macro_f1", "auroc", "ece", "harrell_c", "uno_c", "ibs", "fit_s", "obs_per_s"):
        assert np.isfinite(values[metric]), metric
    for metric in ("coverage_50", "coverage_90", "accuracy", "auroc", "harrell_c", "uno_c"):
        assert 0.0 <= values[metric] <= 1.0
    assert values["coverage_50"] <= values["coverage_90"]
    row = saved.iloc[0]
    assert row["dataset"] == "synthetic" and row["method"] == "PoEVAE" and row["rate"] == 0.3
    assert row["modality"] == "protein"  # the dataset's target, recorded though the suite named none
    assert row["wall_s"] > 0 and row["peak_rss_mb"] > 0 and row["achieved_rate"] == pytest.approx(0.3)
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def test_second_run_skips_finished_cells(tmp_path, monkeypatch):
    suite = _suite(["feature_mean", "knn_imputer"])
    first = run_suite(suite, out=tmp_path, progress_bar=False)
    before = (tmp_path / "results.csv").read_text()

    def must_not_run(*args, **kwargs):
        raise AssertionError

    monkeypatch.setattr(runner_module, "run_cell", must_not_run)
    with pytest.raises(FileExistsError, match="already holds benchmark results.*resume=True"):
        run_suite(suite, out=tmp_path, progress_bar=False, resume=False)
    with pytest.warns(FutureWarning, match="resuming implicitly is deprecated"):
        run_suite(suite, out=tmp_path, progress_bar=False)
    second = run_suite(suite, out=tmp_path, progress_bar=False, resume=True, command="mdlprob bench --resume")
    assert (tmp_path / "results.csv").read_text() == before
    assert len(second) == len(first)
    runs = json.loads((tmp_path / "meta.json").read_text())["runs"]
    assert len(runs) == 3 and runs[-1]["command"] == "mdlprob bench --resume"
    assert runs[-1]["git"]["commit"] == git_state()["commit"] and runs[-1]["packages"]["torch"] and runs[-1]["machine"]["cpu_count"]


def test_failing_method_is_an_error_row_and_is_retried(tmp_path, failing_method):
    table = run_suite(_suite([failing_method, "feature_mean"]), out=tmp_path, progress_bar=False)
    cells = table.drop_duplicates("cell").set_index("method")
    assert cells.at[failing_method, "status"] == "error"
    assert "RuntimeError: boom" in cells.at[failing_method, "error"]
    assert cells.at["feature_mean", "status"] == "ok"
    METHODS[failing_method] = METHODS["feature_mean"].__class__(failing_method, METHODS["feature_mean"].fit_predict)
    again = run_suite(_suite([failing_method, "feature_mean"]), out=tmp_path, progress_bar=False, resume=True)
    assert set(again.drop_duplicates("cell")["status"]) == {"ok"}
    assert again["cell"].nunique() == 2


def test_missing_peer_is_an_error_row_naming_the_package(tmp_path):
    METHODS["test_peer"] = METHODS["feature_mean"].__class__("test_peer", lambda ctx: Prediction(),
                                                             requires=("surely_not_a_package_xyz",))
    try:
        rows = run_cell(_suite(["test_peer"]).cells()[0], train=TRAIN)
    finally:
        METHODS.pop("test_peer")
    assert rows[0]["status"] == "error"
    assert "surely_not_a_package_xyz" in rows[0]["error"] and "mdlprob[peers]" in rows[0]["error"]


def test_mofa_peer_through_its_api():
    pytest.importorskip("mofapy2")
    rows = run_cell(_suite(["mofa"]).cells()[0], train=TRAIN)
    assert rows[0]["status"] == "ok", rows[0]["error"]
    values = {r["metric"]: r["value"] for r in rows}
    assert 0 <= values["coverage_50"] <= values["coverage_90"] <= 1
    assert values["pearson"] > 0.2  # MOFA recovers the shared linear signal of the synthetic data
    assert np.isfinite(values["knn_accuracy"]) and np.isfinite(values["harrell_c"])


def test_absent_dataset_is_skipped_with_the_reason(tmp_path):
    suite = _suite(["feature_mean"], datasets=["mixomics_breast"])
    table = run_suite(suite, out=tmp_path / "out", data_dir=tmp_path / "nodata", progress_bar=False)
    assert table["status"].tolist() == ["skipped"]
    assert "not found" in table["error"].iloc[0]


def test_suite_validation():
    with pytest.raises(ValueError, match="Unknown method 'NoSuchModel'"):
        _suite(["NoSuchModel"])
    with pytest.raises(ValueError, match="Unknown suite key"):
        _suite(["PoEVAE"], epochs=3)
    with pytest.raises(ValueError, match="rates"):
        _suite(["PoEVAE"], scenarios=[{"name": "mcar", "rates": [1.5]}])
    with pytest.raises(ValueError, match="Unknown train option"):
        parse_suite({"datasets": ["synthetic"], "scenarios": ["mcar"], "methods": ["PoEVAE"], "train": {"epochs": 1}})
    with pytest.raises(FileNotFoundError, match="No suite named 'nope'"):
        load_suite("nope")


def test_grid_filters_and_keys_are_stable():
    suite = _suite(["feature_mean", {"name": "coxnet", "datasets": ["breast_cancer"]}],
                   datasets=[SYNTHETIC, "breast_cancer"],
                   scenarios=[{"name": "mcar", "rates": [0.1, 0.2]},
                              {"name": "mnar", "rates": [0.3], "datasets": ["synthetic"]}])
    cells = suite.cells()
    assert len(cells) == 2 * 1 + 1 + 2 * 2  # synthetic: 3 scenario-rates x feature_mean; breast: 2 x 2 methods
    assert len({c.key for c in cells}) == len(cells)
    assert [c.key for c in cells] == [c.key for c in suite.cells()]


def test_quick_suite_smallest_model_cell():
    suite = load_suite("quick")
    cell = next(c for c in suite.cells() if c.dataset == "synthetic" and c.method == "PoEVAE" and c.scenario == "mcar")
    rows = run_cell(cell, train=suite.train)
    assert rows[0]["status"] == "ok", rows[0]["error"]
    values = {r["metric"]: r["value"] for r in rows}
    assert 0 < values["coverage_90"] <= 1 and np.isfinite(values["crps"])


def test_cli_bench_and_report(tmp_path):
    path = tmp_path / "tiny.yaml"
    config = {"name": "tiny", "seeds": [0, 1], "train": TRAIN, "datasets": [SYNTHETIC],
              "scenarios": [{"name": "mcar", "rates": [0.2, 0.4]}], "methods": ["feature_mean", "knn_imputer"]}
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "res"
    result = CliRunner().invoke(app, ["bench", "--suite", str(path), "--out", str(out), "--cells-per-process", "0"])
    assert result.exit_code == 0, result.output
    assert "8 cells" in result.output
    result = CliRunner().invoke(app, ["bench-report", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "report.md").exists() and (out / "rate_synthetic.png").exists()
    bad = CliRunner().invoke(app, ["bench", "--suite", "nope", "--out", str(out)])
    assert bad.exit_code != 0 and "No suite named" in bad.output
    again = CliRunner().invoke(app, ["bench", "--suite", str(path), "--out", str(out), "--cells-per-process", "0"])
    assert again.exit_code != 0 and "already holds results" in " ".join(again.output.split())
    resumed = CliRunner().invoke(app, ["bench", "--suite", str(path), "--out", str(out), "--cells-per-process", "0",
                                       "--resume"])
    assert resumed.exit_code == 0, resumed.output
    runs = json.loads((out / "meta.json").read_text())["runs"]
    assert len(runs) == 2 and runs[-1]["command"].startswith("mdlprob ")
    fresh = CliRunner().invoke(app, ["bench", "--suite", str(path), "--resume"])
    assert fresh.exit_code != 0 and "give --out" in fresh.output


def test_bench_writes_a_fresh_folder_by_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({"name": "tiny", "train": TRAIN, "datasets": [SYNTHETIC],
                                    "scenarios": [{"name": "mcar", "rates": [0.2]}], "methods": ["feature_mean"]}))
    result = CliRunner().invoke(app, ["bench", "--suite", str(path), "--cells-per-process", "0"])
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "bench_output").iterdir()
    assert folder.name.startswith("tiny-") and (folder / "results.csv").exists()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_isolated_workers_match_in_process_and_time_out(tmp_path):
    suite = _suite(["feature_mean", "knn_imputer"], cells_per_process=1)
    isolated = run_suite(suite, out=tmp_path / "a", progress_bar=False)
    assert set(isolated.drop_duplicates("cell")["status"]) == {"ok"}
    in_process = run_suite(suite, out=tmp_path / "b", cells_per_process=0, progress_bar=False)
    scored = ["pearson", "rmse", "coverage_90"]

    def values(t):
        return t[t["metric"].isin(scored)].sort_values(["cell", "metric"])["value"].to_numpy(dtype=float)

    np.testing.assert_array_equal(values(isolated), values(in_process))
    slow = _suite(["PoEVAE"], cells_per_process=1, timeout_s=0.5)
    stopped = run_suite(slow, out=tmp_path / "c", progress_bar=False)
    assert stopped["status"].tolist() == ["error"] and "TimeoutError" in stopped["error"].iloc[0]

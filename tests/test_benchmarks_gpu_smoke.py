"""Smoke tests of the GPU run's parts on CPU (issue 20): each runs end to end and writes complete results.

No timing assertions: the numbers are the benchmarks' business, these tests check that the
scripts run, agree on the objective where they say so, and write what the GPU run collects.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest
import torch

from tests._bench import BENCHMARKS, benchmark_module


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_conv_throughput_quick_run_computes_the_same_objective(tmp_path):
    with benchmark_module("conv_throughput") as module:
        report = module.main(["--quick", "--layout-ab", "--out", str(tmp_path)])
    assert report["same_objective"]["relative_difference"] < 1e-5  # the reference is the same model
    r = report["result"]
    assert r["reference_obs_per_s"] > 0 and r["mdlprob_obs_per_s"] > 0
    assert r["ratio"] == pytest.approx(r["mdlprob_obs_per_s"] / r["reference_obs_per_s"])
    ab = report["layout_ab"]
    assert ab["speedup"] == pytest.approx(ab["median"]["channels_last"] / ab["median"]["contiguous"])
    from mdlprob.nn import _conv

    assert _conv._fast_layout(torch.rand(1, 2, 4, 4)).is_contiguous(memory_format=torch.channels_last)  # restored
    assert json.loads((tmp_path / "conv_throughput.json").read_text())["goal"]["ratio"] == 0.75
    assert "PASS" in (md := (tmp_path / "conv_throughput.md").read_text()) or "FAIL" in md


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_peers_throughput_runs_or_names_the_missing_package(tmp_path, capsys):
    with benchmark_module("peers_throughput") as module:
        report = module.main(["--quick", "--device", "cpu", "--out", str(tmp_path)])
    if importlib.util.find_spec("scvi") is None:
        assert report is None and not list(tmp_path.iterdir())
        assert "scvi-tools" in capsys.readouterr().out
        return
    assert [r["system"] for r in report["results"]] == ["TOTALVI", "PoEVAE"]
    assert all(r["obs_per_s"] > 0 for r in report["results"])
    assert {"peers_throughput.json", "peers_throughput.md"} <= {p.name for p in tmp_path.iterdir()}


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_inference_on_a_device_writes_time_per_call(tmp_path):
    with benchmark_module("inference_memory") as module:
        module.main(["--device", "cpu", "--quick", "--n-obs", "300", "--n-samples", "3", "--out", str(tmp_path)])
    rows = json.loads((tmp_path / "inference_device.json").read_text())["rows"]
    assert [r["call"] for r in rows] == ["get_latent", "impute"]
    assert all(r["n_obs"] == 300 and r["seconds"] > 0 and r["peak_device_mb"] is None for r in rows)
    assert rows[1]["n_samples"] == 3
    assert "| 300 | impute | 3 | cpu |" in (tmp_path / "inference_device.md").read_text()


def test_gpu_collect_merges_parts_and_names_the_missing(tmp_path):
    work = tmp_path / "work"
    (work / "throughput").mkdir(parents=True)
    (work / "throughput" / "throughput.json").write_text(json.dumps({"results": [{"model": "PoEVAE"}]}))
    (work / "throughput" / "throughput.md").write_text("# Training throughput\n\n| model |\n")
    (work / "environment.txt").write_text("torch 2.13.0+cu126\n")
    spec = importlib.util.spec_from_file_location("mdlprob_gpu_collect", BENCHMARKS / "gpu" / "collect.py")
    collect = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(collect)
    collect.main([str(work), str(tmp_path / "out")])
    merged = json.loads((tmp_path / "out" / "throughput_gpu.json").read_text())
    assert merged["parts"]["throughput"]["results"][0]["model"] == "PoEVAE"
    assert set(merged["missing"]) == {"peers", "inference"}
    md = (tmp_path / "out" / "throughput_gpu.md").read_text()
    assert "\n## Training throughput" not in md and "\n### Training throughput" in md  # demoted under its section
    assert "Missing: `peers`" in md and "torch 2.13.0+cu126" in md


def test_gpu_run_script_is_valid_bash():
    script = Path(BENCHMARKS) / "gpu" / "run.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)

"""Smoke tests of benchmarks/scans.py and benchmarks/classify_scans.py (``--quick``, in-process)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests._bench import benchmark_module


@pytest.fixture(scope="module")
def scans():
    with benchmark_module("scans") as module:
        yield module


@pytest.fixture(scope="module")
def classify_scans():
    with benchmark_module("classify_scans") as module:
        yield module


def test_scans_scenario_hides_flair_from_training(scans):
    args = scans.parse_args(["--quick", "--out", "unused"])
    sc = scans.make_scenario(0.6, args)
    train_flair = set(sc["train"]["flair"].obs_names)
    names = sc["full"].obs_names
    assert sc["train"].n_obs == args.n_train
    for group, rows in sc["groups"].items():
        assert not train_flair & set(names[rows]), f"{group} subjects' FLAIR was trained on"
    assert len(train_flair) == args.n_train - round(0.6 * args.n_train)
    # The nearest neighbour of a complete training subject is itself: its own FLAIR comes back.
    rows = sc["complete"][:3]
    np.testing.assert_array_equal(scans.nearest_neighbour(sc, rows)["mean"], sc["values"]["flair"][rows])


@pytest.mark.timeout(180)
def test_scans_quick_run(scans, tmp_path):
    report = scans.main(["--quick", "--models", "PoEVAE", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "scans.json").read_text())
    assert data["config"]["size"] == 28 and data["meta"]["total_cpu_s"] > 0
    assert len(data["results"]) == len(report["results"])
    methods = {"mean_image", "nearest_neighbour", "regression", "local_cnn", "PoEVAE"}
    for scenario in ("flair_missing_30pct", "flair_missing_60pct"):
        rows = [r for r in data["results"] if r["scenario"] == scenario]
        assert {(r["method"], r["group"]) for r in rows} == {(m, g) for m in methods for g in ("missing", "held_out")}
        for r in rows:
            assert np.isfinite(r["psnr"]) and -1.0 <= r["ssim"] <= 1.0
            has_interval = r["method"] != "nearest_neighbour"
            assert (r["coverage90_head"] is not None) == has_interval
            if has_interval:
                assert 0.0 <= r["coverage90_head"] <= 1.0 and 0.0 <= r["coverage90_all"] <= 1.0
        poe = [r for r in rows if r["method"] == "PoEVAE"]
        assert all(r["train_cpu_s"] > 0 and np.isfinite(r["final_train_loss"]) for r in poe)
    md = (tmp_path / "scans.md").read_text()
    assert "| scenario | group | method | PSNR dB | SSIM |" in md
    assert (tmp_path / "scans_panel_PoEVAE.png").stat().st_size > 0
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_classify_data_never_loses_every_view(classify_scans):
    mdata = classify_scans.make_data(60, size=28, missing=0.5, seed=1)
    present = np.column_stack([np.asarray(mdata.obsmap[v]) > 0 for v in classify_scans.VIEWS])
    assert present.any(axis=1).all()
    assert 0.2 < 1 - present.mean() < 0.6
    assert list(mdata.obs["label"].cat.categories) == ["low", "moderate", "high"]
    assert mdata["omics"].n_vars == classify_scans.N_OMICS
    assert set(mdata["clinical"].var["mdlprob_type"]) == {"gaussian", "bernoulli", "categorical"}


@pytest.mark.timeout(180)
def test_classify_scans_quick_run(classify_scans, tmp_path):
    table = classify_scans.main(["--quick", "--out", str(tmp_path)])
    expected = {"poe+classifier", "poe_joint", "early", "late", "intermediate_kronecker", "intermediate_attention",
                "majority", "oracle_z_true"}
    assert set(table["method"]) == expected
    assert (table["accuracy_lo"] <= table["accuracy"] + 1e-12).all()
    assert (table["accuracy"] <= table["accuracy_hi"] + 1e-12).all()
    assert table["accuracy"].between(0, 1).all()
    data = json.loads((tmp_path / "classify_scans.json").read_text())
    assert {r["method"] for r in data["results"]} == expected
    assert sum(data["meta"]["class_counts"].values()) == data["meta"]["config"]["n_obs"]
    assert "| method | accuracy [90% CI] |" in (tmp_path / "classify_scans.md").read_text()

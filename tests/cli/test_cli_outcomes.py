"""CLI outcomes: joint training with --outcome, predict-outcome, and `head fit` / `head predict`."""

from __future__ import annotations

import logging

import mudata as md
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import mdlprob
from mdlprob.cli import app

runner = CliRunner()
LIK = ["--likelihood", "rna=nb", "--likelihood", "protein=nb"]
SMALL = ["--n-latent", "2", "--n-hidden", "8", "--max-epochs", "2"]
HEAD = ["--n-samples", "3", "--prior-scale", "1", "--modality-latents", "off", "--max-epochs", "20"]


@pytest.fixture
def data_file(tmp_path):
    m = mdlprob.datasets.synthetic(90, missing={"protein": 0.3}, n_vars={"rna": 12, "protein": 4}, seed=4)
    del m.uns["truth"]
    m.obs["label"] = m.obs["label"].astype(object)
    m.obs.loc[m.obs_names[:20], ["label", "time"]] = np.nan  # unlabelled observations
    m.write(tmp_path / "data.h5mu")
    return tmp_path / "data.h5mu"


@pytest.fixture
def model_dir(data_file, tmp_path):
    res = runner.invoke(app, ["fit", str(data_file), *LIK, *SMALL, "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    return tmp_path / "m"


def _one_line(res) -> str:
    assert res.exit_code == 2, res.output
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.output
    return res.stderr


def test_fit_with_a_label_outcome_and_predict_it(data_file, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="mdlprob"):
        res = runner.invoke(app, ["fit", str(data_file), *LIK, *SMALL, "--outcome", "label", "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert "Outcome label (categorical): 70 of 90 observations labelled." in caplog.text
    model = mdlprob.PoEVAE.load(tmp_path / "m")
    assert model.registry_["outcome"]["classes"] == ["A", "B", "C"]
    res = runner.invoke(app, ["predict-outcome", str(tmp_path / "m"), str(data_file), "--out", str(tmp_path / "p.csv")])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "p.csv", index_col=0)
    np.testing.assert_allclose(table[["A", "B", "C"]].sum(1), 1.0, atol=1e-5)
    assert (table["A_lower"] <= table["A"] + 1e-9).all() and (table["A"] <= table["A_upper"] + 1e-9).all()
    mdata = md.read_h5mu(data_file)
    assert list(table.index) == list(mdata.obs_names)
    assert set(table["observed"]) == {"rna,protein", "rna"}


def test_fit_survival_outcome_on_a_saved_registration_into_h5mu(data_file, tmp_path):
    mdata = md.read_h5mu(data_file)
    mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb"})
    mdata.write(tmp_path / "registered.h5mu")
    res = runner.invoke(app, ["fit", str(tmp_path / "registered.h5mu"), *SMALL, "--outcome", "time,event",
                              "--outcome-type", "logistic_hazard", "--outcome-bins", "4", "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    entry = mdlprob.PoEVAE.load(tmp_path / "m").registry_["outcome"]
    assert entry["type"] == "logistic_hazard" and len(entry["cuts"]) <= 3
    res = runner.invoke(app, ["predict-outcome", str(tmp_path / "m"), str(data_file), "--out", str(tmp_path / "p.h5mu"),
                              "--n-samples", "5"])
    assert res.exit_code == 0, res.output
    obs = md.read_h5mu(tmp_path / "p.h5mu").obs
    assert {"mdlprob_outcome_risk", "mdlprob_outcome_risk_lower", "mdlprob_outcome_risk_upper"} <= set(obs.columns)
    assert np.isfinite(obs["mdlprob_outcome_risk"]).all()


def test_outcome_options_are_checked(data_file, tmp_path):
    out = ["--out", str(tmp_path / "m")]
    assert "--outcome-type coxph needs --outcome TIME,EVENT" in _one_line(
        runner.invoke(app, ["fit", str(data_file), *LIK, "--outcome", "label", "--outcome-type", "coxph", *out]))
    assert "Expected --outcome-type to be one of" in _one_line(
        runner.invoke(app, ["fit", str(data_file), *LIK, "--outcome", "label", "--outcome-type", "svm", *out]))
    assert "'subtype' is not a column of mdata.obs" in _one_line(
        runner.invoke(app, ["fit", str(data_file), *LIK, "--outcome", "subtype", *out]))
    assert not (tmp_path / "m").exists()


def test_head_fit_and_predict_classifier(data_file, model_dir, tmp_path):
    res = runner.invoke(app, ["head", "fit", str(model_dir), str(data_file), "--target", "label", *HEAD,
                              "--out", str(tmp_path / "h")])
    assert res.exit_code == 0, res.output
    assert "Fitted ClassifierHead on 70 of 90 observations (20 without label skipped); training accuracy" in res.stdout
    res = runner.invoke(app, ["head", "predict", str(tmp_path / "h"), str(model_dir), str(data_file),
                              "--out", str(tmp_path / "p.tsv")])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "p.tsv", sep="\t", index_col="obs_name")
    assert len(table) == 90 and set(table["predicted"]) <= {"A", "B", "C"}
    probs = table[["p_A", "p_B", "p_C"]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    assert (table["p_B_lower"] <= table["p_B"]).all() and (table["p_B"] <= table["p_B_upper"]).all()


def test_head_fit_and_predict_survival_with_times(data_file, model_dir, tmp_path):
    res = runner.invoke(app, ["head", "fit", str(model_dir), str(data_file), "--target", "time,event", *HEAD,
                              "--covariate", "age", "--out", str(tmp_path / "h")])
    assert res.exit_code == 2 and "Covariate 'age'" in res.stderr  # synthetic data have no age
    res = runner.invoke(app, ["head", "fit", str(model_dir), str(data_file), "--target", "time,event", *HEAD,
                              "--out", str(tmp_path / "h")])
    assert res.exit_code == 0, res.output
    assert "Fitted CoxPHHead on 70 of 90" in res.stdout and "C-index" in res.stdout
    res = runner.invoke(app, ["head", "predict", str(tmp_path / "h"), str(model_dir), str(data_file), "--time", "5",
                              "--time", "20", "--out", str(tmp_path / "p.h5mu")])
    assert res.exit_code == 0, res.output
    obs = md.read_h5mu(tmp_path / "p.h5mu").obs
    s5, s20 = obs["mdlprob_head_survival_5"], obs["mdlprob_head_survival_20"]
    assert ((s20 <= s5 + 1e-9) & (s5 <= 1) & (s20 >= 0)).all()
    assert (obs["mdlprob_head_risk_lower"] <= obs["mdlprob_head_risk"]).all()
    assert (obs["mdlprob_head_survival_20_upper"] >= s20).all()


def test_head_commands_refuse_mistakes_in_one_line(data_file, model_dir, tmp_path):
    head = ["head", "fit", str(model_dir), str(data_file)]
    assert "--head classifier needs --target COLUMN" in _one_line(
        runner.invoke(app, [*head, "--target", "time,event", "--head", "classifier", "--out", str(tmp_path / "h")]))
    assert "Expected --prior-scale" in _one_line(
        runner.invoke(app, [*head, "--target", "label", "--prior-scale", "-1", "--out", str(tmp_path / "h")]))
    assert "nope is not a column of the data's obs" in _one_line(
        runner.invoke(app, [*head, "--target", "nope", "--out", str(tmp_path / "h")]))
    assert "holds no saved head" in _one_line(runner.invoke(
        app, ["head", "predict", str(model_dir), str(model_dir), str(data_file), "--out", str(tmp_path / "p.csv")]))
    assert runner.invoke(app, [*head, "--target", "label", *HEAD, "--out", str(tmp_path / "h")]).exit_code == 0
    other = tmp_path / "other"
    assert runner.invoke(app, ["fit", str(data_file), *LIK, *SMALL, "--seed", "1", "--out", str(other)]).exit_code == 0
    assert "was fitted on another model" in _one_line(runner.invoke(
        app, ["head", "predict", str(tmp_path / "h"), str(other), str(data_file), "--out", str(tmp_path / "p.csv")]))
    assert "--time is for survival heads" in _one_line(runner.invoke(
        app, ["head", "predict", str(tmp_path / "h"), str(model_dir), str(data_file), "--time", "3",
              "--out", str(tmp_path / "p.csv")]))
    assert "This model has no outcome" in _one_line(runner.invoke(
        app, ["predict-outcome", str(model_dir), str(data_file), "--out", str(tmp_path / "o.csv")]))
    assert "Expected --out to end in" in _one_line(runner.invoke(
        app, ["head", "predict", str(tmp_path / "h"), str(model_dir), str(data_file), "--out", str(tmp_path / "p.txt")]))

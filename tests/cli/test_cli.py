from __future__ import annotations

import hashlib
import json

import anndata as ad
import mudata as md
import numpy as np
import pytest
from typer.testing import CliRunner

import mdlprob
from mdlprob.cli import app
from mdlprob.models import all_models

runner = CliRunner()


def _text(res) -> str:
    """The output with rich's error box and line wrapping removed (long tmp paths wrap messages)."""
    return " ".join(res.output.replace("│", " ").split())


@pytest.fixture
def data_file(tmp_path):
    m = mdlprob.datasets.synthetic(80, missing={"protein": 0.3}, n_vars={"rna": 20, "protein": 6}, seed=4)
    del m.uns["truth"]
    path = tmp_path / "data.h5mu"
    m.write(path)
    return path


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fit_impute_latent_round_trip(data_file, tmp_path):
    before = _digest(data_file)
    model_dir = tmp_path / "model"
    res = runner.invoke(app, ["fit", str(data_file), "--likelihood", "rna=nb", "--likelihood", "protein=nb",
                              "--likelihood", "clinical=mixed", "--max-epochs", "2", "--n-latent", "3",
                              "--out", str(model_dir)])
    assert res.exit_code == 0, res.output
    assert (model_dir / "model.pt").exists() and "Saved to" in res.output

    out = tmp_path / "protein.h5ad"
    res = runner.invoke(app, ["impute", str(model_dir), str(data_file), "--modality", "protein",
                              "--given", "rna", "--n-samples", "10", "--out", str(out)])
    assert res.exit_code == 0, res.output
    imp = ad.read_h5ad(out)
    assert imp.shape == (80, 6) and {"mean", "std", "q05", "q50", "q95"} <= set(imp.layers)
    assert int((~imp.obs["observed"]).sum()) == 24

    out_mu = tmp_path / "latent.h5mu"
    res = runner.invoke(app, ["latent", str(model_dir), str(data_file), "--out", str(out_mu)])
    assert res.exit_code == 0, res.output
    assert md.read_h5mu(out_mu).obsm["X_mdlprob"].shape == (80, 3)
    assert _digest(data_file) == before
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


@pytest.mark.parametrize("cls", [name for name in all_models() if name != "PoEVAE"])
def test_fit_every_registered_model_and_load_by_saved_class(data_file, tmp_path, cls):
    flag = all_models()[cls].alias
    res = runner.invoke(app, ["fit", str(data_file), "--model", flag, "--likelihood", "rna=nb",
                              "--likelihood", "protein=nb", "--max-epochs", "1", "--n-latent", "3",
                              "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert cls in res.output
    res = runner.invoke(app, ["latent", str(tmp_path / "m"), str(data_file), "--out", str(tmp_path / "l.h5mu")])
    assert res.exit_code == 0, res.output
    assert md.read_h5mu(tmp_path / "l.h5mu").obsm["X_mdlprob"].shape == (80, 3)
    res = runner.invoke(app, ["fit", str(data_file), "--model", "vae", "--likelihood", "rna=nb", "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and "--model" in _text(res)


def test_cli_rejects_bad_input_clearly(data_file, tmp_path):
    res = runner.invoke(app, ["fit", str(data_file), "--likelihood", "rna:nb", "--out", str(tmp_path / "m")])
    assert res.exit_code != 0 and "MODALITY=VALUE" in _text(res)
    res = runner.invoke(app, ["fit", str(data_file), "--likelihood", "rna=nb", "--out", str(data_file)])
    assert res.exit_code != 0 and "never overwrites its inputs" in _text(res)
    res = runner.invoke(app, ["impute", str(tmp_path), str(data_file), "--modality", "rna", "--out", str(tmp_path / "x.h5ad")])
    assert res.exit_code != 0 and "no saved mdlprob model" in _text(res)
    res = runner.invoke(app, ["fit", str(tmp_path / "missing.h5mu"), "--likelihood", "rna=nb", "--out", str(tmp_path / "m")])
    assert res.exit_code != 0 and "does not exist" in _text(res)


def test_demo_runs_and_writes_its_outputs(tmp_path):
    res = runner.invoke(app, ["demo", "--out", str(tmp_path), "--max-epochs", "3"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["n_hidden"] == round(0.4 * 198)
    for key in ("pearson_r", "rmse", "coverage_90"):
        assert np.isfinite(metrics["poe_vae"][key])
    surv = metrics["survival"]
    assert 0.0 <= surv["heldout_c_index"] <= 1.0
    assert surv["c_index_90ci"][0] <= surv["c_index_90ci"][1]
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert (tmp_path / "model" / "config.json").exists()
    assert "feature mean" in res.output

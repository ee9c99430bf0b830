"""``mdlprob fit --batch-key`` and ``mdlprob impute --transform-batch``."""

from __future__ import annotations

import anndata as ad
from typer.testing import CliRunner

import mdlprob
from mdlprob.cli import app

runner = CliRunner()


def _text(res) -> str:
    return " ".join(res.output.replace("│", " ").split())


def test_fit_with_a_batch_and_impute_as_if_in_another(tmp_path):
    m = mdlprob.datasets.synthetic(80, modalities=("rna", "protein"), missing={"protein": 0.3},
                                   n_vars={"rna": 20, "protein": 6}, batches=2)
    del m.uns["truth"], m.uns["batch_effect"]
    data = tmp_path / "data.h5mu"
    m.write(data)
    model_dir = tmp_path / "model"
    res = runner.invoke(app, ["fit", str(data), "--likelihood", "rna=nb", "--likelihood", "protein=nb",
                              "--batch-key", "batch", "--max-epochs", "2", "--n-latent", "3", "--out", str(model_dir)])
    assert res.exit_code == 0, res.output
    assert mdlprob.PoEVAE.load(model_dir).registry_["covariates"]["batch_key"] == "batch"
    out = tmp_path / "protein.h5ad"
    res = runner.invoke(app, ["impute", str(model_dir), str(data), "--modality", "protein", "--n-samples", "5",
                              "--transform-batch", "batch1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert ad.read_h5ad(out).uns["mdlprob_impute"]["transform_batch"] == "batch1"
    res = runner.invoke(app, ["impute", str(model_dir), str(data), "--modality", "protein", "--n-samples", "5",
                              "--transform-batch", "batch7", "--out", str(tmp_path / "x.h5ad")])
    assert res.exit_code != 0 and "batch7" in _text(res)
    res = runner.invoke(app, ["fit", str(data), "--batch-key", "batch", "--out", str(tmp_path / "m2")])
    assert res.exit_code != 0 and "--batch-key" in _text(res) and "--likelihood" in _text(res)

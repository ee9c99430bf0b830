"""CLI everyday use: --version, fast --help, the training options, a summary of what early stopping kept."""

from __future__ import annotations

import logging
import subprocess
import sys

import mudata as md
import numpy as np
import pytest
from typer.testing import CliRunner

import mdlprob
from mdlprob.cli import app

runner = CliRunner()
FIT = ["--likelihood", "rna=nb", "--likelihood", "protein=nb", "--likelihood", "clinical=mixed", "--n-latent", "3",
       "--n-hidden", "16"]


@pytest.fixture
def data_file(tmp_path):
    m = mdlprob.datasets.synthetic(120, missing={"protein": 0.3}, n_vars={"rna": 20, "protein": 6}, seed=4)
    del m.uns["truth"]
    m.write(tmp_path / "data.h5mu")
    return tmp_path / "data.h5mu"


def test_version_and_help_do_not_load_torch():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout.strip() == f"mdlprob {mdlprob.__version__}"
    code = "import sys; from mdlprob.cli import main; sys.argv = ['mdlprob', '--help']\ntry:\n    main()\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False", "mdlprob --help imported torch"  # what made it take 5 s


def test_fit_options_and_early_stopping_summary(data_file, tmp_path):
    res = runner.invoke(app, ["--quiet", "fit", str(data_file), *FIT, "--patience", "2", "--max-epochs", "60",
                              "--early-stopping", "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert "early stopping kept epoch" in res.stdout and "validation loss" in res.stdout
    assert mdlprob.settings.verbosity == logging.WARNING and not mdlprob.settings.show_progress
    mdlprob.settings.verbosity = "info"  # --quiet set it for this process
    model = mdlprob.PoEVAE.load(tmp_path / "m")
    assert len(model.val_indices_) == 12 and model.history_["stopped_epoch"][0] < 60
    res = runner.invoke(app, ["fit", str(data_file), *FIT, "--max-epochs", "3", "--train-size", "0.5",
                              "--no-early-stopping", "--out", str(tmp_path / "n")])
    assert res.exit_code == 0, res.output
    assert "3 epochs, last validation loss" in res.stdout
    assert len(mdlprob.PoEVAE.load(tmp_path / "n").val_indices_) == 60


def test_latent_given(data_file, tmp_path):
    assert runner.invoke(app, ["fit", str(data_file), *FIT, "--max-epochs", "2", "--out", str(tmp_path / "m")]).exit_code == 0
    res = runner.invoke(app, ["latent", str(tmp_path / "m"), str(data_file), "--given", "rna", "--out", str(tmp_path / "l.h5mu")])
    assert res.exit_code == 0, res.output
    mdata = md.read_h5mu(data_file)
    mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb", "clinical": "mixed"})
    expected = mdlprob.PoEVAE.load(tmp_path / "m", mdata).get_latent_representation(mdata, given=["rna"])
    assert np.allclose(md.read_h5mu(tmp_path / "l.h5mu").obsm["X_mdlprob"], expected, atol=1e-6)
    assert "X_mdlprob" not in mdata.obsm  # the scvi-tools name writes nothing
    res = runner.invoke(app, ["latent", str(tmp_path / "m"), str(data_file), "--n-samples", "4", "--out",
                              str(tmp_path / "s.h5mu")])
    assert res.exit_code == 0, res.output
    written = md.read_h5mu(tmp_path / "s.h5mu").obsm
    assert written["X_mdlprob_samples"].shape == (120, 4, 3)
    spread = written["X_mdlprob_samples"].std(1)
    assert np.isfinite(spread).all() and (spread > 0).all()  # draws, not copies of the mean


def test_accelerator_names():
    from mdlprob.base._validate import resolve_device

    assert str(resolve_device("cpu")) == "cpu"
    for bad in ("cuda:x", "cpu:0", "tpu"):
        with pytest.raises(ValueError, match="Expected accelerator in"):
            resolve_device(bad)
    if not __import__("torch").cuda.is_available():
        with pytest.raises(ValueError, match="'cuda:1' was requested but torch sees no CUDA device"):
            resolve_device("cuda:1")


def test_fit_uses_a_saved_registration_or_asks(data_file, tmp_path):
    res = runner.invoke(app, ["fit", str(data_file), "--out", str(tmp_path / "m")])
    assert res.exit_code == 2 and "Give --likelihood MODALITY=LIKELIHOOD" in res.stderr
    mdata = md.read_h5mu(data_file)
    mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb"})
    mdata.write(tmp_path / "registered.h5mu")
    res = runner.invoke(app, ["fit", str(tmp_path / "registered.h5mu"), "--max-epochs", "1", "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert mdlprob.PoEVAE.load(tmp_path / "m").modalities == ["rna", "protein"]


def test_fit_names_the_modalities_it_leaves_out(data_file, tmp_path, caplog):
    res = runner.invoke(app, ["fit", str(data_file), "--likelihood", "rna=nb", "--max-epochs", "1", "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert "Not modelled (no --likelihood): protein, clinical." in caplog.text

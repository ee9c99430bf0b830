"""The CLI under faults: a killed or signalled `mdlprob fit` resumes to the weights of an uninterrupted run;
user mistakes print one line (exit 2), runtime failures one line (exit 1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import mdlprob
from mdlprob.cli import app

runner = CliRunner()

FIT = ["--likelihood", "rna=nb", "--likelihood", "protein=nb", "--likelihood", "clinical=mixed",
       "--n-latent", "3", "--n-hidden", "16", "--batch-size", "32", "--max-epochs", "60"]
CLI = [sys.executable, "-c", "from mdlprob.cli import main; main()"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    m = mdlprob.datasets.synthetic(300, missing={"protein": 0.3}, n_vars={"rna": 30, "protein": 8}, seed=4)
    del m.uns["truth"]
    path = tmp_path_factory.mktemp("data") / "data.h5mu"
    m.write(path)
    return path


def _run(args, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, env=env, **kwargs)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / "model.pt", weights_only=True)


def _interrupt(data_file, out: Path, sig: int) -> subprocess.CompletedProcess:
    """Start `mdlprob fit`, send ``sig`` once its third epoch's checkpoint exists, wait for the end."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([*CLI, "fit", str(data_file), *FIT, "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    checkpoint = out / "checkpoint" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if checkpoint.exists() and torch.load(checkpoint, weights_only=True)["loop"]["epoch"] >= 3:
            break
        time.sleep(0.01)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_interrupted_fit_resumes_to_the_uninterrupted_weights(data_file, tmp_path, sig):
    assert _run(["fit", data_file, *FIT, "--out", tmp_path / "whole"]).returncode == 0
    done = _interrupt(data_file, tmp_path / "cut", sig)
    assert done.returncode in (-sig, 128 + sig), done.stderr  # killed, or stopped cleanly after saving
    if sig == signal.SIGTERM:
        assert done.returncode == 128 + sig
        assert "stopped by SIGTERM" in done.stderr and "--resume" in done.stderr
    assert not (tmp_path / "cut" / "model.pt").exists()
    again = _run(["fit", data_file, *FIT, "--out", tmp_path / "cut"])
    assert again.returncode == 2 and "pass --resume" in again.stderr
    resumed = _run(["fit", data_file, *FIT, "--out", tmp_path / "cut", "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    whole, cut = _weights(tmp_path / "whole"), _weights(tmp_path / "cut")
    assert all(torch.equal(whole[k], cut[k]) for k in whole)
    assert not (tmp_path / "cut" / "checkpoint").exists()  # the finished model replaced the checkpoint


def _one_line_error(result, code: int, text: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip() and "it/s" not in line]  # not progress bars
    assert result.returncode == code, result.stderr
    assert len(lines) == 1 and lines[0].startswith("mdlprob ") and text in lines[0], result.stderr


def _invoke(args):
    """In process (fast): the same command function, so the same error handling as the console script."""
    result = runner.invoke(app, [str(a) for a in args])
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def test_user_mistakes_are_one_line_with_exit_2(data_file, tmp_path):
    (tmp_path / "folder.h5mu").mkdir()
    fake = tmp_path / "fake.h5mu"
    fake.write_bytes(b"\x89HDF\r\n not really")
    _one_line_error(_invoke(["fit", data_file, "--likelihood", "dna=nb", "--out", tmp_path / "m"]), 2, "dna")
    _one_line_error(_invoke(["fit", data_file, "--likelihood", "rna=weird", "--out", tmp_path / "m"]), 2, "weird")
    _one_line_error(_invoke(["fit", tmp_path / "folder.h5mu", *FIT, "--out", tmp_path / "m"]), 2, "is a folder")
    _one_line_error(_invoke(["fit", fake, *FIT, "--out", tmp_path / "m"]), 2, "could not be read as a MuData")
    assert _invoke(["fit", data_file, *FIT, "--max-epochs", "1", "--out", tmp_path / "m"]).returncode == 0
    _one_line_error(_invoke(["impute", tmp_path / "m", data_file, "--modality", "dna", "--out", tmp_path / "x.h5ad"]), 2, "dna")
    _one_line_error(_invoke(["impute", tmp_path / "m", data_file, "--modality", "rna", "--out", tmp_path, "--overwrite"]),
                    2, "is a folder")
    _one_line_error(_invoke(["fit", data_file, *FIT, "--resume", "--out", tmp_path / "m"]), 2, "holds no interrupted run")


def test_damaged_model_is_one_line(data_file, tmp_path):
    assert _invoke(["fit", data_file, *FIT, "--max-epochs", "1", "--out", tmp_path / "m"]).returncode == 0
    (tmp_path / "m" / "model.pt").write_bytes(b"garbage")
    _one_line_error(_invoke(["latent", tmp_path / "m", data_file, "--out", tmp_path / "l.h5mu"]), 2, "not a readable mdlprob weights file")


@pytest.mark.slow
def test_full_disk_in_the_console_script_is_one_line_with_exit_1(data_file, tmp_path):
    """A real process (exit status, no crash at exit), the disk made full by failing every rename."""
    script = ("import errno, os, sys\n"
              "from mdlprob.cli import main\n"
              "real = os.replace\n"
              "def full(src, dst):\n"
              "    raise OSError(errno.ENOSPC, 'No space left on device')\n"
              "os.replace = full\n"
              "sys.argv = ['mdlprob', *sys.argv[1:]]\n"
              "main()\n")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([sys.executable, "-c", script, "fit", str(data_file), *FIT, "--max-epochs", "1",
                             "--out", str(tmp_path / "n")], capture_output=True, text=True, env=env)
    _one_line_error(result, 1, "the disk is full")
    assert not (tmp_path / "n").exists()

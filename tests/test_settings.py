"""mdlprob.settings: verbosity drives the logger and the progress bars; n_threads drives torch."""

from __future__ import annotations

import logging

import pytest
import torch
from typer.testing import CliRunner

import mdlprob
from mdlprob._utils import progress, track
from mdlprob.cli import app


@pytest.fixture
def restore():
    threads, verbosity, bar = torch.get_num_threads(), mdlprob.settings.verbosity, mdlprob.settings.progress_bar
    yield
    torch.set_num_threads(threads)
    mdlprob.settings.verbosity, mdlprob.settings.progress_bar = verbosity, bar


def test_verbosity_sets_the_logger_and_hides_bars_above_info(restore):
    mdlprob.settings.progress_bar = True
    mdlprob.settings.verbosity = "warning"
    assert mdlprob.settings.verbosity == logging.WARNING == logging.getLogger("mdlprob").level
    assert not mdlprob.settings.show_progress
    items = [1, 2]
    assert track(items) is items and type(progress(3, "x")).__name__ == "_NoBar"
    mdlprob.settings.verbosity = logging.DEBUG
    assert logging.getLogger("mdlprob").level == logging.DEBUG and mdlprob.settings.show_progress
    assert track(items, description="x", disable=True) is not items  # a tqdm bar
    mdlprob.settings.progress_bar = False
    assert not mdlprob.settings.show_progress
    for bad in ("loud", -1, True, 2.5):
        with pytest.raises(ValueError, match="Expected settings.verbosity"):
            mdlprob.settings.verbosity = bad


def test_n_threads_sets_torch_threads(restore):
    mdlprob.settings.n_threads = 1
    assert torch.get_num_threads() == mdlprob.settings.n_threads == 1
    for bad in (0, "2", True):
        with pytest.raises(ValueError, match="Expected settings.n_threads to be an int >= 1"):
            mdlprob.settings.n_threads = bad


def test_cli_quiet_and_threads_set_them(restore):
    res = CliRunner().invoke(app, ["--quiet", "--threads", "1", "bench-report", "/nonexistent"])
    assert res.exit_code == 2  # the command fails, the global options were applied before it
    assert mdlprob.settings.verbosity == logging.WARNING and torch.get_num_threads() == 1
    res = CliRunner().invoke(app, ["--threads", "0", "bench-report", "/nonexistent"])
    assert res.exit_code == 2 and "Expected --threads to be at least 1, got 0." in res.output

"""Benchmark suite: missingness scenarios, a method registry, a resumable runner and reports.

:mod:`mdlprob.benchmark.missingness`
    Seeded scenarios ``MuData -> (MuData with values hidden, HiddenTruth)``.
:func:`load_suite`, :func:`run_suite`
    Read a YAML suite (``benchmarks/suites/*.yaml``) and run its grid
    datasets x scenarios x methods x seeds into a tidy ``results.csv``.
:func:`write_report`
    Markdown table (mean ± sd over seeds) and figures of a results folder.
:func:`provenance`
    The git commit, package versions, machine and command every results file records.
:func:`register_method`
    Add a method (``CellContext -> Prediction``) under a name suites can use.

The command line is ``mdlprob bench --suite quick --out DIR`` then ``mdlprob bench-report DIR``.
"""

from __future__ import annotations

from . import missingness
from ._data import DATASETS, BenchData, load_dataset
from ._methods import LEVELS, METHODS, CellContext, Method, Prediction, get_method, register_method
from ._peers import register_peers
from ._provenance import provenance, provenance_lines
from ._report import markdown_table, summarise, write_report
from ._runner import COLUMNS, read_results, run_cell, run_suite
from ._scoring import bootstrap_classification, downstream_split, score
from ._suite import Cell, Suite, load_suite, parse_suite
from .missingness import SCENARIOS, HiddenTruth, apply_scenario

register_peers()

__all__ = [
    "COLUMNS",
    "DATASETS",
    "LEVELS",
    "METHODS",
    "SCENARIOS",
    "BenchData",
    "Cell",
    "CellContext",
    "HiddenTruth",
    "Method",
    "Prediction",
    "Suite",
    "apply_scenario",
    "bootstrap_classification",
    "downstream_split",
    "get_method",
    "load_dataset",
    "load_suite",
    "markdown_table",
    "missingness",
    "parse_suite",
    "provenance",
    "provenance_lines",
    "read_results",
    "register_method",
    "run_cell",
    "run_suite",
    "score",
    "summarise",
    "write_report",
]

"""Running a suite: isolated, timed, resumable cells written to a tidy ``results.csv``.

Each cell runs in a spawned worker process (``cells_per_process`` cells per worker, so a
crash, a leaked global or a hung peer costs at most that worker; 0 runs cells in-process),
gets fresh seeds, is timed (wall, peak resident memory, peak GPU memory) and becomes rows
``(cell, dataset, scenario, rate, method, seed, metric, value, status, error, ...)``. A
failure is a row with ``status="error"`` and the error; a dataset whose files are absent is
``status="skipped"``. Resuming (``resume=True``) skips the cells already ``ok`` or ``skipped``
and retries errors; ``meta.json`` records the provenance of every run that wrote the folder.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import resource
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._utils import atomic_path, track
from ._data import BenchData, load_dataset
from ._methods import CellContext, get_method
from ._provenance import provenance
from ._scoring import score
from ._suite import Cell, Suite
from .missingness import apply_scenario

logger = logging.getLogger(__name__)

COLUMNS = ["cell", "dataset", "scenario", "modality", "rate", "method", "seed", "metric", "value", "status", "error",
           "wall_s", "peak_rss_mb", "gpu_mem_mb", "achieved_rate", "n_warnings", "dataset_params", "scenario_params"]
FINISHED = ("ok", "skipped")
_CACHE: dict[tuple, BenchData] = {}
_CACHE_SIZE = 2
_STARTUP_TIMEOUT_S = 600


def _reset_peak_rss() -> None:
    """Reset the kernel's peak-RSS counter of this process (Linux); elsewhere it is process-wide."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return


def _peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def _gpu_reset() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _gpu_peak_mb() -> float:
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else float("nan")


def _load(cell: Cell, data_dir: str | None) -> BenchData:
    key = (cell.dataset_name, cell.dataset_params, cell.seed if cell.dataset_name == "synthetic" else 0, data_dir)
    if key not in _CACHE:
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = load_dataset(cell.dataset_name, seed=cell.seed, data_dir=data_dir,
                                   **json.loads(cell.dataset_params))
    return _CACHE[key]


def _rows(cell: Cell, metrics: dict[str, float], status: str, error: str, extra: dict[str, Any]) -> list[dict]:
    base = {"cell": cell.key, "dataset": cell.dataset, "scenario": cell.scenario, "modality": cell.modality or "",
            "rate": cell.rate, "method": cell.method, "seed": cell.seed, "status": status, "error": error,
            "dataset_params": cell.dataset_params, "scenario_params": cell.scenario_params,
            "wall_s": np.nan, "peak_rss_mb": np.nan, "gpu_mem_mb": np.nan, "achieved_rate": np.nan, "n_warnings": 0}
    base.update(extra)
    if not metrics:
        return [{**base, "metric": "", "value": np.nan}]
    return [{**base, "metric": k, "value": float(v)} for k, v in metrics.items()]


def _describe(err: BaseException) -> str:
    where = traceback.extract_tb(err.__traceback__)
    loc = f" (at {Path(where[-1].filename).name}:{where[-1].lineno})" if where else ""
    return f"{type(err).__name__}: {err}{loc}".replace("\n", " ")[:1000]


def _execute(cell: Cell, train: dict[str, Any], data_dir: str | None, device: str,
             extra: dict[str, Any]) -> tuple[str, str, dict[str, float]]:
    """``(status, error or notes, metrics)`` of one cell; a dataset whose files are absent is skipped."""
    import mdlprob

    try:
        data = _load(cell, data_dir)
    except FileNotFoundError as err:
        return "skipped", _describe(err), {}
    method = get_method(cell.method)
    method.check_requirements()
    mdlprob.settings.seed = cell.seed
    mdata, truth = apply_scenario(cell.scenario, data.mdata, modality=cell.modality or data.target, rate=cell.rate,
                                  seed=cell.seed, **json.loads(cell.scenario_params))
    extra.update(achieved_rate=truth.achieved_rate, modality=truth.modality)
    ctx = CellContext(data, mdata, truth, cell.seed, train, device)
    metrics, notes = score(ctx, method.fit_predict(ctx))
    return "ok", "; ".join(notes), metrics


def run_cell(cell: Cell, *, train: dict[str, Any], data_dir: str | None = None, device: str = "cpu") -> list[dict]:
    """Run one cell in this process and return its result rows; never raises (errors become rows)."""
    _reset_peak_rss()
    _gpu_reset()
    start = time.perf_counter()
    extra: dict[str, Any] = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            status, error, metrics = _execute(cell, train, data_dir, device, extra)
        except (Exception, SystemExit) as err:  # a failing method is a row, never a crash of the suite
            status, error, metrics = "error", _describe(err), {}
    extra.update(wall_s=time.perf_counter() - start, peak_rss_mb=_peak_rss_mb(), gpu_mem_mb=_gpu_peak_mb(),
                 n_warnings=len(caught))
    return _rows(cell, metrics, status, error, extra)


def _serve(conn: Any, threads: int) -> None:
    """Worker loop: receive ``(cell, kwargs)``, send back its rows; ``None`` stops it."""
    import torch

    import mdlprob

    torch.set_num_threads(threads)
    mdlprob.settings.progress_bar = False
    conn.send("ready")
    while True:
        task = conn.recv()
        if task is None:
            return
        cell, kwargs = task
        conn.send(run_cell(cell, **kwargs))


class _Worker:
    """A spawned process running cells; replaced after ``max_cells`` cells, a crash or a timeout."""

    def __init__(self, *, max_cells: int, timeout_s: float, threads: int) -> None:
        self.max_cells, self.timeout_s, self.threads = max_cells, timeout_s, threads
        self.proc: Any = None
        self.done = 0

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, self.threads), daemon=True)
        self.proc.start()
        child.close()
        self.done = 0
        # Wait for the imports, so that a cell's timeout does not include the worker's start-up.
        if not self.conn.poll(_STARTUP_TIMEOUT_S) or self.conn.recv() != "ready":
            msg = f"The benchmark worker process did not start within {_STARTUP_TIMEOUT_S} s."
            raise RuntimeError(msg)

    def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.is_alive():
            try:
                self.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            self.proc.join(10)
            if self.proc.is_alive():
                self.proc.terminate()
        self.proc.join()
        self.conn.close()
        self.proc = None

    def run(self, cell: Cell, kwargs: dict[str, Any]) -> list[dict]:
        if self.proc is None or self.done >= self.max_cells:
            self.close()
            self._start()
        start = time.perf_counter()
        try:
            self.conn.send((cell, kwargs))
            if self.conn.poll(self.timeout_s):
                rows = self.conn.recv()
                self.done += 1
                return rows
            error = f"TimeoutError: the cell ran past timeout_s={self.timeout_s:g} s and was stopped."
            self.proc.terminate()
        except (EOFError, OSError):  # the worker died (a segfault, os._exit, out of memory)
            self.proc.join(5)
            error = f"WorkerDied: the worker process exited with code {self.proc.exitcode} while running the cell."
        self.close()
        return _rows(cell, {}, "error", error, {"wall_s": time.perf_counter() - start})


def read_results(out: str | os.PathLike) -> pd.DataFrame:
    """The ``results.csv`` of a suite output folder (an empty table when there is none)."""
    path = Path(out) / "results.csv"
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS)
    return pd.read_csv(path, keep_default_na=False, na_values=["", "nan", "NaN"],
                       dtype={"error": str, "modality": str, "metric": str, "cell": str}).fillna(
                           {"error": "", "metric": "", "modality": ""})


def _write(table: pd.DataFrame, out: Path) -> None:
    with atomic_path(out / "results.csv") as tmp:
        table.to_csv(tmp, index=False)


def run_suite(suite: Suite, *, out: str | os.PathLike, data_dir: str | os.PathLike | None = None, device: str = "cpu",
              cells_per_process: int | None = None, progress_bar: bool = True, resume: bool | None = None,
              command: str | None = None) -> pd.DataFrame:
    """Run every unfinished cell of ``suite`` and write ``out/results.csv`` after each one.

    Parameters
    ----------
    out
        Output folder.
    data_dir
        Folder of the shared datasets (default: ``$MDLPROB_DATA`` or ``../shared/data``).
    device
        ``cpu``, ``cuda`` or ``auto``, passed to the models' ``train(accelerator=...)``.
    cells_per_process
        Override of the suite's isolation: cells per spawned worker, 0 for in-process.
    resume
        Continue the run whose ``results.csv`` is in ``out`` (finished cells are skipped).
        ``False`` refuses a folder that holds results; ``None`` (the default) resumes with a
        ``FutureWarning``: resuming will have to be asked for.
    command
        The command recorded in ``meta.json`` (default: this process's command line).

    Returns
    -------
    The full results table (previous and new rows).
    """
    out = Path(out)
    previous = (out / "results.csv").exists()
    if previous and resume is False:
        msg = (f"{out} already holds benchmark results (results.csv); pass resume=True (mdlprob bench --resume) to "
               "continue that run, or choose a new output folder.")
        raise FileExistsError(msg)
    if previous and resume is None:
        warnings.warn(f"run_suite resumes the results in {out} because resume was not given; pass resume=True to "
                      "continue a run (resuming implicitly is deprecated).", FutureWarning, stacklevel=2)
    out.mkdir(parents=True, exist_ok=True)
    per_process = suite.cells_per_process if cells_per_process is None else int(cells_per_process)
    table = read_results(out)
    done = set(table.loc[table["status"].isin(FINISHED), "cell"])
    table = table[table["cell"].isin(done)]
    todo = [c for c in suite.cells() if c.key not in done]
    kwargs = {"train": suite.train, "data_dir": None if data_dir is None else str(data_dir), "device": device}
    _write_meta(suite, out, device, command, resumed=previous)
    worker = _Worker(max_cells=per_process, timeout_s=suite.timeout_s, threads=suite.threads) if per_process else None
    try:
        for cell in track(todo, description=f"bench {suite.name}", progress_bar=progress_bar):
            rows = worker.run(cell, kwargs) if worker else run_cell(cell, **kwargs)
            if rows[0]["status"] == "error":
                logger.info("%s / %s / %s %.2f / seed %d: %s", cell.dataset, cell.method, cell.scenario, cell.rate,
                            cell.seed, rows[0]["error"])
            table = pd.concat([table, pd.DataFrame(rows, columns=COLUMNS)], ignore_index=True) if len(table) else \
                pd.DataFrame(rows, columns=COLUMNS)
            _write(table, out)
    finally:
        if worker:
            worker.close()
    return table


def _write_meta(suite: Suite, out: Path, device: str, command: str | None, *, resumed: bool) -> None:
    """``meta.json``: the suite, and the provenance of each run that wrote ``out`` (``runs``, oldest first)."""
    runs = []
    if resumed and (out / "meta.json").exists():
        try:
            old = json.loads((out / "meta.json").read_text())
        except (OSError, ValueError):
            old = {}
        runs = old.get("runs") or ([{k: old[k] for k in ("started", "mdlprob", "torch", "python") if k in old}]
                                   if old else [])
    run = {**provenance(command), "device": device}
    meta = {"suite": suite.name, "description": suite.description, "train": suite.train, "seeds": suite.seeds,
            "cells": len(suite.cells()), "device": device, "started": run["date"], "runs": [*runs, run]}
    with atomic_path(out / "meta.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2))

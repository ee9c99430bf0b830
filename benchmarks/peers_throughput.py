"""Training throughput of scvi-tools TOTALVI next to mdlprob's default ``train()``, on the same data and batch sizes.

The data are those of ``benchmarks/throughput.py`` (``mdlprob.datasets.synthetic``: RNA and
protein counts, every observation with both). For each batch size, in the same process and
interleaved:

* ``TOTALVI``: ``scvi.model.TOTALVI(adata, n_latent=..., n_hidden=...)`` with the proteins in
  ``obsm["protein"]``, ``train(max_epochs=E, batch_size=B, train_size=0.9, early_stopping=False)``
  (scvi-tools' own defaults otherwise: Lightning trainer, KL warm-up, LR schedule);
* mdlprob models (``--models``, default ``PoEVAE``):
  ``Model(mdata).train(max_epochs=E, batch_size=B, early_stopping=True)``, the default path.

Each system runs one warm-up epoch, then ``--repeats`` timed calls of ``--epochs`` epochs; the
whole ``train`` call is timed (set-up included: that is what a user waits for), and throughput
counts training rows (90% of the observations for both). Reports the median obs/s and the
ratio mdlprob / TOTALVI (issue 20's goal on a GPU: >= 2.5x). Without scvi-tools the script
says so and exits 0 without writing results (``pip install -e .[peers]`` installs it).

Usage::

    python benchmarks/peers_throughput.py --device cuda --n-obs 100000 --batch-sizes 256,1024
    python benchmarks/peers_throughput.py --quick --out /tmp/peers   # CPU smoke test, seconds
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import logging
import os
import platform
import shlex
import statistics
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput as tp  # noqa: E402

import mdlprob  # noqa: E402

#: Issue 20: mdlprob's default train() at >= 2.5x TOTALVI's obs/s at the same batch size (GPU).
GOAL_VS_TOTALVI = 2.5
DEFAULTS = {"n_obs": 3000, "n_genes": 2000, "n_proteins": 30, "batch_sizes": "256", "epochs": 3,
            "n_hidden": 256, "n_latent": 20, "repeats": 2}
QUICK = {"n_obs": 256, "n_genes": 64, "n_proteins": 8, "batch_sizes": "64", "epochs": 1,
         "n_hidden": 32, "n_latent": 4, "repeats": 1}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--models", default="PoEVAE", help="comma-separated mdlprob models, from " + ", ".join(tp.MODELS))
    for key, value in DEFAULTS.items():
        p.add_argument(f"--{key.replace('_', '-')}", default=None, type=type(value),
                       help=f"default {value} ({QUICK[key]} with --quick)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (1 with --quick)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"), help="output folder")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one run: a smoke test in seconds")
    args = p.parse_args(argv)
    base = QUICK if args.quick else DEFAULTS
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.models = [m.strip() for m in str(args.models).split(",") if m.strip()]
    unknown = [m for m in args.models if m not in tp.MODELS]
    if unknown:
        p.error(f"--models must name some of {', '.join(tp.MODELS)}, got {', '.join(unknown)}")
    args.batch_sizes = [int(b) for b in str(args.batch_sizes).split(",") if b.strip()]
    if not args.batch_sizes or min(args.batch_sizes) < 1:
        p.error(f"--batch-sizes must be positive integers, got {args.batch_sizes}")
    for name in ("n_obs", "n_genes", "n_proteins", "epochs", "repeats", "n_hidden", "n_latent"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.threads is None and args.quick:
        args.threads = 1
    return args


class Totalvi:
    """``scvi.model.TOTALVI`` on the RNA counts with the proteins in ``obsm``; ``run(k)`` is one ``train`` call."""

    def __init__(self, mdata, args, device: torch.device, batch_size: int) -> None:
        import pandas as pd
        import scvi

        scvi.settings.seed = args.seed
        adata = mdata.mod["rna"].copy()
        protein = mdata.mod["protein"]
        adata.obsm["protein"] = pd.DataFrame(_dense(protein.X), index=adata.obs_names, columns=protein.var_names)
        scvi.model.TOTALVI.setup_anndata(adata, protein_expression_obsm_key="protein")
        self.model = scvi.model.TOTALVI(adata, n_latent=args.n_latent, n_hidden=args.n_hidden)
        self.batch_size, self.device = batch_size, device
        self.rows_per_epoch = round(0.9 * adata.n_obs)

    def run(self, epochs: int) -> None:
        self.model.train(max_epochs=epochs, batch_size=self.batch_size, train_size=0.9, early_stopping=False,
                         accelerator="gpu" if self.device.type == "cuda" else "cpu", devices=1,
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)


def _dense(x):
    import numpy as np

    return x.toarray() if hasattr(x, "toarray") else np.asarray(x)


def _median_obs_per_s(system, args, device) -> tuple[float, list[float]]:
    runs = []
    for _ in range(args.repeats):
        seconds, _ = tp.timed(system, args.epochs, device)
        runs.append(system.rows_per_epoch * args.epochs / seconds)
    return statistics.median(runs), runs


def _measure(mdata, args, device: torch.device, bs: int) -> list[dict[str, Any]]:
    systems: dict[str, Any] = {"TOTALVI": Totalvi(mdata, args, device, bs)}
    for name in args.models:
        torch.manual_seed(args.seed)
        systems[name] = tp.Mdlprob(name, mdata, args, device, bs)
    for system in systems.values():  # warm-up
        system.run(1)
    runs: dict[str, list[float]] = {k: [] for k in systems}
    for _ in range(args.repeats):  # interleaved
        for key, system in systems.items():
            seconds, _ = tp.timed(system, args.epochs, device)
            runs[key].append(system.rows_per_epoch * args.epochs / seconds)
    totalvi = statistics.median(runs["TOTALVI"])
    return [{"system": k, "batch_size": bs, "obs_per_s": statistics.median(v), "runs": v,
             "ratio_vs_totalvi": statistics.median(v) / totalvi} for k, v in runs.items()]


def markdown(report: dict[str, Any]) -> str:
    meta, cfg = report["meta"], report["config"]
    rows = [f"| {r['system']} | {r['batch_size']} | {r['obs_per_s']:,.0f} | {r['ratio_vs_totalvi']:.2f}× "
            f"| {', '.join(f'{v:,.0f}' for v in r['runs'])} |" for r in report["results"]]
    return "\n".join([
        "# Training throughput: mdlprob's default `train()` against scvi-tools TOTALVI",
        "",
        f"Training rows per second of whole `train(max_epochs={cfg['epochs']})` calls (median of {cfg['repeats']}, "
        "after a 1-epoch warm-up; the systems interleaved in one process). "
        f"Goal (issue 20, on a GPU): mdlprob ≥ {GOAL_VS_TOTALVI}× TOTALVI at the same batch size.",
        "",
        "| system | batch | obs/s | ratio to TOTALVI | runs (obs/s) |",
        "|---|---:|---:|---:|---|",
        *rows,
        "",
        f"- data: `mdlprob.datasets.synthetic({cfg['n_obs']})`, {cfg['n_genes']} genes + {cfg['n_proteins']} "
        f"proteins; n_hidden={cfg['n_hidden']}, n_latent={cfg['n_latent']}",
        f"- device: {meta['device_name']} ({meta['device_type']}); torch {meta['torch_version']}, "
        f"scvi-tools {meta['scvi_version']}, mdlprob {meta['mdlprob_version']}; torch threads {meta['n_threads']}; "
        f"load average (1 min) {meta['load_average_start']} / {meta['load_average_end']}",
        f"- date: {meta['date']}",
        f"- command: `{meta['command']}`",
        "",
    ])


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if importlib.util.find_spec("scvi") is None:
        print("peers_throughput: skipped, the package scvi-tools (module `scvi`) is not installed; "
              "install it with `pip install -e .[peers]` or `pip install scvi-tools`.", flush=True)
        return None
    threads_before = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Lightning's advice on workers and logging is not the measurement
            logging.getLogger("lightning").setLevel(logging.ERROR)
            logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
            return _run(args, argv)
    finally:
        torch.set_num_threads(threads_before)


def _report(args: argparse.Namespace, argv: list[str], device: torch.device, load_start: float | None,
            results: list[dict[str, Any]]) -> dict[str, Any]:
    import scvi

    return {
        "meta": {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                 "command": shlex.join([Path(sys.executable).name, "benchmarks/peers_throughput.py", *argv]),
                 "device_type": device.type, "device_name": tp.device_name(device),
                 "torch_version": torch.__version__, "scvi_version": scvi.__version__,
                 "mdlprob_version": mdlprob.__version__, "python_version": platform.python_version(),
                 "cpu_count": os.cpu_count(), "n_threads": torch.get_num_threads(),
                 "load_average_start": load_start, "load_average_end": tp._load_average()},
        "config": {k: getattr(args, k) for k in ("models", "n_obs", "n_genes", "n_proteins", "batch_sizes",
                                                 "epochs", "repeats", "n_hidden", "n_latent", "seed", "quick")},
        "goal": {"ratio_vs_totalvi": GOAL_VS_TOTALVI},
        "results": results,
    }


def _run(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    load_start = tp._load_average()
    device = tp.resolve_device(args.device)
    mdata, _, _ = tp.make_data(args)
    mdlprob.settings.progress_bar = False
    out = Path(args.out)
    results: list[dict[str, Any]] = []
    report: dict[str, Any] = {}
    for bs in args.batch_sizes:
        for r in _measure(mdata, args, device, bs):
            results.append(r)
            print(f"batch {bs:>5}  {r['system']:<9} {r['obs_per_s']:>10,.0f} obs/s  "
                  f"{r['ratio_vs_totalvi']:.2f}x TOTALVI", flush=True)
        report = _report(args, argv, device, load_start, results)  # after every batch size: a time-out keeps it
        tp.write_atomic(out / "peers_throughput.json", json.dumps(report, indent=1) + "\n")
        tp.write_atomic(out / "peers_throughput.md", markdown(report))
    print(f"wrote {out / 'peers_throughput.json'} and {out / 'peers_throughput.md'}")
    return report


if __name__ == "__main__":
    main()

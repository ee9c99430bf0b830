"""Time and peak memory of one training epoch from a backed ``.h5mu`` (out-of-core) and in memory.

For each configuration a fresh process writes ``mdlprob.datasets.synthetic(n_obs)`` (RNA
as CSR, truth dropped) to a temporary ``.h5mu``; then a fresh process per mode opens it and
trains ``PoEVAE`` for one epoch, reporting:

* ``build_s``: ``PoEVAE(mdata)`` (backed: a pass over the file for NaN detection and a
  bounded row sample);
* ``train_s``: ``model.train(max_epochs=1)`` (backed: plus the streamed statistics pass);
* ``epoch_obs_per_s``: ``n_obs / train_s``;
* ``peak_rss_gb``: the process's peak resident memory (``ru_maxrss``), imports included
  (``import_rss_gb`` is that baseline; the one-off ``torch._dynamo`` import of the first
  ``Adam`` is done before timing).

Modes: ``backed`` (``mudata.read_h5mu(path, backed="r")``) and ``memory``
(``mudata.read_h5mu(path)``; skipped above ``--memory-max`` observations). Modalities: 2
(rna, protein), 3 (+ clinical table) and 5 (+ two dense Gaussian modalities of 50 features).
Writes ``OUT/scale.json``, ``OUT/scale.md`` and ``OUT/scale.png``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/scale.py --out benchmarks/results            # 1e4, 1e5
    OMP_NUM_THREADS=1 python benchmarks/scale.py --out benchmarks/results --large    # + 1e6
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

LIKS = {"rna": "nb", "protein": "nb", "clinical": "mixed", "extra1": "gaussian", "extra2": "gaussian"}
MODALITY_SETS = {2: ("rna", "protein"), 3: ("rna", "protein", "clinical"),
                 5: ("rna", "protein", "clinical", "extra1", "extra2")}
GOAL_GB = 4.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--sizes", default="10000,100000", help="n_obs values for the 3-modality sweep")
    p.add_argument("--large", action="store_true", help="add n_obs=1,000,000 (backed only by default)")
    p.add_argument("--modality-n-obs", type=int, default=100_000, help="n_obs of the 2/3/5-modality sweep")
    p.add_argument("--memory-max", type=int, default=100_000, help="largest n_obs also trained in memory")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--tmp", type=Path, default=None, help="folder for the .h5mu files (default: system temp)")
    p.add_argument("--worker", choices=["generate", "train"], help=argparse.SUPPRESS)
    p.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--n-obs", type=int, help=argparse.SUPPRESS)
    p.add_argument("--n-mod", type=int, help=argparse.SUPPRESS)
    p.add_argument("--mode", choices=["backed", "memory"], help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------ workers
def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def generate(path: Path, n_obs: int, n_mod: int) -> dict[str, Any]:
    """Write the data set of ``n_mod`` modalities to ``path``."""
    import anndata as ad
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    import mdlprob

    t0 = time.perf_counter()
    base = [m for m in MODALITY_SETS[n_mod] if m in ("rna", "protein", "clinical")]
    mdata = mdlprob.datasets.synthetic(n_obs, modalities=base, missing={"protein": 0.2}, seed=0)
    z = mdata.obsm["z_true"]
    mods = {m: mdata.mod[m] for m in base}
    del mdata
    mods["rna"].X = sp.csr_matrix(mods["rna"].X)
    rng = np.random.default_rng(1)
    for m in MODALITY_SETS[n_mod][len(base):]:
        w = rng.standard_normal((z.shape[1], 50)).astype(np.float32)
        x = z @ w + 0.5 * rng.standard_normal((n_obs, 50)).astype(np.float32)
        mods[m] = ad.AnnData(x, obs=pd.DataFrame(index=mods["rna"].obs_names),
                             var=pd.DataFrame(index=[f"{m}_{i}" for i in range(50)]))
    mdata = mdlprob.data.make_mudata(mods, obs_order=mods["rna"].obs_names)
    mdlprob.data.setup_mudata(mdata, likelihoods={m: LIKS[m] for m in MODALITY_SETS[n_mod]})
    mdata.write_h5mu(path)
    return {"generate_s": time.perf_counter() - t0, "file_gb": path.stat().st_size / 2**30}


def train(path: Path, mode: str, batch_size: int) -> dict[str, Any]:
    """Open ``path`` backed or in memory and train PoEVAE for one epoch."""
    import mudata as md
    import torch

    import mdlprob

    torch.set_num_threads(1)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # first Adam imports torch._dynamo: seconds, not timed
    mdlprob.settings.seed = 0
    import_rss = _rss_gb()
    t0 = time.perf_counter()
    mdata = md.read_h5mu(path, backed="r" if mode == "backed" else None)
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = mdlprob.PoEVAE(mdata)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.train(max_epochs=1, batch_size=batch_size, accelerator="cpu", progress_bar=False)
    train_s = time.perf_counter() - t0
    return {"read_s": read_s, "build_s": build_s, "train_s": train_s, "epoch_obs_per_s": mdata.n_obs / train_s,
            "import_rss_gb": import_rss, "peak_rss_gb": _rss_gb(), "loss": model.history_["train_loss"][-1]}


def _spawn(args: list[str]) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        msg = f"worker {args} failed:\n{proc.stderr[-3000:]}"
        raise RuntimeError(msg)
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------- main
def configs(args: argparse.Namespace) -> list[tuple[int, int]]:
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.large:
        sizes.append(1_000_000)
    out = [(n, 3) for n in sizes]
    out += [(args.modality_n_obs, k) for k in (2, 5)]
    return sorted(set(out))


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.worker == "generate":
        result = generate(args.path, args.n_obs, args.n_mod)
    elif args.worker == "train":
        result = train(args.path, args.mode, args.batch_size)
    else:
        return run(args, list(argv) if argv is not None else sys.argv[1:])
    sys.stdout.write(json.dumps(result) + "\n")
    return result


def run(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    rows = []
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(dir=args.tmp, prefix="mdlprob-scale-") as tmp:
        for n_obs, n_mod in configs(args):
            path = Path(tmp) / f"synthetic_{n_obs}_{n_mod}.h5mu"
            gen = _spawn(["--worker", "generate", "--path", str(path), "--n-obs", str(n_obs), "--n-mod", str(n_mod)])
            modes = ["backed", "memory"] if n_obs <= args.memory_max else ["backed"]
            for mode in modes:
                res = _spawn(["--worker", "train", "--path", str(path), "--mode", mode,
                              "--batch-size", str(args.batch_size)])
                rows.append({"n_obs": n_obs, "n_modalities": n_mod, "mode": mode, **gen, **res})
                load.append(os.getloadavg()[0])
                sys.stderr.write(f"{n_obs:>9,} obs {n_mod} mods {mode:<7} train {res['train_s']:8.1f} s  "
                                 f"peak {res['peak_rss_gb']:.2f} GB\n")
            path.unlink()
    report = {"results": rows, "config": {"batch_size": args.batch_size, "model": "PoEVAE() defaults",
                                          "goal_peak_rss_gb": GOAL_GB},
              "env": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                      "python": platform.python_version(), "load_1min": load,
                      "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                      "command": "python benchmarks/scale.py " + shlex.join(argv)},
              "provenance": _provenance(argv)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(report, indent=1))
    (args.out / "scale.md").write_text(markdown(report))
    plot(rows, args.out / "scale.png", args.modality_n_obs)
    return report


def markdown(report: dict[str, Any]) -> str:
    rows, env = report["results"], report["env"]
    lines = [
        "# Out-of-core training: time and peak memory of one epoch", "",
        f"PoEVAE (default sizes), batch {report['config']['batch_size']}, one epoch on CPU, one torch thread, "
        "each measurement in a fresh process. `backed`: `mudata.read_h5mu(path, backed=\"r\")`, values read "
        "from disk in shuffled contiguous chunks; `memory`: the file read whole. Peak RSS includes the "
        f"interpreter and torch/pyro imports (about {rows[0]['import_rss_gb']:.2f} GB).", "",
        "| n_obs | modalities | mode | file GB | build s | train s | obs/s | peak RSS GB |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['n_obs']:,} | {r['n_modalities']} | {r['mode']} | {r['file_gb']:.2f} | {r['build_s']:.1f} | "
                     f"{r['train_s']:.1f} | {r['epoch_obs_per_s']:,.0f} | {r['peak_rss_gb']:.2f} |")
    big = [r for r in rows if r["mode"] == "backed" and r["n_obs"] >= 1_000_000]
    lines += ["", f"## Goal: one backed epoch on 10^6 observations under {GOAL_GB:g} GB peak RSS", ""]
    if big:
        ok = all(r["peak_rss_gb"] < GOAL_GB for r in big)
        peaks = ", ".join(f"{r['peak_rss_gb']:.2f} GB" for r in big)
        lines.append(f"Peak RSS {peaks} → **{'PASS' if ok else 'FAIL'}**.")
    else:
        lines.append("Not measured in this run (pass `--large`).")
    lines += ["", "## Set-up", "",
              "- data: `mdlprob.datasets.synthetic(n_obs)` (200 genes as CSR, 30 proteins 20% absent, clinical "
              "table with NaN), 5 modalities add two 50-feature Gaussian modalities",
              f"- machine: {env['cpu']}, {env['cpus']} CPUs shared with other jobs; 1-min load average during the "
              f"run: {', '.join(f'{v:.1f}' for v in env['load_1min'])} (times are inflated by contention; memory is not)",
              f"- date: {env['date']}", f"- command: `{env['command']}`"]
    if report.get("provenance"):
        from mdlprob.benchmark import provenance_lines

        lines += provenance_lines(report["provenance"])[2:]  # code, packages, machine
    lines.append("")
    return "\n".join(lines)


def _provenance(argv: list[str]) -> dict[str, Any]:
    """Imported here: the measured child processes run this file and must not load mdlprob at start."""
    from mdlprob.benchmark import provenance

    return provenance(["python", "benchmarks/scale.py", *argv])


def plot(rows: list[dict[str, Any]], path: Path, modality_n_obs: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for mode, marker in (("backed", "o"), ("memory", "s")):
        sweep = sorted((r for r in rows if r["mode"] == mode and r["n_modalities"] == 3), key=lambda r: r["n_obs"])
        mods = sorted((r for r in rows if r["mode"] == mode and r["n_obs"] == modality_n_obs),
                      key=lambda r: r["n_modalities"])
        if sweep:
            n = [r["n_obs"] for r in sweep]
            axes[0].plot(n, [r["train_s"] for r in sweep], marker=marker, label=mode)
            axes[1].plot(n, [r["peak_rss_gb"] for r in sweep], marker=marker, label=mode)
        if mods:
            axes[2].plot([r["n_modalities"] for r in mods], [r["train_s"] for r in mods], marker=marker, label=mode)
    axes[0].set(xscale="log", yscale="log", xlabel="observations", ylabel="one epoch (s)", title="time (3 modalities)")
    axes[1].set(xscale="log", xlabel="observations", ylabel="peak RSS (GB)", title="memory (3 modalities)")
    axes[1].axhline(GOAL_GB, color="grey", ls="--", lw=0.8, label=f"goal {GOAL_GB:g} GB")
    axes[2].set(xlabel="modalities", ylabel="one epoch (s)", title=f"time vs modalities ({modality_n_obs:,} obs)")
    for ax in axes:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()

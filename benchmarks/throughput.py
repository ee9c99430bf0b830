"""Training throughput of mdlprob's PoEVAE against a hand-written PyTorch loop of the same model.

Every system trains the same product-of-experts VAE (NB likelihoods for RNA and protein,
one hidden layer, the MVAE objective) on the same synthetic CITE-seq-like data in the same
process, so that the ratios are meaningful even where absolute numbers drift between runs:

* ``reference``: ``benchmarks/_reference_poe.py``, plain eager PyTorch, data resident on the
  device, batches gathered by index with ``torch.randperm``, no per-step host sync;
* ``reference_compiled`` (with ``--compile``): the same, its loss under ``torch.compile``;
* ``mdlprob_fast``: ``PoEVAE.train(inference="fast")``;
* ``mdlprob_svi``: ``PoEVAE.train(inference="svi")`` (Pyro ``SVI`` + ``TraceMeanField_ELBO``).

Only training epochs are timed: each system first runs one warm-up epoch (for mdlprob a
``train(max_epochs=1)`` call), then ``--repeats`` timed runs of ``--epochs`` epochs each
(for mdlprob a ``train(max_epochs=epochs)`` call, which continues training), interleaved
across systems; the median is reported. Writes ``OUT/throughput.json`` and
``OUT/throughput.md``.

Usage::

    python benchmarks/throughput.py --out benchmarks/results
    python benchmarks/throughput.py --device cuda --batch-sizes 256,1024 --compile
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyro
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _reference_poe import ReferencePoEVAE, copy_from_mdlprob  # noqa: E402

import mdlprob  # noqa: E402
from mdlprob.benchmark import provenance  # noqa: E402

GOAL_RATIO = 0.6
MODALITIES = ("rna", "protein")
DEFAULTS = {"n_obs": 5000, "n_genes": 2000, "n_proteins": 30, "batch_sizes": "256,1024", "epochs": 3,
            "n_hidden": 256, "n_latent": 20, "repeats": 3}
QUICK = {"n_obs": 256, "n_genes": 64, "n_proteins": 8, "batch_sizes": "64,128", "epochs": 1,
         "n_hidden": 32, "n_latent": 4, "repeats": 1}


# ---------------------------------------------------------------------------------------- arguments
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--n-obs", type=int, default=None, help=f"observations (default {DEFAULTS['n_obs']})")
    p.add_argument("--n-genes", type=int, default=None, help=f"RNA features (default {DEFAULTS['n_genes']})")
    p.add_argument("--n-proteins", type=int, default=None, help=f"protein features (default {DEFAULTS['n_proteins']})")
    p.add_argument("--batch-sizes", default=None, help=f"comma-separated (default {DEFAULTS['batch_sizes']})")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"timed epochs per run, after 1 warm-up epoch (default {DEFAULTS['epochs']})")
    p.add_argument("--repeats", type=int, default=None,
                   help=f"timed runs per system, median reported (default {DEFAULTS['repeats']})")
    p.add_argument("--n-hidden", type=int, default=None, help=f"hidden width (default {DEFAULTS['n_hidden']})")
    p.add_argument("--n-latent", type=int, default=None, help=f"latent dimension (default {DEFAULTS['n_latent']})")
    p.add_argument("--objective", choices=("mvae", "cross"), default="mvae",
                   help="mvae: each single-modality term reconstructs its own modality; cross: every modality "
                        "(PoEVAE(cross_reconstruction=True))")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--compile", action="store_true", help="also time the reference with its loss under torch.compile")
    p.add_argument("--no-svi", action="store_true", help="skip mdlprob_svi")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's own choice; 1 with --quick)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--note", default="", help="free text recorded with the results (e.g. machine conditions)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"), help="output folder")
    p.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    args = p.parse_args(argv)
    base = QUICK if args.quick else DEFAULTS
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.batch_sizes = [int(b) for b in str(args.batch_sizes).split(",") if b.strip()]
    for name in ("n_obs", "n_genes", "n_proteins", "epochs", "repeats", "n_hidden", "n_latent"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.threads is None and args.quick:
        args.threads = 1
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be >= 1")
    if not args.batch_sizes or min(args.batch_sizes) < 1:
        p.error("--batch-sizes must be positive integers")
    return args


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        msg = "--device cuda requested but torch sees no CUDA device."
        raise SystemExit(msg)
    return torch.device(name)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ---------------------------------------------------------------------------------------- data
def make_data(args: argparse.Namespace):
    mdata = mdlprob.datasets.synthetic(args.n_obs, modalities=MODALITIES,
                                       n_vars={"rna": args.n_genes, "protein": args.n_proteins}, seed=args.seed)
    # The hand-written reference implements NB on the count scale, without library-size offsets.
    mdlprob.data.setup_mudata(mdata, likelihoods=dict.fromkeys(MODALITIES, "nb"), library_size=False)
    n = mdata.n_obs
    xs, presence = [], np.zeros((n, len(MODALITIES)), dtype=bool)
    for j, m in enumerate(MODALITIES):
        rows = np.asarray(mdata.obsmap[m]).astype(np.int64) - 1
        presence[:, j] = rows >= 0
        dense = np.zeros((n, mdata.mod[m].n_vars), dtype=np.float32)
        X = mdata.mod[m].X
        X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
        dense[presence[:, j]] = X[rows[presence[:, j]]]
        xs.append(torch.from_numpy(dense))
    return mdata, xs, torch.from_numpy(presence)


# ---------------------------------------------------------------------------------------- systems
def reference_model(xs, presence, args) -> ReferencePoEVAE:
    return ReferencePoEVAE(dict(zip(MODALITIES, xs, strict=True)), presence, n_hidden=args.n_hidden,
                           n_latent=args.n_latent,
                           cross_reconstruction=args.objective == "cross")


def mdlprob_model(mdata, args) -> mdlprob.PoEVAE:
    """PoEVAE with the benchmark's objective (older versions without ``cross_reconstruction`` are MVAE)."""
    kwargs = {}
    if "cross_reconstruction" in inspect.signature(mdlprob.PoEVAE).parameters:
        kwargs["cross_reconstruction"] = args.objective == "cross"
    elif args.objective == "cross":
        msg = "--objective cross needs PoEVAE(cross_reconstruction=...), which this mdlprob lacks."
        raise SystemExit(msg)
    return mdlprob.PoEVAE(mdata, n_latent=args.n_latent, n_hidden=args.n_hidden, **kwargs)


class Reference:
    """The hand-written loop; ``run(k)`` trains ``k`` epochs, syncing once per epoch (like mdlprob)."""

    def __init__(self, xs, presence, args, device: torch.device, batch_size: int, *, compiled: bool) -> None:
        self.model = reference_model(xs, presence, args).to(device)
        self.xs = [x.to(device) for x in xs]
        self.presence = presence.to(device)
        self.n = presence.shape[0]
        self.n_steps = max(1, round(self.n / batch_size))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3, fused=device.type == "cuda")
        self.loss_fn = torch.compile(self.model) if compiled else self.model
        self.device = device
        self.losses: list[float] = []

    def run(self, epochs: int) -> None:
        for _ in range(epochs):
            total = torch.zeros((), device=self.device)
            for idx in torch.tensor_split(torch.randperm(self.n, device=self.device), self.n_steps):
                loss = self.loss_fn([x.index_select(0, idx) for x in self.xs], self.presence.index_select(0, idx))
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                total = total + loss.detach() * len(idx)
            self.losses.append(float(total) / self.n)

    def last_loss(self) -> float:
        return self.losses[-1]


class Mdlprob:
    """``PoEVAE.train`` with ``inference`` fast or svi; each ``run(k)`` is one train call."""

    def __init__(self, mdata, args, device: torch.device, batch_size: int, *, inference: str) -> None:
        self.model = mdlprob_model(mdata, args)
        self.n = mdata.n_obs
        self.batch_size, self.inference, self.accelerator = batch_size, inference, device.type

    def run(self, epochs: int) -> None:
        if self.inference == "svi":
            # Pyro's param store is global and keyed by module name: another PoEVAE's SVI run
            # would otherwise swap its parameters into this model.
            pyro.clear_param_store()
        self.model.train(max_epochs=epochs, batch_size=self.batch_size, lr=1e-3, accelerator=self.accelerator,
                         inference=self.inference, progress_bar=False)

    def last_loss(self) -> float:
        return self.model.history_["train_loss"][-1]


def timed(run: Callable[[int], None], epochs: int, device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    run(epochs)
    sync(device)
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------- checks
def init_loss_check(mdata, xs, presence, args, batch_size: int) -> dict[str, Any]:
    """Loss at initialisation on one batch: mdlprob, a fresh reference, and the reference with mdlprob's weights."""
    idx = torch.arange(min(batch_size, presence.shape[0]))
    model = mdlprob_model(mdata, args)
    module = model.module.cpu()
    batch = model.tensors(mdata).batch(idx)
    ref = reference_model(xs, presence, args)
    bx, bp = [x[idx] for x in xs], presence[idx]
    with torch.no_grad():
        torch.manual_seed(args.seed)
        ours = float(module.loss(batch))
        torch.manual_seed(args.seed)
        fresh = float(ref(bx, bp))
        copied = copy_from_mdlprob(ref, module)
        same = None
        if copied:
            torch.manual_seed(args.seed)
            same = float(ref(bx, bp))
    out = {"batch_size": len(idx), "mdlprob": ours, "reference_fresh_init": fresh,
           "order_of_magnitude_ok": bool(np.isfinite(ours) and np.isfinite(fresh)
                                         and abs(np.log10(abs(ours) / abs(fresh))) < 1.0),
           "reference_with_mdlprob_weights": same}
    if same is not None:
        out["relative_difference_same_weights"] = abs(same - ours) / abs(ours)
    return out


# ---------------------------------------------------------------------------------------- output
def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the result ordinary permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| system | batch | obs/s | ratio vs reference |", "|---|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['system']} | {r['batch_size']} | {r['obs_per_s']:,.0f} | {r['ratio_vs_reference']:.2f} |")
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    meta, cfg, init = report["meta"], report["config"], report["init_loss"]
    goal_lines = [f"- batch {g['batch_size']}: mdlprob_fast / reference = {g['ratio']:.2f} → "
                  f"**{'PASS' if g['pass'] else 'FAIL'}**"
                  for g in report["goal"]["per_batch_size"]]
    init_line = (f"mdlprob {init['mdlprob']:.4g}, reference (own init) {init['reference_fresh_init']:.4g}"
                 + (f", reference with mdlprob's weights and the same noise "
                    f"{init['reference_with_mdlprob_weights']:.6g} "
                    f"(relative difference {init['relative_difference_same_weights']:.1e})"
                    if init.get("reference_with_mdlprob_weights") is not None else ""))
    return "\n".join([
        "# PoEVAE training throughput",
        "",
        f"Observations per second of training (median of {cfg['repeats']} timed run(s) of {cfg['epochs']} epoch(s) "
        "each, after a 1-epoch warm-up; model construction and data preparation excluded). Every system trains the "
        "same model (NB likelihoods for RNA and protein, one hidden layer, MVAE objective, Adam lr 1e-3) on the "
        "same data in the same process.",
        "",
        table(report["results"]),
        "",
        f"## Goal: mdlprob_fast ≥ {GOAL_RATIO}× the reference (on CPU and on GPU)",
        "",
        f"This run is on **{meta['device_type']}** ({meta['device_name']}):",
        "",
        *goal_lines,
        "",
        f"Overall on {meta['device_type']}: **{'PASS' if report['goal']['pass'] else 'FAIL'}**."
        + (" The GPU half of the goal is not measured by this run (`--device cuda`)." if meta["device_type"] == "cpu"
           else " The CPU half of the goal is not measured by this run (`--device cpu`)."),
        "",
        "Timed runs (obs/s) per system, in the order they ran (systems interleaved); their spread shows how much "
        "of a ratio is noise:",
        "",
        *[f"- {r['system']}, batch {r['batch_size']}: " + ", ".join(f"{v:,.0f}" for v in r["obs_per_s_runs"])
          for r in report["results"]],
        "",
        "## Set-up",
        "",
        f"- data: `mdlprob.datasets.synthetic({cfg['n_obs']}, modalities={MODALITIES})`, "
        f"{cfg['n_genes']} genes + {cfg['n_proteins']} proteins, NB likelihoods",
        f"- model: n_hidden={cfg['n_hidden']}, n_latent={cfg['n_latent']}, n_layers=1; objective "
        + ("MVAE (joint ELBO + one ELBO per modality, each reconstructing only its modality; "
           "`PoEVAE(cross_reconstruction=False)`)" if cfg["objective"] == "mvae" else
           "joint ELBO + one ELBO per modality, each reconstructing every modality "
           "(`PoEVAE(cross_reconstruction=True)`)"),
        f"- loss at initialisation (batch of {init['batch_size']}): {init_line}",
        f"- device: {meta['device_name']} ({meta['device_type']}); torch {meta['torch_version']}, "
        f"pyro {meta['pyro_version']}, mdlprob {meta['mdlprob_version']}, python {meta['python_version']}",
        f"- CPUs: {meta['cpu_count']} (usable {meta['cpu_affinity']}), torch threads {meta['n_threads']}",
        f"- load average (1 min) at start / end: {meta['load_average_start']} / {meta['load_average_end']}",
        f"- date: {meta['date']}",
        *([f"- note: {cfg['note']}"] if cfg.get("note") else []),
        f"- command: `{meta['command']}`",
        *([f"- code: {_code(meta['provenance'])}"] if meta.get("provenance") else []),
        "",
    ])


def _code(record: dict) -> str:
    """The git commit of a provenance record, as the report states it."""
    commit = (record.get("git") or {}).get("commit")
    if commit is None:
        return "not a git checkout"
    return commit[:12] + (" + uncommitted changes" if record["git"].get("dirty") else "")


# ---------------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    threads_before = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        return _run(args, argv)
    finally:
        torch.set_num_threads(threads_before)


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _run(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    load_start = _load_average()
    device = resolve_device(args.device)
    out = Path(args.out)
    torch.manual_seed(args.seed)
    mdata, xs, presence = make_data(args)
    n = presence.shape[0]

    init = init_loss_check(mdata, xs, presence, args, args.batch_sizes[0])
    print(f"loss at init (batch {init['batch_size']}): mdlprob={init['mdlprob']:.6g}  "
          f"reference={init['reference_fresh_init']:.6g}  "
          f"reference[mdlprob weights]={init['reference_with_mdlprob_weights']}",
          flush=True)
    if not init["order_of_magnitude_ok"]:
        print("WARNING: initial losses differ by more than an order of magnitude", flush=True)

    systems = ["reference"] + (["reference_compiled"] if args.compile else []) + ["mdlprob_fast"] + \
        ([] if args.no_svi else ["mdlprob_svi"])
    results = []
    for bs in args.batch_sizes:
        runners: dict[str, Any] = {}
        for name in systems:
            torch.manual_seed(args.seed)
            if name.startswith("reference"):
                runners[name] = Reference(xs, presence, args, device, bs, compiled=name == "reference_compiled")
            else:
                runners[name] = Mdlprob(mdata, args, device, bs, inference=name.removeprefix("mdlprob_"))
        for r in runners.values():  # warm-up: one epoch each (compiles with --compile)
            r.run(1)
        times: dict[str, list[float]] = {name: [] for name in systems}
        for _ in range(args.repeats):  # interleaved, so that drift hits every system alike
            for name, r in runners.items():
                times[name].append(timed(r.run, args.epochs, device))
        rates = {name: [n * args.epochs / t for t in ts] for name, ts in times.items()}
        ref_rate = statistics.median(rates["reference"])
        for name in systems:
            rate = statistics.median(rates[name])
            results.append({
                "system": name, "batch_size": bs, "obs_per_s": rate, "ratio_vs_reference": rate / ref_rate,
                "seconds": times[name], "obs_per_s_runs": rates[name], "epochs_per_run": args.epochs,
                "obs_per_epoch": n, "steps_per_epoch": max(1, round(n / bs)),
                "final_train_loss": runners[name].last_loss(),
            })
            print(f"batch {bs:>5}  {name:<20} {rate:>10,.0f} obs/s  ({rate / ref_rate:.2f}x reference)", flush=True)
        del runners

    goal_rows = [{"batch_size": r["batch_size"], "ratio": r["ratio_vs_reference"],
                  "pass": r["ratio_vs_reference"] >= GOAL_RATIO} for r in results if r["system"] == "mdlprob_fast"]
    report = {
        "meta": {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": shlex.join([Path(sys.executable).name, "benchmarks/throughput.py", *argv]),
            "device_type": device.type, "device_name": device_name(device),
            "torch_version": torch.__version__, "pyro_version": pyro.__version__,
            "mdlprob_version": mdlprob.__version__, "python_version": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "n_threads": torch.get_num_threads(), "platform": platform.platform(),
            "load_average_start": load_start, "load_average_end": _load_average(),
            "provenance": provenance(["python", "benchmarks/throughput.py", *argv]),
        },
        "config": {k: getattr(args, k) for k in ("n_obs", "n_genes", "n_proteins", "batch_sizes", "epochs", "repeats",
                                                 "n_hidden", "n_latent", "objective", "compile", "quick", "seed",
                                                 "threads", "note")},
        "init_loss": init,
        "systems": systems,
        "results": results,
        "goal": {"ratio": GOAL_RATIO, "system": "mdlprob_fast", "device_type": device.type,
                 "per_batch_size": goal_rows, "pass": all(g["pass"] for g in goal_rows)},
    }
    write_atomic(out / "throughput.json", json.dumps(report, indent=1) + "\n")
    md_text = markdown(report)
    write_atomic(out / "throughput.md", md_text)
    print()
    print(table(results))
    print()
    for g in goal_rows:
        print(f"goal mdlprob_fast >= {GOAL_RATIO}x reference, batch {g['batch_size']}: "
              f"{g['ratio']:.2f} -> {'PASS' if g['pass'] else 'FAIL'}")
    print(f"wrote {out / 'throughput.json'} and {out / 'throughput.md'}")
    return report


if __name__ == "__main__":
    main()

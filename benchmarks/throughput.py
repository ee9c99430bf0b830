"""Training throughput of every mdlprob model's default ``train()`` against hand-written PyTorch loops.

Each model trains the same two-modality NB data (synthetic CITE-seq-like counts) in the same
process as a hand-written, plain-PyTorch reference of the same architecture and objective, so
that the ratios are meaningful even where absolute numbers drift between runs:

* ``PoEVAE`` against ``benchmarks/_reference_poe.py`` (the MVAE objective);
* ``MoEVAE`` and ``MoPoEVAE`` against ``benchmarks/_reference_mixture.py`` (stratified MMVAE
  objective with the DReG/STL gradient at one draw; one uniformly drawn subset per observation);
* ``FactorModel`` against ``benchmarks/_reference_factor.py`` (the MVAE objective with linear
  decoders, minus the ARD log prior of the loadings / n_obs);
* ``GraphPoEVAE`` against ``benchmarks/_reference_graph.py`` (GCN experts over the default kNN
  graph of the observations, built once before timing; the MVAE objective). Its default
  ``train()`` is full-batch, so it is measured once, with one step per epoch, whatever
  ``--batch-sizes`` says.

A reference trains with data resident on the device, batches gathered by index with
``torch.randperm`` and no per-step host sync (``--compile``: also with its loss under
``torch.compile``). mdlprob runs ``Model(mdata).train(max_epochs=E, early_stopping=True)``: the
default ``train()`` path (10% validation split and its loss every epoch, best weights restored,
library model, and the default noise refit of the mixture models, capped by the training steps)
with the number of epochs fixed. The refit is timed inside the same call, so each run gives the
throughput of ``train()`` without the refit and of the default ``train()`` with it, side by side.
mdlprob's throughput counts its training rows (90% of the observations); the reference's all.

Each system first runs one warm-up epoch (for mdlprob a ``train(max_epochs=1)`` call), then
``--repeats`` timed runs of ``--epochs`` epochs (mdlprob: one ``train`` call each, which continues
training), the systems interleaved; medians are reported. Writes ``OUT/throughput.json`` and
``OUT/throughput.md``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/throughput.py --threads 1 --out benchmarks/results
    python benchmarks/throughput.py --quick --out /tmp/throughput   # seconds, for a smoke test
    python benchmarks/throughput.py --device cuda --batch-sizes 256,1024 --compile
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyro
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _reference_factor import ReferenceFactorModel, copy_factor_from_mdlprob  # noqa: E402
from _reference_graph import ReferenceGraphPoEVAE, copy_graph_from_mdlprob  # noqa: E402
from _reference_mixture import ReferenceMoEVAE, ReferenceMoPoEVAE  # noqa: E402
from _reference_poe import ReferencePoEVAE, copy_from_mdlprob  # noqa: E402

import mdlprob  # noqa: E402
from mdlprob.benchmark import provenance  # noqa: E402

#: Goals of issue 20: default train() at >= 0.75x the reference, the noise refit <= 10% of the training time.
GOAL_RATIO = 0.75
GOAL_REFIT_SHARE = 0.10
MODALITIES = ("rna", "protein")
#: Model -> (hand-written reference, the objective in words).
MODELS = {
    "PoEVAE": (ReferencePoEVAE, "MVAE: joint ELBO + one ELBO per modality, each reconstructing only its modality"),
    "MoEVAE": (ReferenceMoEVAE, "stratified MMVAE ELBO (one draw per present modality, DReG/STL gradient)"),
    "MoPoEVAE": (ReferenceMoPoEVAE, "MoPoE ELBO, one uniformly drawn subset of the present modalities per step"),
    "FactorModel": (ReferenceFactorModel, "MVAE objective with linear NB decoders, minus the ARD log prior of the "
                                          "loadings at the MAP precisions / n_obs"),
    "GraphPoEVAE": (ReferenceGraphPoEVAE, "MVAE with one-hop GCN experts over the default 15-NN graph of the "
                                          "observations, full batch"),
}
#: How a reference takes an mdlprob module's weights (default ``copy_from_mdlprob``).
COPY_WEIGHTS = {"FactorModel": copy_factor_from_mdlprob, "GraphPoEVAE": copy_graph_from_mdlprob}
#: Models whose default train() is full-batch (every observation and edge in each step): measured once, at "full".
FULL_BATCH = ("GraphPoEVAE",)
DEFAULTS = {"n_obs": 3000, "n_genes": 2000, "n_proteins": 30, "batch_sizes": "256", "epochs": 10,
            "n_hidden": 256, "n_latent": 20, "repeats": 3}
QUICK = {"n_obs": 256, "n_genes": 64, "n_proteins": 8, "batch_sizes": "64", "epochs": 2,
         "n_hidden": 32, "n_latent": 4, "repeats": 1}


# ---------------------------------------------------------------------------------------- arguments
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated, from " + ", ".join(MODELS))
    p.add_argument("--n-obs", type=int, default=None, help=f"observations (default {DEFAULTS['n_obs']})")
    p.add_argument("--n-genes", type=int, default=None, help=f"RNA features (default {DEFAULTS['n_genes']})")
    p.add_argument("--n-proteins", type=int, default=None, help=f"protein features (default {DEFAULTS['n_proteins']})")
    p.add_argument("--batch-sizes", default=None, help=f"comma-separated (default {DEFAULTS['batch_sizes']})")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"epochs per timed run, after 1 warm-up epoch (default {DEFAULTS['epochs']})")
    p.add_argument("--repeats", type=int, default=None,
                   help=f"timed runs per system, median reported (default {DEFAULTS['repeats']})")
    p.add_argument("--n-hidden", type=int, default=None, help=f"hidden width (default {DEFAULTS['n_hidden']})")
    p.add_argument("--n-latent", type=int, default=None, help=f"latent dimension (default {DEFAULTS['n_latent']})")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--compile", action="store_true", help="also time each reference with its loss under torch.compile")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's own choice; 1 with --quick)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--note", default="", help="free text recorded with the results (e.g. machine conditions)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"), help="output folder")
    p.add_argument("--quick", action="store_true", help="tiny sizes and one run: a smoke test in seconds")
    args = p.parse_args(argv)
    base = QUICK if args.quick else DEFAULTS
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.models = [m.strip() for m in str(args.models).split(",") if m.strip()]
    unknown = [m for m in args.models if m not in MODELS]
    if unknown or not args.models:
        p.error(f"--models must name some of {', '.join(MODELS)}, got {', '.join(unknown) or 'none'}")
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
def graph_edges(mdata) -> torch.Tensor:
    """``edge_index`` (sources, targets) of mdlprob's default sample graph of ``mdata``, built when absent."""
    key = mdlprob.data._graph.GRAPH_KEY
    if key not in mdata.obsp:
        mdlprob.data.build_sample_graph(mdata, key=key)
    adj = mdata.obsp[key].tocsr().copy()
    adj.setdiag(0)
    adj.eliminate_zeros()
    rows, cols = adj.nonzero()  # A[i, j] != 0: j is a neighbour of i, edge j -> i
    return torch.from_numpy(np.stack([cols, rows]).astype(np.int64))


def reference_model(name: str, mdata, xs, presence, args) -> torch.nn.Module:
    data = dict(zip(MODALITIES, xs, strict=True))
    if name in FULL_BATCH:
        return MODELS[name][0](data, presence, graph_edges(mdata), n_hidden=args.n_hidden, n_latent=args.n_latent)
    return MODELS[name][0](data, presence, n_hidden=args.n_hidden, n_latent=args.n_latent)


def mdlprob_model(name: str, mdata, args) -> mdlprob.models.PoEVAE:
    return getattr(mdlprob.models, name)(mdata, n_latent=args.n_latent, n_hidden=args.n_hidden)


class Reference:
    """A hand-written loop; ``run(k)`` trains ``k`` epochs, syncing once per epoch (like mdlprob)."""

    full_batch = False  # True: every step takes all the data (the graph reference), set by __init__

    def __init__(self, name: str, mdata, xs, presence, args, device: torch.device, batch_size: int | None, *,
                 compiled: bool) -> None:
        self.model = reference_model(name, mdata, xs, presence, args).to(device)
        self.xs = [x.to(device) for x in xs]
        self.presence = presence.to(device)
        self.n = presence.shape[0]
        self.full_batch = batch_size is None  # the graph: every node and edge in one step
        self.n_steps = 1 if self.full_batch else max(1, round(self.n / batch_size))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3, fused=device.type == "cuda")
        self.loss_fn = torch.compile(self.model) if compiled else self.model
        self.device = device
        self.losses: list[float] = []
        self.rows_per_epoch = self.n

    def run(self, epochs: int) -> float:
        for _ in range(epochs):
            total = torch.zeros((), device=self.device)
            for idx in torch.tensor_split(torch.randperm(self.n, device=self.device), self.n_steps):
                if self.full_batch:
                    loss = self.loss_fn(self.xs, self.presence)
                else:
                    loss = self.loss_fn([x.index_select(0, idx) for x in self.xs], self.presence.index_select(0, idx))
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                total = total + loss.detach() * len(idx)
            self.losses.append(float(total) / self.n)
        return 0.0

    def last_loss(self) -> float:
        return self.losses[-1]


class Mdlprob:
    """``Model.train(max_epochs=k, early_stopping=True)``, the default path; ``run`` returns the refit's seconds."""

    def __init__(self, name: str, mdata, args, device: torch.device, batch_size: int | None) -> None:
        self.model = mdlprob_model(name, mdata, args)
        self.batch_size, self.accelerator, self.device = batch_size, device.type, device
        self.refit_seconds = 0.0
        refit = self.model.refit_noise

        def timed_refit(**kwargs: Any) -> None:  # train() calls it after the epochs: time it apart
            sync(device)
            t0 = time.perf_counter()
            refit(**kwargs)
            sync(device)
            self.refit_seconds += time.perf_counter() - t0

        self.model.refit_noise = timed_refit

    @property
    def rows_per_epoch(self) -> int:
        return len(self.model.train_indices_)

    def run(self, epochs: int) -> float:
        before, steps = self.refit_seconds, len(self.model.history_.get("noise_loss", []))
        self.model.train(max_epochs=epochs, batch_size=self.batch_size, lr=1e-3, accelerator=self.accelerator,
                         early_stopping=True, progress_bar=False)
        self.refit_steps = len(self.model.history_.get("noise_loss", [])) - steps
        return self.refit_seconds - before

    def last_loss(self) -> float:
        return self.model.history_["train_loss"][-1]


def timed(system, epochs: int, device: torch.device) -> tuple[float, float]:
    """Seconds of ``system.run(epochs)`` and of the noise refit within it."""
    sync(device)
    t0 = time.perf_counter()
    refit = system.run(epochs)
    sync(device)
    return time.perf_counter() - t0, refit


# ---------------------------------------------------------------------------------------- checks
def init_loss_check(name: str, mdata, xs, presence, args, batch_size: int) -> dict[str, Any]:
    """Loss on one batch at initialisation: mdlprob, a fresh reference, and the reference with mdlprob's weights.

    With the weights (and NB dispersions) copied and the random generator at the same state, the
    reference draws the same noise, so its loss must equal mdlprob's to float precision.
    """
    idx = torch.arange(min(batch_size, presence.shape[0]))
    model = mdlprob_model(name, mdata, args)
    module = model.module.cpu().eval()
    batch = model.tensors(mdata).batch(idx)
    ref = reference_model(name, mdata, xs, presence, args)
    if name in FULL_BATCH:  # experts over the whole graph, loss over the batch's observations
        def call():
            return float(ref(xs, presence, idx))
    else:
        def call():
            return float(ref([x[idx] for x in xs], presence[idx]))
    with torch.no_grad():
        torch.manual_seed(args.seed)
        ours = float(module.loss(batch))
        torch.manual_seed(args.seed)
        fresh = call()
        same = None
        if COPY_WEIGHTS.get(name, copy_from_mdlprob)(ref, module):
            torch.manual_seed(args.seed)
            same = call()
    out = {"model": name, "batch_size": len(idx), "mdlprob": ours, "reference_fresh_init": fresh,
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
    lines = ["| model | batch | reference obs/s | `train()` without the refit: obs/s (ratio) "
             "| default `train()`: obs/s (ratio) | refit share of training | refit steps |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(
            f"| {r['model']} | {r['batch_size']} | {r['reference_obs_per_s']:,.0f} "
            f"| {r['train_obs_per_s']:,.0f} ({r['ratio_without_refit']:.2f}×) "
            f"| {r['default_obs_per_s']:,.0f} ({r['ratio_default']:.2f}×) "
            f"| {100 * r['refit_share']:.1f}% | {r['refit_steps']} |")
        if r.get("compiled_reference_obs_per_s"):
            lines.append(f"| {r['model']} (reference under torch.compile) | {r['batch_size']} "
                         f"| {r['compiled_reference_obs_per_s']:,.0f} | | | | |")
    return "\n".join(lines)


def markdown(report: dict[str, Any]) -> str:
    meta, cfg = report["meta"], report["config"]
    goal = report["goal"]
    goal_lines = [f"- {g['model']}, batch {g['batch_size']}: default train() / reference = {g['ratio_default']:.2f} "
                  f"(goal ≥ {GOAL_RATIO}: **{'PASS' if g['ratio_pass'] else 'FAIL'}**); refit share "
                  f"{100 * g['refit_share']:.1f}% (goal ≤ {100 * GOAL_REFIT_SHARE:.0f}%: "
                  f"**{'PASS' if g['refit_pass'] else 'FAIL'}**)" for g in goal["per_model"]]
    init_lines = [f"- {i['model']}: mdlprob {i['mdlprob']:.6g}, reference (own init) {i['reference_fresh_init']:.6g}"
                  + (f", reference with mdlprob's weights and the same noise {i['reference_with_mdlprob_weights']:.6g} "
                     f"(relative difference {i['relative_difference_same_weights']:.1e})"
                     if i.get("reference_with_mdlprob_weights") is not None else "")
                  for i in report["init_loss"]]
    return "\n".join([
        "# Training throughput: every model's default `train()` against a hand-written PyTorch loop",
        "",
        f"Observations per second of training (median of {cfg['repeats']} timed run(s) of {cfg['epochs']} epoch(s) "
        "each, after a 1-epoch warm-up; model construction and data preparation excluded). Each model and a "
        "hand-written plain-PyTorch reference of the same architecture and objective train the same data in the "
        "same process, interleaved, so the ratios are measured side by side. mdlprob runs "
        f"`Model(mdata).train(max_epochs={cfg['epochs']}, early_stopping=True)`, the default path with the epochs "
        "fixed (10% validation split and its loss each epoch, best weights kept, the mixture models' noise refit "
        "after the epochs); the refit is timed inside the same call, giving `train()` without it and with it. "
        "Refit share = refit seconds / seconds of the rest of `train()`. Batch `full`: the model's default "
        "`train()` is full-batch (GraphPoEVAE: every observation and edge in each step, one step per epoch), and "
        "so is its reference; its few steps per run make its ratio the noisiest.",
        "",
        table(report["results"]),
        "",
        f"## Goals: default `train()` ≥ {GOAL_RATIO}× the reference; noise refit ≤ {100 * GOAL_REFIT_SHARE:.0f}% "
        "of the training time",
        "",
        f"This run is on **{meta['device_type']}** ({meta['device_name']}):",
        "",
        *goal_lines,
        "",
        "Timed runs per system (obs/s; for mdlprob with the refit, and the refit's seconds), in the order they ran; "
        "their spread shows how much of a ratio is noise:",
        "",
        *[f"- {r['model']}, batch {r['batch_size']}: reference " + ", ".join(f"{v:,.0f}" for v in r["reference_runs"])
          + "; mdlprob " + ", ".join(f"{v:,.0f}" for v in r["default_runs"])
          + "; refit s " + ", ".join(f"{v:.2f}" for v in r["refit_seconds"]) for r in report["results"]],
        "",
        "## Set-up",
        "",
        f"- data: `mdlprob.datasets.synthetic({cfg['n_obs']}, modalities={MODALITIES})`, "
        f"{cfg['n_genes']} genes + {cfg['n_proteins']} proteins, NB likelihoods without library-size offsets",
        f"- models: n_hidden={cfg['n_hidden']}, n_latent={cfg['n_latent']}, n_layers=1, Adam lr 1e-3; objectives: "
        + "; ".join(f"{m}: {MODELS[m][1]}" for m in cfg["models"]),
        "- loss at initialisation on one batch (reference with mdlprob's weights: must equal mdlprob's):",
        *[f"  {line}" for line in init_lines],
        f"- device: {meta['device_name']} ({meta['device_type']}); torch {meta['torch_version']}, "
        f"pyro {meta['pyro_version']}, mdlprob {meta['mdlprob_version']}, python {meta['python_version']}",
        f"- CPUs: {meta['cpu_count']} (usable {meta['cpu_affinity']}), torch threads {meta['n_threads']}",
        f"- load average (1 min) at start / end: {meta['load_average_start']} / {meta['load_average_end']} "
        "(other jobs share the machine: read the ratios, measured side by side, rather than absolute numbers)",
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


def _measure(name: str, mdata, xs, presence, args, device: torch.device, bs: int) -> dict[str, Any]:
    """One model at one batch size: its reference(s) and mdlprob, interleaved; medians and ratios."""
    systems: dict[str, Any] = {}
    step_rows = None if name in FULL_BATCH else bs
    torch.manual_seed(args.seed)
    systems["reference"] = Reference(name, mdata, xs, presence, args, device, step_rows, compiled=False)
    if args.compile:
        systems["reference_compiled"] = Reference(name, mdata, xs, presence, args, device, step_rows, compiled=True)
    torch.manual_seed(args.seed)
    systems["mdlprob"] = Mdlprob(name, mdata, args, device, step_rows)
    for system in systems.values():  # warm-up: one epoch each (compiles with --compile)
        system.run(1)
    seconds: dict[str, list[float]] = {k: [] for k in systems}
    refits: list[float] = []
    for _ in range(args.repeats):  # interleaved, so that drift hits every system alike
        for key, system in systems.items():
            total, refit = timed(system, args.epochs, device)
            seconds[key].append(total)
            if key == "mdlprob":
                refits.append(refit)
    rows = {k: s.rows_per_epoch * args.epochs for k, s in systems.items()}
    ref_runs = [rows["reference"] / t for t in seconds["reference"]]
    default_runs = [rows["mdlprob"] / t for t in seconds["mdlprob"]]
    train_runs = [rows["mdlprob"] / (t - r) for t, r in zip(seconds["mdlprob"], refits, strict=True)]
    ref = statistics.median(ref_runs)
    out = {
        "model": name, "batch_size": "full" if step_rows is None else bs, "reference_obs_per_s": ref, "reference_runs": ref_runs,
        "train_obs_per_s": statistics.median(train_runs), "default_obs_per_s": statistics.median(default_runs),
        "default_runs": default_runs, "seconds": seconds, "refit_seconds": refits,
        "refit_share": statistics.median([r / (t - r) for t, r in zip(seconds["mdlprob"], refits, strict=True)]),
        "refit_steps": systems["mdlprob"].refit_steps, "epochs_per_run": args.epochs,
        "reference_rows_per_epoch": rows["reference"] // args.epochs, "mdlprob_rows_per_epoch": rows["mdlprob"] // args.epochs,
        "final_train_loss": {k: s.last_loss() for k, s in systems.items()},
    }
    out["ratio_without_refit"] = out["train_obs_per_s"] / ref
    out["ratio_default"] = out["default_obs_per_s"] / ref
    if "reference_compiled" in seconds:
        out["compiled_reference_obs_per_s"] = statistics.median(rows["reference_compiled"] / t
                                                                for t in seconds["reference_compiled"])
    return out


def _report(args: argparse.Namespace, argv: list[str], device: torch.device, load_start: float | None,
            init: list[dict[str, Any]], results: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON report of the cells measured so far."""
    per_model = [{"model": r["model"], "batch_size": r["batch_size"], "ratio_default": r["ratio_default"],
                  "refit_share": r["refit_share"], "ratio_pass": r["ratio_default"] >= GOAL_RATIO,
                  "refit_pass": r["refit_share"] <= GOAL_REFIT_SHARE} for r in results]
    return {
        "meta": {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": shlex.join([Path(sys.executable).name, "benchmarks/throughput.py", *argv]),
            "device_type": device.type, "device_name": device_name(device),
            "torch_version": torch.__version__, "pyro_version": pyro.__version__,
            "mdlprob_version": mdlprob.__version__, "python_version": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "n_threads": torch.get_num_threads(), "platform": platform.platform(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "load_average_start": load_start, "load_average_end": _load_average(),
            "provenance": provenance(["python", "benchmarks/throughput.py", *argv]),
        },
        "config": {k: getattr(args, k) for k in ("models", "n_obs", "n_genes", "n_proteins", "batch_sizes", "epochs",
                                                 "repeats", "n_hidden", "n_latent", "compile", "quick", "seed",
                                                 "threads", "note")},
        "init_loss": init,
        "results": results,
        "goal": {"ratio": GOAL_RATIO, "refit_share": GOAL_REFIT_SHARE, "device_type": device.type,
                 "per_model": per_model, "pass": all(g["ratio_pass"] and g["refit_pass"] for g in per_model)},
    }


def _run(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    load_start = _load_average()
    device = resolve_device(args.device)
    out = Path(args.out)
    torch.manual_seed(args.seed)
    mdata, xs, presence = make_data(args)
    mdlprob.settings.progress_bar = False
    init = []
    for name in args.models:
        check = init_loss_check(name, mdata, xs, presence, args, args.batch_sizes[0])
        init.append(check)
        print(f"{name} loss at init (batch {check['batch_size']}): mdlprob={check['mdlprob']:.6g}  "
              f"reference={check['reference_fresh_init']:.6g}  "
              f"reference[mdlprob weights]={check['reference_with_mdlprob_weights']}", flush=True)
        if not check["order_of_magnitude_ok"]:
            print("WARNING: initial losses differ by more than an order of magnitude", flush=True)
    results: list[dict[str, Any]] = []
    report: dict[str, Any] = {}
    for bs in args.batch_sizes:
        for name in args.models:
            if name in FULL_BATCH and bs != args.batch_sizes[0]:
                continue  # full-batch: one measurement, whatever the batch size
            r = _measure(name, mdata, xs, presence, args, device, bs)
            results.append(r)
            print(f"batch {r['batch_size']!s:>5}  {name:<9} reference {r['reference_obs_per_s']:>8,.0f} obs/s  "
                  f"train() w/o refit {r['ratio_without_refit']:.2f}x  default train() {r['ratio_default']:.2f}x  "
                  f"refit {100 * r['refit_share']:.1f}% of training ({r['refit_steps']} steps)", flush=True)
            # Written after every cell, so that a run stopped by a time limit keeps what it measured.
            report = _report(args, argv, device, load_start, init, results)
            write_atomic(out / "throughput.json", json.dumps(report, indent=1) + "\n")
            write_atomic(out / "throughput.md", markdown(report))
    print()
    print(table(results))
    print(f"wrote {out / 'throughput.json'} and {out / 'throughput.md'}")
    return report


if __name__ == "__main__":
    main()

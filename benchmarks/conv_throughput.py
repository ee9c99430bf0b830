"""Training throughput of a PoEVAE with image experts against a plain PyTorch conv VAE of the same layers and objective.

Data: ``mdlprob.datasets.synthetic_scans`` (T1, T2, FLAIR brain phantoms, Gaussian pixels),
FLAIR hidden for ``--absent`` of the subjects. In one process, interleaved:

* ``mdlprob``: ``PoEVAE(mdata, n_latent=...).train(max_epochs=E, batch_size=B, early_stopping=True)``,
  the default path (10% validation split and its loss each epoch, best weights kept);
* ``reference``: ``benchmarks/_reference_conv.py``, the same ``ConvEncoder``/``ConvDecoder``
  layers, per-pixel Gaussian head and MVAE objective in a hand-written loop (data resident,
  batches gathered by index, Adam, one host sync per epoch).

Each runs a 1-epoch warm-up, then ``--repeats`` timed runs of ``--epochs`` epochs; medians and the
ratio mdlprob / reference are reported (issue 20's goal on CPU: >= 0.75). Before timing, the loss
of one batch is computed by both with mdlprob's weights copied into the reference and the same
random state: they must agree (same objective). Writes ``OUT/conv_throughput.{json,md}``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/conv_throughput.py --threads 1 --out benchmarks/results
    python benchmarks/conv_throughput.py --quick --out /tmp/conv   # smoke test, seconds
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import throughput as tp  # noqa: E402
from _reference_conv import ReferenceConvPoEVAE, copy_conv_from_mdlprob  # noqa: E402

import mdlprob  # noqa: E402
from mdlprob.data import hide_modality, setup_mudata  # noqa: E402

SEQUENCES = ("t1", "t2", "flair")
GOAL_RATIO = 0.75
DEFAULTS = {"n_obs": 400, "size": 32, "batch_size": 32, "epochs": 2, "repeats": 3, "n_latent": 16, "absent": 0.3}
QUICK = {"n_obs": 48, "size": 28, "batch_size": 16, "epochs": 1, "repeats": 1, "n_latent": 4, "absent": 0.3}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for key, value in DEFAULTS.items():
        p.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=None,
                       help=f"default {value} ({QUICK[key]} with --quick)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (1 with --quick)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"), help="output folder")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one run: a smoke test in seconds")
    p.add_argument("--layout-ab", action="store_true",
                   help="also time mdlprob's train() with its CPU channels-last layout switched off, paired epochs")
    args = p.parse_args(argv)
    base = QUICK if args.quick else DEFAULTS
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for name in ("n_obs", "batch_size", "epochs", "repeats", "n_latent"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 0.0 <= args.absent < 1.0:
        p.error(f"--absent must be in [0, 1), got {args.absent}")
    if args.threads is None and args.quick:
        args.threads = 1
    args.n_hidden = 128  # PoEVAE's default; image experts do not use it (throughput.Mdlprob passes it)
    return args


def make_data(args: argparse.Namespace):
    """The MuData (FLAIR hidden for ``absent`` of the subjects), dense pixels per sequence, presence."""
    full = mdlprob.datasets.synthetic_scans(args.n_obs, sequences=SEQUENCES, size=args.size, seed=args.seed)
    hidden = np.random.default_rng(args.seed).random(args.n_obs) < args.absent
    mdata = hide_modality(full, "flair", hidden)
    setup_mudata(mdata, likelihoods=dict.fromkeys(SEQUENCES, "gaussian"))
    xs, presence = [], np.ones((args.n_obs, len(SEQUENCES)), dtype=bool)
    presence[:, SEQUENCES.index("flair")] = ~hidden
    for j, s in enumerate(SEQUENCES):
        x = np.asarray(full[s].X, dtype=np.float32).copy()
        x[~presence[:, j]] = 0.0  # absent rows: never scored (presence mask), zero only to fill the array
        xs.append(torch.from_numpy(x))
    shape = tuple(int(v) for v in full["t1"].uns["image_shape"])
    return mdata, xs, torch.from_numpy(presence), shape


class Reference(tp.Reference):
    """The hand-written loop of ``throughput.py`` around :class:`ReferenceConvPoEVAE`."""

    def __init__(self, xs, presence, shape, args, batch_size: int) -> None:  # noqa: D107
        self.model = ReferenceConvPoEVAE(dict(zip(SEQUENCES, xs, strict=True)), presence, image_shape=shape,
                                         n_latent=args.n_latent)
        self.xs, self.presence, self.n = xs, presence, presence.shape[0]
        self.n_steps = max(1, round(self.n / batch_size))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.loss_fn, self.device, self.losses, self.rows_per_epoch = self.model, torch.device("cpu"), [], self.n


def same_objective(mdata, xs, presence, shape, args) -> dict[str, float]:
    """Loss of one batch at initialisation: mdlprob, and the reference with mdlprob's weights and noise."""
    model = mdlprob.models.PoEVAE(mdata, n_latent=args.n_latent)
    module = model.module.cpu().eval()
    idx = torch.arange(min(args.batch_size, args.n_obs))
    ref = ReferenceConvPoEVAE(dict(zip(SEQUENCES, xs, strict=True)), presence, image_shape=shape,
                              n_latent=args.n_latent)
    if not copy_conv_from_mdlprob(ref, module):
        msg = "the reference could not take mdlprob's weights: the module layout changed"
        raise RuntimeError(msg)
    with torch.no_grad():
        torch.manual_seed(args.seed)
        ours = float(module.loss(model.tensors(mdata).batch(idx)))
        torch.manual_seed(args.seed)
        theirs = float(ref([x[idx] for x in xs], presence[idx]))
    return {"mdlprob": ours, "reference_with_mdlprob_weights": theirs, "relative_difference": abs(ours - theirs) / abs(ours)}


def measure(mdata, xs, presence, shape, args) -> dict[str, Any]:
    torch.manual_seed(args.seed)
    systems = {"reference": Reference(xs, presence, shape, args, args.batch_size)}
    torch.manual_seed(args.seed)
    systems["mdlprob"] = tp.Mdlprob("PoEVAE", mdata, args, torch.device("cpu"), args.batch_size)
    for system in systems.values():
        system.run(1)
    runs: dict[str, list[float]] = {k: [] for k in systems}
    for _ in range(args.repeats):
        for key, system in systems.items():
            seconds, _ = tp.timed(system, args.epochs, torch.device("cpu"))
            runs[key].append(system.rows_per_epoch * args.epochs / seconds)
    ref, ours = statistics.median(runs["reference"]), statistics.median(runs["mdlprob"])
    return {"reference_obs_per_s": ref, "mdlprob_obs_per_s": ours, "ratio": ours / ref, "runs": runs,
            "final_train_loss": {k: s.last_loss() for k, s in systems.items()}}


def layout_ab(mdata, args) -> dict[str, Any]:
    """One-epoch ``train()`` calls of one PoEVAE alternating the CPU channels-last layout off and on (paired)."""
    from mdlprob.nn import _conv

    fast = _conv._fast_layout
    torch.manual_seed(args.seed)
    model = mdlprob.models.PoEVAE(mdata, n_latent=args.n_latent)
    model.train(max_epochs=1, batch_size=args.batch_size, progress_bar=False)  # warm-up
    runs: dict[str, list[float]] = {"contiguous": [], "channels_last": []}
    try:
        for _ in range(args.repeats):
            for name, layout in (("contiguous", lambda h: h), ("channels_last", fast)):
                _conv._fast_layout = layout
                seconds, _ = tp.timed(_OneEpoch(model, args.batch_size), 1, torch.device("cpu"))
                runs[name].append(len(model.train_indices_) / seconds)
    finally:
        _conv._fast_layout = fast
    medians = {k: statistics.median(v) for k, v in runs.items()}
    return {"runs": runs, "median": medians, "speedup": medians["channels_last"] / medians["contiguous"]}


class _OneEpoch:
    def __init__(self, model, batch_size: int) -> None:
        self.model, self.batch_size = model, batch_size

    def run(self, epochs: int) -> None:
        self.model.train(max_epochs=epochs, batch_size=self.batch_size, progress_bar=False)


def markdown(report: dict[str, Any]) -> str:
    r, cfg, meta, chk = report["result"], report["config"], report["meta"], report["same_objective"]
    return "\n".join([
        "# Image experts on CPU: PoEVAE `train()` against a plain PyTorch conv VAE of the same layers and objective",
        "",
        f"Training observations per second (median of {cfg['repeats']} timed run(s) of {cfg['epochs']} epoch(s) after "
        "a 1-epoch warm-up; the two interleaved in one process).",
        "",
        "| system | obs/s | runs |",
        "|---|---:|---|",
        f"| plain PyTorch reference | {r['reference_obs_per_s']:,.1f} | {', '.join(f'{v:,.1f}' for v in r['runs']['reference'])} |",
        f"| mdlprob PoEVAE default `train()` | {r['mdlprob_obs_per_s']:,.1f} | {', '.join(f'{v:,.1f}' for v in r['runs']['mdlprob'])} |",
        "",
        f"Ratio mdlprob / reference: **{r['ratio']:.2f}×** (goal ≥ {GOAL_RATIO}: "
        f"**{'PASS' if r['ratio'] >= GOAL_RATIO else 'FAIL'}**).",
        "",
        f"- same objective: loss of one batch at initialisation, mdlprob {chk['mdlprob']:.6g}, reference with mdlprob's "
        f"weights and the same noise {chk['reference_with_mdlprob_weights']:.6g} (relative difference "
        f"{chk['relative_difference']:.1e})",
        f"- data: `synthetic_scans({cfg['n_obs']}, sequences={SEQUENCES}, size={cfg['size']})`, FLAIR absent for "
        f"{cfg['absent']:.0%} of the subjects; n_latent={cfg['n_latent']}, batch {cfg['batch_size']}, Adam lr 1e-3",
        f"- machine: {meta['device_name']}, {meta['cpu_count']} CPUs, torch threads {meta['n_threads']}; torch "
        f"{meta['torch_version']}; load average (1 min) at start / end {meta['load_average_start']} / "
        f"{meta['load_average_end']} (other jobs share the machine: read the ratio, measured side by side)",
        *([f"- CPU channels-last layout of the image experts (`--layout-ab`, paired one-epoch `train()` calls of one "
           f"PoEVAE, layout off / on): {report['layout_ab']['median']['contiguous']:,.1f} / "
           f"{report['layout_ab']['median']['channels_last']:,.1f} obs/s, **{report['layout_ab']['speedup']:.2f}×** "
           f"(runs off {', '.join(f'{v:,.1f}' for v in report['layout_ab']['runs']['contiguous'])}; on "
           f"{', '.join(f'{v:,.1f}' for v in report['layout_ab']['runs']['channels_last'])})"]
          if report.get("layout_ab") else []),
        f"- date: {meta['date']}",
        f"- command: `{meta['command']}`",
        "",
    ])


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


def _run(args: argparse.Namespace, argv: list[str]) -> dict[str, Any]:
    load_start = tp._load_average()
    mdlprob.settings.progress_bar = False
    torch.manual_seed(args.seed)
    mdata, xs, presence, shape = make_data(args)
    check = same_objective(mdata, xs, presence, shape, args)
    print(f"loss at init: mdlprob {check['mdlprob']:.6g}, reference (mdlprob weights) "
          f"{check['reference_with_mdlprob_weights']:.6g}", flush=True)
    result = measure(mdata, xs, presence, shape, args)
    print(f"reference {result['reference_obs_per_s']:,.1f} obs/s, mdlprob {result['mdlprob_obs_per_s']:,.1f} obs/s: "
          f"{result['ratio']:.2f}x", flush=True)
    ab = layout_ab(mdata, args) if args.layout_ab else None
    if ab:
        print(f"channels-last layout: {ab['speedup']:.2f}x ({ab['median']})", flush=True)
    report = {
        "layout_ab": ab,
        "meta": {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                 "command": shlex.join([Path(sys.executable).name, "benchmarks/conv_throughput.py", *argv]),
                 "device_name": tp.device_name(torch.device("cpu")), "cpu_count": os.cpu_count(),
                 "n_threads": torch.get_num_threads(), "torch_version": torch.__version__,
                 "mdlprob_version": mdlprob.__version__, "python_version": platform.python_version(),
                 "load_average_start": load_start, "load_average_end": tp._load_average()},
        "config": {k: getattr(args, k) for k in (*DEFAULTS, "seed", "threads", "quick")},
        "same_objective": check, "result": result, "goal": {"ratio": GOAL_RATIO, "pass": result["ratio"] >= GOAL_RATIO},
    }
    out = Path(args.out)
    tp.write_atomic(out / "conv_throughput.json", json.dumps(report, indent=1) + "\n")
    tp.write_atomic(out / "conv_throughput.md", markdown(report))
    print(f"wrote {out / 'conv_throughput.json'} and {out / 'conv_throughput.md'}")
    return report


if __name__ == "__main__":
    main()

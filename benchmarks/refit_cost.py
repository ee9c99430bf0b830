"""Cost of the mixture models' noise refit: the cached Newton refit against the per-step algorithm it replaced.

For MoEVAE and MoPoEVAE trained for ``--epochs`` epochs on the throughput benchmark's data
(``train(early_stopping=True, refit_noise_steps=0)``), from the same trained weights:

* ``cached``: ``model.refit_noise(n_steps=cap)``, the current refit (posterior draws decoded once
  for a bounded set of rows, damped Newton on the cached parameters);
* ``per_step``: the previous algorithm, written out here: ``cap`` Adam steps (lr 1e-2), each
  drawing one importance-resampled ``z`` (16 proposals) per validation row of a mini-batch of
  256, decoding it and stepping on the noise parameters only;

with ``cap = min(300, training steps)``, the default of ``train()``. Reports the seconds of each,
their share of the training seconds, and the mean protein log inverse dispersion each reaches.
Writes ``OUT/refit_cost.json`` and ``OUT/refit_cost.md``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/refit_cost.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

import mdlprob

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import write_atomic  # noqa: E402


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-obs", type=int, default=3000)
    p.add_argument("--n-genes", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    p.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    args = p.parse_args(argv)
    if args.quick:
        args.n_obs, args.n_genes, args.epochs = 300, 50, 2
    return args


def per_step_refit(model, n_steps: int) -> None:
    """The refit as it was: every step re-encodes, draws 16 proposals and decodes a mini-batch."""
    module, tensors = model.module, model._tensors
    noise = [p for m in model.modalities for p in module.likelihoods[m].parameters(recurse=False)]
    frozen = [p for p in module.parameters() if all(p is not q for q in noise)]
    rows = torch.as_tensor(model.val_indices_ if len(model.val_indices_) >= 100 else model.train_indices_)
    optimiser = torch.optim.Adam(noise, lr=1e-2)
    for p in frozen:
        p.requires_grad_(False)
    steps = 0
    try:
        while steps < n_steps:
            for idx in torch.split(rows[torch.randperm(len(rows))], 256):
                batch = tensors.batch(idx.sort().values)
                with torch.no_grad():
                    z = module.sample_model_posterior(batch, batch["presence"], 1, 16)[0]
                loss = -sum(module.recon_log_prob(m, j, z, batch) for j, m in enumerate(model.modalities)).mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                steps += 1
                if steps == n_steps:
                    break
    finally:
        for p in frozen:
            p.requires_grad_(True)


def measure(name: str, mdata, args) -> dict[str, Any]:
    model = getattr(mdlprob.models, name)(mdata, n_hidden=256 if not args.quick else 16, n_latent=20 if not args.quick else 4)
    t0 = time.perf_counter()
    model.train(max_epochs=args.epochs, early_stopping=True, refit_noise_steps=0, progress_bar=False)
    train_s = time.perf_counter() - t0
    cap = min(300, args.epochs * -(-len(model.train_indices_) // 256))
    trained = copy.deepcopy(model.module.state_dict())
    theta = lambda: float(model.module.likelihoods["protein"].log_theta.detach().mean())  # noqa: E731
    out: dict[str, Any] = {"model": name, "train_seconds": train_s, "cap": cap, "trained_log_theta": theta()}
    for kind in ("cached", "per_step"):
        model.module.load_state_dict(trained)
        t0 = time.perf_counter()
        if kind == "cached":
            model.refit_noise(n_steps=cap, progress_bar=False)
        else:
            per_step_refit(model, cap)
        out[f"{kind}_seconds"] = time.perf_counter() - t0
        out[f"{kind}_share"] = out[f"{kind}_seconds"] / train_s
        out[f"{kind}_log_theta"] = theta()
    out["cached_steps"] = len(model.history_["noise_loss"])
    print(f"{name}: training {train_s:.1f} s; refit cached {out['cached_seconds']:.2f} s "
          f"({100 * out['cached_share']:.1f}%, {out['cached_steps']} Newton steps), per-step "
          f"{out['per_step_seconds']:.1f} s ({100 * out['per_step_share']:.0f}%)", flush=True)
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        mdlprob.settings.seed = args.seed
        mdlprob.settings.progress_bar = False
        mdata = mdlprob.datasets.synthetic(args.n_obs, modalities=("rna", "protein"),
                                           n_vars={"rna": args.n_genes, "protein": 30}, seed=args.seed)
        mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb"}, library_size=False)
        load = os.getloadavg()[0]
        rows = [measure(name, mdata, args) for name in ("MoEVAE", "MoPoEVAE")]
    finally:
        torch.set_num_threads(threads)
    report = {"date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "command": shlex.join([Path(sys.executable).name, "benchmarks/refit_cost.py", *argv]),
              "config": vars(args), "load_average_start": round(load, 2),
              "load_average_end": round(os.getloadavg()[0], 2), "results": rows}
    lines = ["# Cost of the noise refit", "",
             f"{args.n_obs} cells, {args.n_genes} genes + 30 proteins (NB), trained {args.epochs} epochs with early "
             "stopping's validation split; both refits start from the same trained weights and run at most the "
             "default number of steps (`min(300, training steps)`). One torch thread.", "",
             "| model | training s | cached refit s (share, Newton steps) | per-step refit s (share) | speed-up "
             "| protein log θ: trained / cached / per-step |", "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['train_seconds']:.1f} | {r['cached_seconds']:.2f} "
                     f"({100 * r['cached_share']:.1f}%, {r['cached_steps']}) | {r['per_step_seconds']:.1f} "
                     f"({100 * r['per_step_share']:.0f}%) | {r['per_step_seconds'] / r['cached_seconds']:.1f}× "
                     f"| {r['trained_log_theta']:.3f} / {r['cached_log_theta']:.3f} / {r['per_step_log_theta']:.3f} |")
    lines += ["", f"- load average (1 min) at start / end: {report['load_average_start']} / {report['load_average_end']} "
              "(2 shared CPU cores: compare within a row)", f"- date: {report['date']}",
              f"- command: `{report['command']}`", ""]
    out = Path(args.out)
    write_atomic(out / "refit_cost.json", json.dumps(report, indent=1) + "\n")
    write_atomic(out / "refit_cost.md", "\n".join(lines))
    return report


if __name__ == "__main__":
    main()

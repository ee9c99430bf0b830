"""Peak memory of streaming inference: ``impute``, ``sample_predictive`` is excluded (its output is n_obs-sized by design).

For 10^4, 10^5 and 10^6 observations of a two-modality count data set (20 + 20 features),
a small PoEVAE is trained once on 2,000 observations and saved; each measurement then runs
in a fresh process: load the model, build the data, record the resident set size (RSS),
run one call at ``n_samples=200`` and record the peak RSS (``getrusage``). The increase over
the baseline, minus the size of the returned result, is the scratch memory of the call:
bounded by the internal batch, it should not grow with the number of observations.

Run: ``OMP_NUM_THREADS=1 python benchmarks/inference_memory.py --out benchmarks/results``
(``--quick``: 10^4 and 10^5 only).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = (10_000, 100_000, 1_000_000)
N_SAMPLES = 200
CALLS = ("impute", "get_latent", "log_likelihood")


def _data(n: int, seed: int = 0):
    import anndata as ad
    import mudata as md
    import numpy as np

    import mdlprob

    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3)).astype(np.float32)
    mods = {}
    for k, name in enumerate(("rna", "protein")):
        w = np.random.default_rng(100 + k).normal(scale=0.7, size=(3, 20))
        x = rng.poisson(np.exp(1.5 + z @ w)).astype(np.float32)
        mods[name] = ad.AnnData(x)
        mods[name].obs_names = [f"c{i}" for i in range(n)]
        mods[name].var_names = [f"{name}{j}" for j in range(20)]
    keep = rng.random(n) < 0.7
    mods["protein"] = mods["protein"][keep].copy()
    mdata = md.MuData(mods)
    mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb"})
    return mdata


def _status_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last reset) of this process, in MB."""
    with open("/proc/self/status") as fh:
        line = next(line for line in fh if line.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def _reset_peak() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM to the current RSS."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def measure(model_dir: str, n: int, call: str) -> dict:
    """In this process: the peak RSS increase of one ``call`` on ``n`` observations."""
    import warnings

    import torch

    import mdlprob

    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    mdlprob.settings.progress_bar = False
    mdata = _data(n)
    model = mdlprob.PoEVAE.load(model_dir, mdata)
    mdlprob.settings.seed = 0
    model.impute(mdata[:100].copy(), "protein", n_samples=N_SAMPLES)  # warm-up: lazy imports and allocator
    import gc

    gc.collect()
    _reset_peak()
    base, start = _status_mb("VmRSS"), time.perf_counter()
    if call == "impute":
        out = model.impute(mdata, "protein", given=["rna"], n_samples=N_SAMPLES)
        result_mb = sum(a.nbytes for a in [out.X, *out.layers.values()]) / 2**20
    elif call == "get_latent":
        out = model.get_latent(mdata)
        result_mb = 2 * out.nbytes / 2**20
    else:
        out = model.log_likelihood(mdata, n_samples=N_SAMPLES)
        result_mb = out.nbytes / 2**20
    seconds = time.perf_counter() - start
    peak = _status_mb("VmHWM")
    return {"n_obs": n, "call": call, "n_samples": N_SAMPLES, "baseline_mb": round(base, 1),
            "peak_increase_mb": round(peak - base, 1), "result_mb": round(result_mb, 1),
            "scratch_mb": round(peak - base - result_mb, 1), "seconds": round(seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--measure", nargs=3, metavar=("MODEL", "N", "CALL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure[0], int(args.measure[1]), args.measure[2])))
        return
    import mdlprob
    from mdlprob._utils import atomic_path

    mdlprob.settings.seed = 0
    mdlprob.settings.progress_bar = False
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = mdlprob.PoEVAE(_data(2000), n_latent=8, n_hidden=64)
        model.train(max_epochs=20)
        model.save(Path(tmp) / "model")
        for n in SIZES[:2] if args.quick else SIZES:
            for call in CALLS:
                proc = subprocess.run([sys.executable, __file__, "--measure", str(Path(tmp) / "model"), str(n), call],
                                      capture_output=True, text=True, check=True)
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
                print(rows[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out / "inference_memory.json") as tmp:
        tmp.write_text(json.dumps({"command": "OMP_NUM_THREADS=1 python benchmarks/inference_memory.py"
                                   + (" --quick" if args.quick else ""), "rows": rows}, indent=1))
    lines = ["# Inference memory: peak RSS increase of one call (fresh process each)", "",
             f"PoEVAE (8 latent, 64 hidden), two 20-feature NB modalities (protein 70% present), n_samples={N_SAMPLES}. "
             "scratch = peak increase - size of the returned result.", "",
             "| n_obs | call | peak increase (MB) | result (MB) | scratch (MB) | seconds |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['n_obs']:,} | {r['call']} | {r['peak_increase_mb']} | {r['result_mb']} | {r['scratch_mb']} | {r['seconds']} |"
              for r in rows]
    with atomic_path(args.out / "inference_memory.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""Peak memory of streaming inference: ``impute``, ``sample_predictive`` is excluded (its output is n_obs-sized by design).

For 10^4, 10^5 and 10^6 observations of a two-modality count data set (20 + 20 features),
a small PoEVAE is trained once on 2,000 observations and saved; each measurement then runs
in a fresh process: load the model, build the data, record the resident set size (RSS),
run one call at ``n_samples=200`` and record the peak RSS (``getrusage``). The increase over
the baseline, minus the size of the returned result, is the scratch memory of the call:
bounded by the internal batch, it should not grow with the number of observations.

Run: ``OMP_NUM_THREADS=1 python benchmarks/inference_memory.py --out benchmarks/results``
(``--quick``: 10^4 and 10^5 only).

``--device cuda`` (or ``cpu``) measures streamed inference on that device instead, in this process:
the same model trained there, then ``get_latent`` and ``impute(n_samples=--n-samples)`` of
``--n-obs`` observations (default 10^5 and 100 draws), each call's wall time and, on CUDA, the
peak GPU memory it allocated (``torch.cuda.max_memory_allocated`` after a reset, minus what was
allocated before). Writes ``inference_device.{json,md}``::

    python benchmarks/inference_memory.py --device cuda --out benchmarks/results
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


def measure_device(device: str, n: int, n_samples: int, *, n_train: int = 2000) -> list[dict]:
    """Streamed ``get_latent`` and ``impute`` of ``n`` observations on ``device``: seconds and peak device memory."""
    import torch

    import mdlprob

    mdlprob.settings.seed = 0
    mdlprob.settings.progress_bar = False
    model = mdlprob.PoEVAE(_data(n_train), n_latent=8, n_hidden=64)
    model.train(max_epochs=20, accelerator=device)
    mdata = _data(n)
    model.impute(mdata[:100].copy(), "protein", n_samples=n_samples)  # warm-up: kernels, allocator
    cuda = torch.device(device).type == "cuda"
    rows = []
    for call in ("get_latent", "impute"):
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        start = time.perf_counter()
        if call == "get_latent":
            model.get_latent(mdata)
        else:
            model.impute(mdata, "protein", given=["rna"], n_samples=n_samples)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        peak = (torch.cuda.max_memory_allocated() - before) / 2**20 if cuda else None
        rows.append({"n_obs": n, "call": call, "n_samples": n_samples if call == "impute" else 0,
                     "device": torch.cuda.get_device_name() if cuda else "cpu", "seconds": round(seconds, 3),
                     "obs_per_s": round(n / seconds), "peak_device_mb": None if peak is None else round(peak, 1)})
        print(rows[-1], flush=True)
    return rows


def _write_device(out: Path, rows: list[dict], command: str) -> None:
    from mdlprob._utils import atomic_path

    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "inference_device.json") as tmp:
        tmp.write_text(json.dumps({"command": command, "rows": rows}, indent=1))
    lines = ["# Streamed inference on a device: wall time and peak device memory of one call", "",
             "PoEVAE (8 latent, 64 hidden) trained on the device, two 20-feature NB modalities (protein 70% present); "
             "peak device memory = `torch.cuda.max_memory_allocated()` during the call minus what was allocated "
             "before it (model weights and the like).", "",
             "| n_obs | call | n_samples | device | seconds | obs/s | peak device memory (MB) |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['n_obs']:,} | {r['call']} | {r['n_samples']} | {r['device']} | {r['seconds']} | {r['obs_per_s']:,} "
              f"| {'—' if r['peak_device_mb'] is None else r['peak_device_mb']} |" for r in rows]
    lines += ["", f"Command: `{command}`"]
    with atomic_path(out / "inference_device.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="time streamed inference on this device instead of measuring host memory")
    parser.add_argument("--n-obs", type=int, default=100_000, help="observations with --device")
    parser.add_argument("--n-samples", type=int, default=100, help="imputation draws with --device")
    parser.add_argument("--measure", nargs=3, metavar=("MODEL", "N", "CALL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.device is not None:
        import torch

        if args.device == "cuda" and not torch.cuda.is_available():
            parser.error("--device cuda: torch sees no CUDA device; use --device cpu")
        if args.n_obs < 100 or args.n_samples < 1:
            parser.error(f"--n-obs must be >= 100 and --n-samples >= 1, got {args.n_obs} and {args.n_samples}")
        rows = measure_device(args.device, args.n_obs, args.n_samples, n_train=500 if args.quick else 2000)
        _write_device(args.out, rows, "python benchmarks/inference_memory.py " + " ".join(argv or sys.argv[1:]))
        return
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

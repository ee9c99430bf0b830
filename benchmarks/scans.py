"""Imputing a missing MRI sequence (FLAIR) from T1 + T2: mdlprob models against image baselines.

Data: ``mdlprob.datasets.synthetic_scans`` brain phantoms (T1, T2, FLAIR; intensities in
[0, 1], Gaussian likelihood per pixel). For each scenario (FLAIR missing, MCAR, for 30% or
60% of the training subjects) the script draws ``n_train + n_test`` subjects, hides FLAIR for
the chosen fraction of the first ``n_train`` and trains on those only. Two groups of subjects
are scored, always from T1 + T2 alone (``given=["t1", "t2"]``):

* ``missing``: training subjects whose FLAIR was hidden (at most ``--n-score`` of them): the
  model saw their T1/T2, never their FLAIR;
* ``held_out``: the ``n_test`` subjects not trained on at all.

Methods:

* mdlprob models (``PoEVAE``, ``MoPoEVAE``, ``MoEVAE``; convolutional residual experts chosen
  automatically from ``uns["image_shape"]``): ``impute`` mean, sd and 5%/95% quantiles;
  ``--models PoEVAE-cross`` adds ``PoEVAE(cross_reconstruction=True)``, whose single-modality
  posteriors are trained to reconstruct every modality (cross-modal prediction fitted directly);
* ``mean_image``: the mean FLAIR of the training subjects that have it; interval: the
  per-pixel empirical 5%-95% range of those FLAIRs;
* ``nearest_neighbour``: the FLAIR of the training subject (with FLAIR) whose concatenated
  T1 + T2 pixels are closest in Euclidean distance (no interval);
* ``regression``: a supervised image-to-image network of the same capacity as one mdlprob
  expert pair (``mdlprob.nn.ConvEncoder`` on the 2-channel T1 + T2 image, latent mean only,
  ``mdlprob.nn.ConvDecoder`` and a 1x1 convolution to FLAIR), trained with MSE on the
  complete training subjects for ``--reg-epochs`` epochs (about the CPU time of one PoEVAE
  fit); interval: mean +/- 1.645 x the per-pixel training residual sd (in-sample, optimistic);
* ``local_cnn``: a supervised fully-convolutional net without bottleneck or downsampling (two
  3x3 convolutions of 16 channels and a 1x1 output; about 2,800 weights, receptive field 5x5),
  trained (``--local-epochs``, learning rate 5e-3) and given intervals like ``regression``. FLAIR is nearly a per-pixel function of
  (T1, T2) in these phantoms, so this local model is the supervised ceiling; it has no latent
  space and cannot use subjects without FLAIR.

Metrics (``mdlprob.metrics``): PSNR and SSIM (uniform 7x7 window) per scan, averaged; pooled
per-pixel 90% interval coverage over head pixels (noise-free FLAIR > 0.02: scalp and brain)
and over all pixels (the background is exactly 0 and trivially covered); the pooled Spearman
correlation between predicted sd and absolute error over head pixels; training CPU time
(``time.process_time``, which is robust to a shared machine) and wall time.
A ``scan_panel`` figure per mdlprob model of held-out subjects is written for the 60% scenario.

Sizes: ``--size 32`` is the CPU setting (default on CPU); ``--size 64`` is the GPU setting
(default with ``--device cuda``). The CUDA path (``--device cuda``: models trained with
``accelerator="cuda"``, the regression net on the GPU) is written but has not been run.

Usage::

    python benchmarks/scans.py --out benchmarks/results            # full CPU run
    python benchmarks/scans.py --device cuda --out benchmarks/results   # GPU setting (size 64)
    python benchmarks/scans.py --quick --out /tmp/scans_quick      # smoke test (seconds)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import mdlprob
from mdlprob import metrics
from mdlprob._utils import atomic_path
from mdlprob.data import hide_modality, setup_mudata, subset
from mdlprob.nn import ConvDecoder, ConvEncoder

SEQUENCES = ("t1", "t2", "flair")
TARGET, GIVEN = "flair", ["t1", "t2"]
MODELS = ("PoEVAE", "MoPoEVAE", "MoEVAE")
#: Optional variants (``--models``): name -> (class, keyword arguments). A ``-calibrated`` variant
#: trains on 85% of the training subjects and calibrates its per-pixel FLAIR intervals on the other
#: 15% (split conformal, ``calibrate_intervals(per_feature=True)``).
VARIANTS = {"PoEVAE-cross": ("PoEVAE", {"cross_reconstruction": True}), "PoEVAE-calibrated": ("PoEVAE", {}),
            "MoPoEVAE-calibrated": ("MoPoEVAE", {}), "MoEVAE-calibrated": ("MoEVAE", {})}
Z90 = 1.6448536269514722
HEAD_THRESHOLD = 0.02
LOCAL_LR = 5e-3  # the small local net takes a larger step
DEFAULTS = {"n_train": 160, "n_test": 40, "n_score": 40, "epochs": 20, "reg_epochs": 40, "local_epochs": 100,
            "n_samples": 20, "n_latent": 16, "batch_size": 16, "lr": 2e-3, "rates": "0.3,0.6"}
QUICK = {"n_train": 16, "n_test": 6, "n_score": 6, "epochs": 1, "reg_epochs": 1, "local_epochs": 1, "n_samples": 4,
         "n_latent": 4, "batch_size": 16, "lr": 2e-3, "rates": "0.3,0.6"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--size", type=int, default=None, help="image side in pixels (default 32 on CPU, 64 on CUDA)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated mdlprob model class names")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 1 epoch (smoke test)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    for key, value in DEFAULTS.items():
        p.add_argument(f"--{key.replace('_', '-')}", type=type(value), default=None,
                       help=f"default {value} ({QUICK[key]} with --quick)")
    args = p.parse_args(argv)
    base = QUICK if args.quick else DEFAULTS
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.size is None:
        args.size = 28 if args.quick else (64 if args.device == "cuda" else 32)
    args.rates = [float(r) for r in str(args.rates).split(",")]
    args.models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(args.models) - set(MODELS) - set(VARIANTS))
    if unknown:
        p.error(f"--models: expected names from {MODELS + tuple(VARIANTS)}, got {unknown}")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available; use --device cpu")
    return args


# ------------------------------------------------------------------------------------------ data
def make_scenario(rate: float, args: argparse.Namespace) -> dict[str, Any]:
    """Training MuData (FLAIR hidden for ``rate`` of it) and the scored subjects with their truth."""
    n_obs = args.n_train + args.n_test
    full = mdlprob.datasets.synthetic_scans(n_obs, sequences=SEQUENCES, size=args.size, seed=args.seed)
    rng = np.random.default_rng(args.seed + int(round(1000 * rate)))
    hidden = np.zeros(n_obs, dtype=bool)
    hidden[rng.choice(args.n_train, size=int(round(rate * args.n_train)), replace=False)] = True
    train = subset(hide_modality(full, TARGET, hidden), np.arange(args.n_train))
    setup_mudata(train, likelihoods=dict.fromkeys(SEQUENCES, "gaussian"))
    groups = {"missing": np.flatnonzero(hidden)[: args.n_score], "held_out": np.arange(args.n_train, n_obs)}
    values = {s: np.asarray(full.uns["truth"][s]["values"], dtype=np.float64) for s in SEQUENCES}
    head = np.asarray(full.uns["truth"][TARGET]["mean"]) > HEAD_THRESHOLD
    complete = np.flatnonzero(~hidden[: args.n_train])
    return {"full": full, "train": train, "groups": groups, "values": values, "head": head, "complete": complete,
            "shape": tuple(int(v) for v in full[TARGET].uns["image_shape"])}


# ------------------------------------------------------------------------------------- baselines
def mean_image(sc: dict[str, Any], rows: np.ndarray) -> dict[str, np.ndarray]:
    observed = sc["values"][TARGET][sc["complete"]]
    lo, hi = np.quantile(observed, [0.05, 0.95], axis=0)
    n = len(rows)
    return {"mean": np.tile(observed.mean(0), (n, 1)), "q05": np.tile(lo, (n, 1)), "q95": np.tile(hi, (n, 1)),
            "std": np.tile(observed.std(0), (n, 1))}


def nearest_neighbour(sc: dict[str, Any], rows: np.ndarray) -> dict[str, np.ndarray]:
    feats = np.hstack([sc["values"][s] for s in GIVEN])
    ref = sc["complete"]
    d2 = ((feats[rows, None, :] - feats[None, ref, :]) ** 2).sum(-1)
    return {"mean": sc["values"][TARGET][ref[d2.argmin(1)]]}


class _Regressor(nn.Module):
    """T1 + T2 (2 channels) -> FLAIR through the same encoder/decoder pair as an mdlprob image expert."""

    def __init__(self, shape: tuple[int, int, int], n_latent: int) -> None:
        super().__init__()
        self.encoder = ConvEncoder(shape, 2 * shape[0], n_latent)
        self.decoder = ConvDecoder(n_latent, shape)
        self.head = nn.Conv2d(self.decoder.out_channels, shape[0], 1)
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu, _ = self.encoder(x)
        h = self.decoder(mu).reshape(-1, self.decoder.out_channels, *self.shape[1:])
        return self.head(h).reshape(x.shape[0], -1)


class _LocalNet(nn.Module):
    """A fully-convolutional net without downsampling: FLAIR from the T1 + T2 pixels within 5x5."""

    def __init__(self, shape: tuple[int, int, int], n_latent: int) -> None:
        super().__init__()
        c = shape[0]
        self.body = nn.Sequential(nn.Conv2d(2 * c, 16, 3, padding=1), nn.SiLU(), nn.Conv2d(16, 16, 3, padding=1),
                                  nn.SiLU(), nn.Conv2d(16, c, 1))
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, h, w = self.shape
        return self.body(x.reshape(-1, 2 * c, h, w)).reshape(x.shape[0], -1)


def fit_regression(net_cls: type[nn.Module], sc: dict[str, Any], args: argparse.Namespace, *,
                   epochs: int, lr: float) -> tuple[nn.Module, np.ndarray, dict[str, float]]:
    """Train a regressor with MSE on complete training subjects; return it and the residual sd."""
    device = torch.device(args.device)
    x = torch.as_tensor(np.hstack([sc["values"][s][sc["complete"]] for s in GIVEN]), dtype=torch.float32, device=device)
    y = torch.as_tensor(sc["values"][TARGET][sc["complete"]], dtype=torch.float32, device=device)
    torch.manual_seed(args.seed)
    net = net_cls(sc["shape"], args.n_latent).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(args.seed)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(args.batch_size):
            idx = idx.to(device)
            loss = ((net(x[idx]) - y[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        resid_sd = (net(x) - y).std(0).cpu().numpy().astype(np.float64)
    return net, resid_sd, {"train_cpu_s": time.process_time() - cpu0, "train_wall_s": time.perf_counter() - wall0}


def regression(net: nn.Module, resid_sd: np.ndarray, sc: dict[str, Any], rows: np.ndarray,
               device: str) -> dict[str, np.ndarray]:
    x = torch.as_tensor(np.hstack([sc["values"][s][rows] for s in GIVEN]), dtype=torch.float32, device=device)
    with torch.no_grad():
        mean = net(x).cpu().numpy().astype(np.float64)
    sd = np.tile(resid_sd, (len(rows), 1))
    return {"mean": mean, "std": sd, "q05": mean - Z90 * sd, "q95": mean + Z90 * sd}


# ------------------------------------------------------------------------------------ mdlprob models
def fit_model(name: str, sc: dict[str, Any], args: argparse.Namespace) -> tuple[Any, dict[str, float]]:
    mdlprob.settings.seed = args.seed
    cls_name, kwargs = VARIANTS.get(name, (name, {}))
    model = getattr(mdlprob.models, cls_name)(sc["train"], n_latent=args.n_latent, **kwargs)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    calibrated = name.endswith("-calibrated")
    model.train(max_epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, accelerator=args.device,
                progress_bar=False, **({"train_size": 0.85} if calibrated else {}))
    if calibrated:
        model.calibrate_intervals(modalities=[TARGET], per_feature=True)
    timing = {"train_cpu_s": time.process_time() - cpu0, "train_wall_s": time.perf_counter() - wall0}
    if args.device == "cuda":
        torch.cuda.synchronize()
        timing["train_wall_s"] = time.perf_counter() - wall0
    return model, timing


def impute(model: Any, sc: dict[str, Any], rows: np.ndarray, n_samples: int) -> dict[str, np.ndarray]:
    result = model.impute(subset(sc["full"], rows), TARGET, given=GIVEN, n_samples=n_samples)
    return {k: np.asarray(result.layers[k], dtype=np.float64) for k in ("mean", "std", "q05", "q95")}


# ----------------------------------------------------------------------------------------- scoring
def score(pred: dict[str, np.ndarray], truth: np.ndarray, head: np.ndarray, shape: tuple[int, ...]) -> dict[str, float]:
    mean = np.clip(pred["mean"], 0.0, 1.0)  # every method is scored on the valid intensity range
    out = {"psnr": float(np.mean(metrics.psnr(truth, mean))),
           "ssim": float(np.mean(metrics.ssim(truth, mean, image_shape=shape))),
           "rmse": float(np.sqrt(np.mean((truth - mean) ** 2)))}
    nan = float("nan")
    out.update(coverage90_head=nan, coverage90_all=nan, width90_head=nan, sd_error_spearman=nan)
    if "q05" in pred:
        lo, hi = np.minimum(pred["q05"], pred["q95"]), np.maximum(pred["q05"], pred["q95"])
        out["coverage90_head"] = metrics.interval_coverage(truth, lo, hi, mask=head)
        out["coverage90_all"] = metrics.interval_coverage(truth, lo, hi)
        out["width90_head"] = float((hi - lo)[head].mean())
    if "std" in pred:
        out["sd_error_spearman"] = metrics.uncertainty_error_correlation(truth, mean, pred["std"], mask=head)[1]
    return out


def run_scenario(rate: float, args: argparse.Namespace) -> list[dict[str, Any]]:
    sc = make_scenario(rate, args)
    rows_out: list[dict[str, Any]] = []
    base = {"scenario": f"flair_missing_{round(100 * rate)}pct", "missing_rate": rate}

    def record(method: str, preds: dict[str, dict[str, np.ndarray]], timing: dict[str, float]) -> None:
        for group, rows in sc["groups"].items():
            scores = score(preds[group], sc["values"][TARGET][rows], sc["head"][rows], sc["shape"])
            rows_out.append({**base, "group": group, "n_scored": len(rows), "method": method, **scores, **timing})
        row = rows_out[-1]
        print(f"{base['scenario']} {method}: held-out PSNR {row['psnr']:.2f} SSIM {row['ssim']:.3f}", flush=True)

    groups = sc["groups"]
    record("mean_image", {g: mean_image(sc, r) for g, r in groups.items()}, {})
    record("nearest_neighbour", {g: nearest_neighbour(sc, r) for g, r in groups.items()}, {})
    for method, net_cls, epochs, lr in (("regression", _Regressor, args.reg_epochs, args.lr),
                                        ("local_cnn", _LocalNet, args.local_epochs, LOCAL_LR)):
        net, resid_sd, timing = fit_regression(net_cls, sc, args, epochs=epochs, lr=lr)
        record(method, {g: regression(net, resid_sd, sc, r, args.device) for g, r in groups.items()}, timing)
    for name in args.models:
        model, timing = fit_model(name, sc, args)
        wall0 = time.perf_counter()
        preds = {g: impute(model, sc, r, args.n_samples) for g, r in groups.items()}
        timing["impute_wall_s"] = time.perf_counter() - wall0
        timing["final_train_loss"] = float(model.history_["train_loss"][-1])
        record(name, preds, timing)
        if rate == max(args.rates):
            rows = groups["held_out"]
            observed = {s: sc["values"][s][rows] for s in GIVEN}
            mdlprob.plotting.scan_panel(observed, preds["held_out"]["mean"], preds["held_out"]["std"],
                                        sc["values"][TARGET][rows], image_shape=sc["shape"], n_subjects=4,
                                        label="FLAIR", path=args.out / f"scans_panel_{name}.png")
    return rows_out


# ----------------------------------------------------------------------------------------- report
COLUMNS = [("psnr", "PSNR dB", "{:.2f}"), ("ssim", "SSIM", "{:.3f}"), ("coverage90_head", "cov90 head", "{:.3f}"),
           ("coverage90_all", "cov90 all", "{:.3f}"), ("width90_head", "width90 head", "{:.3f}"),
           ("sd_error_spearman", "rho(sd, abs err)", "{:.3f}"), ("train_cpu_s", "train CPU s", "{:.0f}"),
           ("train_wall_s", "train wall s", "{:.0f}")]


def markdown(results: list[dict[str, Any]], meta: dict[str, Any], config: dict[str, Any]) -> str:
    lines = ["# Imputing FLAIR from T1 + T2 (synthetic_scans)", "",
             f"`{meta['command']}` on {meta['device_name']} ({meta['date']}, torch {meta['torch_version']}, "
             f"{meta['n_threads']} thread(s), total wall {meta['total_wall_s']:.0f} s, "
             f"total CPU {meta['total_cpu_s']:.0f} s).", "",
             f"{config['n_train']} training subjects, {config['n_test']} held-out subjects, "
             f"{config['size']}x{config['size']} pixels, n_latent {config['n_latent']}, "
             f"{config['epochs']} epochs (batch {config['batch_size']}, lr {config['lr']}) for mdlprob models, "
             f"{config['reg_epochs']} for `regression`, {config['local_epochs']} for `local_cnn`, {config['n_samples']} predictive samples. "
             "`missing`: training subjects whose FLAIR was hidden; `held_out`: subjects never trained on. "
             "Intervals: 90% (q05-q95); n/a where a method gives none. Head pixels: noise-free FLAIR > "
             f"{HEAD_THRESHOLD}.", ""]
    header = ["scenario", "group", "method"] + [label for _, label, _ in COLUMNS]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        cells = [r["scenario"], r["group"], r["method"]]
        for key, _, fmt in COLUMNS:
            v = r.get(key, float("nan"))
            cells.append("n/a" if v is None or not np.isfinite(v) else fmt.format(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; write ``scans.json``, ``scans.md`` and the panels to ``--out``; return the report."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    mdlprob.settings.progress_bar = False  # noise-refit and sampling bars would flood the log
    args.out.mkdir(parents=True, exist_ok=True)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    results = [{k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in row.items()}
               for rate in args.rates for row in run_scenario(rate, args)]  # NaN -> null: strict JSON
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": "python benchmarks/scans.py " + shlex.join(sys.argv[1:] if argv is None else list(argv)),
            "device_name": torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu",
            "torch_version": torch.__version__, "mdlprob_version": mdlprob.__version__,
            "cpu_count": os.cpu_count(), "n_threads": torch.get_num_threads(),
            "total_wall_s": time.perf_counter() - wall0, "total_cpu_s": time.process_time() - cpu0}
    report = {"meta": meta, "config": config, "results": results}
    with atomic_path(args.out / "scans.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2, allow_nan=False))
    with atomic_path(args.out / "scans.md") as tmp:
        tmp.write_text(markdown(results, meta, config))
    return report


if __name__ == "__main__":
    main()

"""Survival prediction on TCGA BLCA / LUAD (MCAT genomic features) with the RNA block partly missing.

Data: ``mdlprob.datasets.tcga_survival(cancer, source="mcat")`` (RNA-seq z-scores, GISTIC CNV,
age / sex), overall survival, scored on the **published MCAT 5-fold splits** (train on a fold's
``train`` patients, score on its ``val`` patients), as the MCAT / SNN numbers printed beside
ours. RNA z-scores are heavy-tailed (values up to ~1e4), so every method sees
``sign(x) log(1 + |x|)`` of them.

Missing views: for each rate in 0/25/50/75% a seeded random subset of **all** patients (train and
test alike; nested across rates) loses its RNA block (``mdlprob.data.hide_modality``).

Methods (one row per fold):

* ``poe+coxph`` (with ``--heads``: also ``poe+weibull_aft``, ``poe+logistic_hazard``): two-stage.
  A ``PoEVAE`` is fitted once per (cancer, rate) on the omics and clinical data of all patients,
  **without any outcome** (unsupervised, transductive); a Bayesian head from ``mdlprob.heads`` is
  fitted on 10 posterior latent draws of the fold's training patients and predicts the
  test patients from their own latent draws (so latent and coefficient uncertainty both enter
  the 90% risk interval);
* ``poe_joint``: a ``PoEVAE`` trained jointly with a Cox outcome (``setup_mudata(...,
  outcome={"type": "coxph"})``, outcome weight 1) per fold, transductively: every patient's
  omics are used, but the test fold's time / event are set to NaN (unlabelled) before
  ``setup_mudata``, so no test outcome is seen; risk and its 90% interval (latent uncertainty
  only: the outcome network is a point estimate) from ``predict_outcome``;
* ``early``, ``late``, ``intermediate_kronecker``, ``intermediate_attention``: the
  ``mdlprob.fusion`` baselines (neural Cox), trained on the fold's training patients;
* ``coxnet``: scikit-survival ``CoxnetSurvivalAnalysis`` (elastic net, ``l1_ratio=0.1``) on the
  concatenated raw features; absent RNA blocks and missing entries are filled with the training
  mean, features standardised with training statistics; ``alpha`` is chosen on a path of 30
  values by 3-fold inner cross-validation (Harrell's C) on the training patients.

Metrics on the test fold: Harrell's C and Uno's C (``mdlprob.metrics``; censoring from the
training fold, truncated at the 90th percentile of the training times), mean ± sd over the 5
folds; for the mdlprob models the mean width of the 90% risk interval for test patients with
and without RNA (widths are on each method's own risk scale: compare within a row).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/survival_tcga.py --out benchmarks/results
    OMP_NUM_THREADS=1 python benchmarks/survival_tcga.py --quick --out /tmp/surv_quick
    # PoEVAE variant whose single-view posteriors also decode the absent views (mdlprob rows only)
    OMP_NUM_THREADS=1 python benchmarks/survival_tcga.py --cross-reconstruction --methods two_stage,joint --out /tmp/x

Transductive vs inductive: the PoEVAE rows see every patient's omics (never a test outcome);
the fusion and Coxnet rows see only the training patients.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import mudata as md
import numpy as np
import pandas as pd
import torch
from sksurv.util import Surv

import mdlprob
from mdlprob import metrics
from mdlprob._utils import atomic_path
from mdlprob.benchmark import markdown_table
from mdlprob.data import hide_modality, setup_mudata
from mdlprob.datasets._paths import data_root
from mdlprob.fusion import EarlyFusion, IntermediateFusion, LateFusion, fusion_inputs

LIKELIHOODS = {"rna": "gaussian", "cnv": "gaussian", "clinical": "mixed"}
HEADS = ("CoxPHHead", "WeibullAFTHead", "LogisticHazardHead")
HEAD_NAMES = {"CoxPHHead": "poe+coxph", "WeibullAFTHead": "poe+weibull_aft", "LogisticHazardHead": "poe+logistic_hazard"}
# published anchors: repo folder under tcga_mcat_sig/results/ICCV -> label
PUBLISHED = {
    "SNNsm_nll_surv_a0.0_reg1e-04_5foldcv_gc32_sig": "SNN genomic-only (published)",
    "AMILsm_nll_surv_a0.0_5foldcv_gc32_sig_concat": "AMIL WSI+genomic concat (published)",
    "MCATsm_nll_surv_a0.0_5foldcv_gc32_concat": "MCAT WSI+genomic (published)",
}
N_FOLDS = 5
GROUPS = ("two_stage", "joint", "fusion", "coxnet")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--cancers", default="BLCA,LUAD")
    p.add_argument("--rates", default=None, help="fractions of patients without RNA (default 0,0.25,0.5,0.75; quick: 0,0.5)")
    p.add_argument("--folds", type=int, default=N_FOLDS, help="use the first k published folds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny settings (smoke test): 2 folds, 2 rates, few epochs")
    p.add_argument("--heads", default="CoxPHHead", help=f"two-stage heads, comma-separated from {HEADS}")
    p.add_argument("--methods", default=",".join(GROUPS), help=f"method groups, comma-separated from {GROUPS}")
    p.add_argument("--cross-reconstruction", action="store_true",
                   help="PoEVAE(cross_reconstruction=True): every subset's posterior also decodes the absent views")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args(argv)
    args.rates = [float(r) for r in (args.rates or ("0,0.5" if args.quick else "0,0.25,0.5,0.75")).split(",")]
    args.heads = [h for h in args.heads.split(",") if h]
    args.methods = [m for m in args.methods.split(",") if m]
    for name, given, valid in (("--heads", args.heads, HEADS), ("--methods", args.methods, GROUPS)):
        unknown = set(given) - set(valid)
        if unknown:
            p.error(f"{name}: unknown {sorted(unknown)}; choose from {valid}")
    if args.quick:
        args.folds = min(args.folds, 2)
    args.cfg = {
        "n_latent": 4 if args.quick else 16, "n_hidden": 16 if args.quick else 64,
        "epochs": 3 if args.quick else 50, "batch_size": 128, "lr": 2e-3,
        "head_epochs": 20 if args.quick else 300, "latent_samples": 3 if args.quick else 10,
        "pred_samples": 10 if args.quick else 100, "fusion_epochs": 5 if args.quick else 100,
        "cross_reconstruction": args.cross_reconstruction,
    }
    return args


# ------------------------------------------------------------------------------------ data
def load(cancer: str, data_dir) -> md.MuData:
    mdata = mdlprob.datasets.tcga_survival(cancer, source="mcat", data_dir=data_dir)
    rna = mdata.mod["rna"]
    rna.X = (np.sign(rna.X) * np.log1p(np.abs(rna.X))).astype(np.float32)
    return mdata


def hidden_rna(n_obs: int, rate: float, seed: int) -> np.ndarray:
    """Nested MCAR masks: the same permutation for every rate, its first ``rate * n`` patients."""
    order = np.random.default_rng(seed).permutation(n_obs)
    hide = np.zeros(n_obs, dtype=bool)
    hide[order[: round(rate * n_obs)]] = True
    return hide


def folds(mdata, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [((mdata.obs[f"fold_{i}"] == "train").to_numpy(), (mdata.obs[f"fold_{i}"] == "val").to_numpy())
            for i in range(k)]


def score(y: np.ndarray, train: np.ndarray, test: np.ndarray, risk: np.ndarray) -> dict:
    out = {"harrell_c": metrics.harrell_c(y["event"][test], y["time"][test], risk)}
    tau = float(np.quantile(y["time"][train], 0.9))
    try:
        out["uno_c"] = metrics.uno_c(y[train], y[test], risk, tau=tau)
    except ValueError:
        out["uno_c"] = float("nan")
    return out


def widths(lower: np.ndarray, upper: np.ndarray, has_rna: np.ndarray) -> dict:
    w = upper - lower
    return {"width_with_rna": float(w[has_rna].mean()) if has_rna.any() else float("nan"),
            "width_without_rna": float(w[~has_rna].mean()) if (~has_rna).any() else float("nan")}


# ------------------------------------------------------------------------------------ methods
def poe(mdata, cfg: dict, seed: int):
    mdlprob.settings.seed = seed
    model = mdlprob.models.PoEVAE(mdata, n_latent=cfg["n_latent"], n_hidden=cfg["n_hidden"],
                                  cross_reconstruction=cfg.get("cross_reconstruction", False))
    model.train(max_epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"], progress_bar=False)
    return model


def two_stage(mdata, y, splits, has_rna, cfg: dict, seed: int, heads: Sequence[str]) -> list[dict]:
    setup_mudata(mdata, likelihoods=LIKELIHOODS)
    start = time.perf_counter()
    model = poe(mdata, cfg, seed)
    Z = model.get_latent(mdata, n_samples=cfg["latent_samples"])
    shared = (time.perf_counter() - start) / len(splits)
    rows = []
    for name in heads:
        cls = getattr(mdlprob.heads, name)
        for k, (train, test) in enumerate(splits):
            start = time.perf_counter()
            head = cls(max_epochs=cfg["head_epochs"], random_state=seed).fit(Z[:, train], y[train])
            risk, lower, upper = head.predict_risk(Z[:, test], return_interval=True)
            rows.append({"method": HEAD_NAMES[name], "fold": k, **score(y, train, test, risk),
                         **widths(lower, upper, has_rna[test]),
                         "seconds": time.perf_counter() - start + shared})
    return rows


def joint(mdata, y, splits, has_rna, cfg: dict, seed: int) -> list[dict]:
    rows = []
    for k, (train, test) in enumerate(splits):
        start = time.perf_counter()
        mdata.obs["time_fit"] = np.where(train, y["time"], np.nan)
        mdata.obs["event_fit"] = np.where(train, y["event"].astype(float), np.nan)
        setup_mudata(mdata, likelihoods=LIKELIHOODS,
                     outcome={"time_key": "time_fit", "event_key": "event_fit", "type": "coxph"})
        model = poe(mdata, cfg, seed)
        pred = model.predict_outcome(mdata, n_samples=cfg["pred_samples"], level=0.9)
        risk = pred["risk"].to_numpy()[test]
        rows.append({"method": "poe_joint", "fold": k, **score(y, train, test, risk),
                     **widths(pred["risk_lower"].to_numpy()[test], pred["risk_upper"].to_numpy()[test], has_rna[test]),
                     "seconds": time.perf_counter() - start})
    del mdata.obs["time_fit"], mdata.obs["event_fit"]
    return rows


def fusion_models(cfg: dict, seed: int) -> dict:
    opts = {"task": "survival", "max_epochs": cfg["fusion_epochs"], "random_state": seed}
    return {
        "early": EarlyFusion(**opts),
        "late": LateFusion(**opts),
        "intermediate_kronecker": IntermediateFusion(fusion="kronecker", **opts),
        "intermediate_attention": IntermediateFusion(fusion="attention", **opts),
    }


def fusion(mdata, y, splits, cfg: dict, seed: int) -> list[dict]:
    setup_mudata(mdata, likelihoods=LIKELIHOODS)
    X, presence = fusion_inputs(mdata)
    rows = []
    for name, est in fusion_models(cfg, seed).items():
        for k, (train, test) in enumerate(splits):
            start = time.perf_counter()
            est.fit({m: v[train] for m, v in X.items()}, y[train], presence={m: v[train] for m, v in presence.items()})
            risk = est.predict_risk({m: v[test] for m, v in X.items()}, presence={m: v[test] for m, v in presence.items()})
            rows.append({"method": name, "fold": k, **score(y, train, test, risk),
                         "seconds": time.perf_counter() - start})
    return rows


def coxnet(mdata, y, splits, cfg: dict, seed: int) -> list[dict]:
    """Elastic-net Cox on raw features, training-mean imputation, alpha by inner 3-fold CV."""
    from sklearn.model_selection import StratifiedKFold
    from sksurv.linear_model import CoxnetSurvivalAnalysis

    setup_mudata(mdata, likelihoods=LIKELIHOODS)
    X, presence = fusion_inputs(mdata)
    raw = np.hstack([np.where(presence[m][:, None], X[m], np.nan) for m in LIKELIHOODS])
    rows = []
    for k, (train, test) in enumerate(splits):
        start = time.perf_counter()
        Xtr, Xte = _standardise(raw[train], raw[test])
        path = CoxnetSurvivalAnalysis(l1_ratio=0.1, n_alphas=30, alpha_min_ratio=0.05).fit(Xtr, y[train])
        alphas = path.alphas_
        inner = np.zeros((3, alphas.size))
        cv = StratifiedKFold(3, shuffle=True, random_state=seed)
        for j, (a, b) in enumerate(cv.split(Xtr, y[train]["event"])):
            fit = CoxnetSurvivalAnalysis(l1_ratio=0.1, alphas=alphas).fit(Xtr[a], y[train][a])
            yb = y[train][b]
            inner[j] = [metrics.harrell_c(yb["event"], yb["time"], fit.predict(Xtr[b], alpha=al)) for al in fit.alphas_]
        best = alphas[int(np.argmax(inner.mean(0)))]
        risk = path.predict(Xte, alpha=best)
        rows.append({"method": "coxnet", "fold": k, **score(y, train, test, risk), "alpha": float(best),
                     "seconds": time.perf_counter() - start})
    return rows


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fill NaN with the training mean, then z-score with training statistics (constant columns: scale 1)."""
    mean = np.nanmean(train, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    train, test = (np.where(np.isnan(a), mean, a) for a in (train, test))
    sd = train.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    return (train - mean) / sd, (test - mean) / sd


# ------------------------------------------------------------------------------------ driver
def run_cancer(cancer: str, args: argparse.Namespace) -> Iterator[list[dict]]:
    """Yield the rows of each missing-RNA rate in turn."""
    full = load(cancer, args.data_dir)
    y = Surv.from_arrays(full.obs["event"].to_numpy() == 1, full.obs["time"].to_numpy(), name_event="event",
                         name_time="time")
    splits = folds(full, args.folds)
    for rate in args.rates:
        hide = hidden_rna(full.n_obs, rate, args.seed)
        mdata = hide_modality(full, "rna", hide) if hide.any() else full
        rows = []
        if "two_stage" in args.methods:
            rows += two_stage(mdata, y, splits, ~hide, args.cfg, args.seed, args.heads)
        if "joint" in args.methods:
            rows += joint(mdata, y, splits, ~hide, args.cfg, args.seed)
        if "fusion" in args.methods:
            rows += fusion(mdata, y, splits, args.cfg, args.seed)
        if "coxnet" in args.methods:
            rows += coxnet(mdata, y, splits, args.cfg, args.seed)
        done = pd.DataFrame(rows)
        print(f"{cancer} rate={rate}:", done.groupby("method")["harrell_c"].mean().round(3).to_dict(),
              file=sys.stderr, flush=True)
        yield [{"cancer": cancer.upper(), "missing_rna": rate, **row} for row in rows]


def published(data_dir) -> pd.DataFrame:
    """Published 5-fold validation c-index (mean, sd) per model and cancer; empty if the files are absent."""
    rows = []
    for folder, label in PUBLISHED.items():
        path = data_root(data_dir) / "tcga_mcat_sig" / "results" / "ICCV" / folder / "cindex.csv"
        if not path.exists():
            continue
        table = pd.read_csv(path)
        for _, r in table.iterrows():
            rows.append({"method": label, "cancer": str(r.iloc[0]).upper(), "mean": r["Val C-Index (Mean)"],
                         "sd": r["Val C-Index (STD)"]})
    return pd.DataFrame(rows, columns=["method", "cancer", "mean", "sd"])


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    args = parse_args(argv)
    args.command = " ".join(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    rows, pub = [], published(args.data_dir)
    for cancer in [c for c in args.cancers.split(",") if c]:
        for part in run_cancer(cancer, args):  # results are rewritten after every rate
            rows += part
            args.wall_seconds = time.perf_counter() - start
            write(pd.DataFrame(rows), pub, args)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------ output
def summary(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """``mean ± sd`` over folds; rows (cancer, method), one column per missing-RNA rate."""
    agg = table.groupby(["cancer", "method", "missing_rna"], sort=False)[metric].agg(["mean", "std"])
    cell = agg.apply(lambda r: "" if np.isnan(r["mean"]) else f"{r['mean']:.3f} ± {r['std']:.3f}", axis=1)
    out = cell.unstack("missing_rna")
    out.columns = [f"{int(round(100 * c))}% no RNA" for c in out.columns]
    return out.reset_index()


def write(table: pd.DataFrame, pub: pd.DataFrame, args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out / "survival_tcga.csv") as tmp:
        table.to_csv(tmp, index=False)
    cmd = f"python benchmarks/survival_tcga.py {args.command}"
    md = ["# Survival on TCGA BLCA / LUAD (MCAT genomic features, published 5-fold CV), RNA partly missing", "",
          f"Command: `OMP_NUM_THREADS=1 {cmd.strip()}`; torch threads 1; {os.cpu_count()} CPUs (shared); "
          f"torch {torch.__version__}; mdlprob {mdlprob.__version__}; wall time {args.wall_seconds / 60:.1f} min.", "",
          f"Settings: {args.cfg}. Methods and protocol: see the docstring of `benchmarks/survival_tcga.py`. "
          "Test-fold c-index, mean ± sd over the folds; columns: fraction of all patients whose RNA block is hidden.", ""]
    pub = pub[pub["cancer"].isin(table["cancer"])]
    if not pub.empty:
        md += ["## Published anchors (same splits, `tcga_mcat_sig/results/ICCV/*/cindex.csv`)", "",
               "SNN is the fair genomic-only comparison; AMIL / MCAT also use whole-slide images, which we do not.", "",
               markdown_table(pub.assign(c_index=[f"{m:.3f} ± {s:.3f}" for m, s in zip(pub["mean"], pub["sd"], strict=True)])
                         [["cancer", "method", "c_index"]].sort_values(["cancer", "method"])), ""]
    md += ["## Harrell's C", "", markdown_table(summary(table, "harrell_c")), "",
           "## Uno's C (truncated at the 90th percentile of training times)", "", markdown_table(summary(table, "uno_c")), ""]
    wide = table.dropna(subset=["width_with_rna"]) if "width_with_rna" in table else table.iloc[:0]
    if not wide.empty:
        w = wide.groupby(["cancer", "method", "missing_rna"])[["width_with_rna", "width_without_rna"]].mean()
        w["ratio_without_over_with"] = w["width_without_rna"] / w["width_with_rna"]
        md += ["## Mean width of the 90% risk interval, test patients with vs without RNA", "",
               "Each method on its own risk scale (compare within a row); ratio > 1: wider without RNA.", "",
               markdown_table(w.reset_index()), ""]
    sec = table.groupby(["cancer", "method"])["seconds"].sum().unstack("cancer")
    md += ["## Compute (seconds, all rates and folds; two-stage rows share one PoEVAE fit per rate)", "",
           markdown_table(sec.reset_index()), ""]
    with atomic_path(args.out / "survival_tcga.md") as tmp:
        tmp.write_text("\n".join(md))
    _figure(table, pub, args.out / "survival_tcga.png")


def _figure(table: pd.DataFrame, pub: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mdlprob.plotting import method_color

    cancers = list(dict.fromkeys(table["cancer"]))
    fig, axes = plt.subplots(1, len(cancers), figsize=(6.5 * len(cancers), 4.5), squeeze=False)
    methods = list(dict.fromkeys(table["method"]))
    for ax, cancer in zip(axes[0], cancers, strict=True):
        sub = table[table["cancer"] == cancer]
        for i, method in enumerate(methods):
            agg = sub[sub["method"] == method].groupby("missing_rna")["harrell_c"].agg(["mean", "std"])
            ax.errorbar(agg.index * 100 + (i - len(methods) / 2) * 0.6, agg["mean"], yerr=agg["std"], marker="o",
                        capsize=2, label=method, color=method_color(method))
        for j, (_, r) in enumerate(pub[pub["cancer"] == cancer].iterrows()):
            ax.axhline(r["mean"], ls=("--", ":", "-.")[j % 3], color="k", lw=0.9, label=r["method"])
        ax.axhline(0.5, color="grey", lw=0.5)
        ax.set(xlabel="% of patients without RNA", ylabel="test-fold Harrell's C (mean ± sd, 5 folds)", title=cancer)
    axes[0, -1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()

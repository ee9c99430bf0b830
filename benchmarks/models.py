"""Imputation, calibration, held-out likelihood and latent quality of every mdlprob model.

Scenarios (each scored on entries the model never saw):

* ``synthetic``: ``mdlprob.datasets.synthetic`` with every modality MCAR-missing at 0/25/50/75%;
  20% of observations are held out (not trained on); their protein is imputed from RNA +
  clinical and scored against the truth, their IWAE log-likelihood is computed on all their
  observed modalities, and a kNN classifier fit on training latents predicts their label;
* ``mixomics``: ``mixomics_breast`` (TCGA-BRCA mRNA, miRNA, protein); protein hidden for 30%
  of the training patients (the 70 test patients have none); imputed from mRNA + miRNA;
  kNN subtype accuracy of test patients from training-patient latents;
* ``citeseq``: ``citeseq_pbmc`` (ECCITE-seq, 500 cells; 2000 most variable genes + 49 ADT),
  ADT hidden for 20% of cells, imputed from RNA.

Count targets are scored with ``interval_coverage(..., discrete=True)`` (expected randomised
coverage of integer truth). Floors: the per-feature mean (intervals: mean ± z·sd of the observed values) and
scikit-learn's ``KNNImputer`` (no intervals). Count modalities are scored on log1p values.

Usage::

    python benchmarks/models.py --out benchmarks/results          # full (about 10 min, 2 cores)
    python benchmarks/models.py --quick --out /tmp/models_quick   # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import mdlprob
from mdlprob import metrics
from mdlprob._utils import atomic_path
from mdlprob.benchmark import markdown_table, provenance, provenance_lines
from mdlprob.benchmark._frame import dense_values
from mdlprob.data import hide_modality, setup_mudata, subset

Z90 = 1.6448536269514722
COUNT = ("nb", "zinb", "poisson")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--models", default=",".join(available_models()), help="comma-separated model class names")
    p.add_argument("--scenarios", default="synthetic,mixomics,citeseq")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny sizes and few epochs (smoke test)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for these small models)")
    p.add_argument("--data-dir", default=None)
    return p.parse_args(argv)


def available_models() -> list[str]:
    """Every registered model but those on a sample graph, which have their own benchmark (graph.py)."""
    return [name for name, info in mdlprob.models.all_models().items() if not info.sample_graph]


def build(name: str, mdata, quick: bool):
    cls = mdlprob.models.get_model(name).cls
    return cls(mdata, n_latent=4 if quick else 10, n_hidden=32 if quick else 128)


# ------------------------------------------------------------------------------------ scenarios
def synthetic_cases(quick: bool, seed: int):
    n = 300 if quick else 2500
    for rate in ((0.0, 0.5) if quick else (0.0, 0.25, 0.5, 0.75)):
        full = mdlprob.datasets.synthetic(n, missing={"rna": rate, "protein": rate, "clinical": rate},
                                          n_vars={"rna": 100, "protein": 20}, seed=seed)
        rng = np.random.default_rng(seed)
        test = np.zeros(n, dtype=bool)
        test[rng.permutation(n)[: n // 5]] = True
        truth, hidden = mdlprob.datasets.hidden_truth(full, "protein")
        yield {
            "scenario": "synthetic", "missing_rate": rate, "full": full, "test": test, "target": "protein",
            "given": ["rna", "clinical"], "likelihoods": {"rna": "nb", "protein": "nb", "clinical": "mixed"},
            "truth": truth, "label": full.obs["label"].to_numpy(),
        }


def mixomics_case(quick: bool, seed: int, data_dir):
    full = mdlprob.datasets.mixomics_breast(data_dir=data_dir)
    rng = np.random.default_rng(seed)
    idx = np.flatnonzero(np.asarray(full.obsmap["protein"]) > 0)
    hide = np.zeros(full.n_obs, dtype=bool)
    hide[rng.choice(idx, round(0.3 * idx.size), replace=False)] = True
    truth = dense_values(full, "protein")
    return {
        "scenario": "mixomics", "missing_rate": 0.3, "full": full, "test": (full.obs["split"] == "test").to_numpy(),
        "hide": hide, "target": "protein", "given": ["mrna", "mirna"], "truth": truth,
        "likelihoods": {"mrna": "gaussian", "mirna": "gaussian", "protein": "gaussian"},
        "label": full.obs["subtype"].astype(str).to_numpy(), "transductive": True,
    }


def citeseq_case(quick: bool, seed: int, data_dir):
    full = mdlprob.datasets.citeseq_pbmc(data_dir=data_dir, min_cells=1)
    rna = full.mod["rna"]
    X = rna.X.toarray()
    top = np.argsort(-np.log1p(X).var(0))[: 300 if quick else 2000]
    full = mdlprob.data.make_mudata({"rna": rna[:, np.sort(top)].copy(), "adt": full.mod["adt"].copy()})
    rng = np.random.default_rng(seed)
    hide = np.zeros(full.n_obs, dtype=bool)
    hide[rng.permutation(full.n_obs)[: full.n_obs // 5]] = True
    truth = dense_values(full, "adt")
    return {
        "scenario": "citeseq", "missing_rate": 0.2, "full": full, "test": np.zeros(full.n_obs, dtype=bool),
        "hide": hide, "target": "adt", "given": ["rna"], "truth": truth,
        "likelihoods": {"rna": "nb", "adt": "nb"}, "label": None, "transductive": True,
    }


# ------------------------------------------------------------------------------------ one cell
def score(case: dict, mean: np.ndarray, lower: np.ndarray | None, upper: np.ndarray | None,
          rows: np.ndarray, samples: np.ndarray | None) -> dict:
    """Metrics on the hidden entries; ``samples`` ``(S, n_obs, n_vars)`` give the CRPS (a point
    prediction's CRPS is its mean absolute error)."""
    truth = case["truth"][rows]
    mask = ~np.isnan(truth)
    count = case["likelihoods"][case["target"]] in COUNT
    tf = np.log1p if count else (lambda a: a)
    draws = mean[rows][None] if samples is None else samples[:, rows]
    out = {
        "pearson_r": _finite_mean(metrics.pearson_per_feature(tf(truth), tf(mean[rows]), mask=mask)),
        "rmse": metrics.rmse(tf(truth), tf(mean[rows]), mask=mask),
        "coverage_90": np.nan if lower is None else metrics.interval_coverage(
            truth, lower[rows], upper[rows], mask=mask, discrete=count),
        "crps": metrics.crps(tf(truth), tf(draws), mask=mask),
    }
    return out


def _finite_mean(values: np.ndarray) -> float:
    """Mean over the finite entries (per-feature r is NaN for constant predictions); NaN if none."""
    finite = np.isfinite(values)
    return float(values[finite].mean()) if finite.any() else float("nan")


def run_model(name: str, case: dict, quick: bool) -> dict:
    full, test = case["full"], case["test"]
    if case.get("transductive"):
        train = hide_modality(full, case["target"], case["hide"])
        eval_rows = case["hide"]
    else:
        train = subset(full, ~test)
        eval_rows = test
    setup_mudata(train, likelihoods=case["likelihoods"])
    mdlprob.settings.seed = 0
    model = build(name, train, quick)
    start = time.perf_counter()
    model.train(max_epochs=5 if quick else 200, batch_size=128, lr=2e-3, early_stopping=not quick,
                patience=20, progress_bar=False)
    seconds = time.perf_counter() - start
    target_view = full if not case.get("transductive") else train
    imp = model.impute(target_view, case["target"], given=case["given"], n_samples=200)
    row = {"method": name, "train_seconds": round(seconds, 2), "epochs": len(model.history_["train_loss"])}
    draws = model.sample_predictive(target_view, case["target"], given=case["given"], n_samples=100)
    row.update(score(case, imp.layers["mean"], imp.layers["q05"], imp.layers["q95"], eval_rows, draws))
    ll_rows = test if test.any() else eval_rows
    ll_view = full if not case.get("transductive") else train
    ll = model.log_likelihood(ll_view, n_samples=20 if quick else 100)
    row["heldout_loglik"] = float(ll[ll_rows].mean())
    row["knn_label_acc"] = knn_accuracy(model.get_latent(ll_view), case["label"], test)
    return row


def floors(case: dict) -> list[dict]:
    """Per-feature mean (with mean ± z·sd intervals) and KNNImputer on the conditioning modalities."""
    from sklearn.impute import KNNImputer

    full, target = case["full"], case["target"]
    rows = case["hide"] if case.get("transductive") else case["test"]
    seen = (np.asarray(full.obsmap[target]) > 0) & ~rows
    count = case["likelihoods"][target] in COUNT
    tf, inv = (np.log1p, np.expm1) if count else ((lambda a: a), (lambda a: a))
    truth = case["truth"]
    mu, sd = np.nanmean(tf(truth[seen]), 0), np.nanstd(tf(truth[seen]), 0, ddof=1)
    shape = truth.shape
    normal = inv(mu + sd * np.random.default_rng(0).standard_normal((100, *shape)))
    out = [{"method": "feature_mean", **score(case, np.broadcast_to(inv(mu), shape), np.broadcast_to(
        inv(mu - Z90 * sd), shape), np.broadcast_to(inv(mu + Z90 * sd), shape), rows, normal)}]
    blocks = []
    for mod in [*case["given"], target]:
        X = dense_values(full, mod)
        if mod == target:
            X[~seen] = np.nan
        if case["likelihoods"][mod] in COUNT:
            X = np.log1p(X)
        if "mdlprob_type" in full.mod[mod].var:
            X = X[:, (full.mod[mod].var["mdlprob_type"] != "categorical").to_numpy()]
        loc, scale = np.nanmean(X, 0), np.nanstd(X, 0)
        scale = np.where(scale > 0, scale, 1.0)
        blocks.append((X - loc) / scale)
    filled = KNNImputer(n_neighbors=15, keep_empty_features=True).fit_transform(np.hstack(blocks))
    knn = inv(filled[:, -blocks[-1].shape[1]:] * scale + loc)
    out.append({"method": "knn_imputer", **score(case, knn, None, None, rows, None)})
    return out



def knn_accuracy(latent: np.ndarray, labels, test: np.ndarray) -> float:
    if labels is None or not test.any():
        return float("nan")
    from sklearn.neighbors import KNeighborsClassifier

    clf = KNeighborsClassifier(n_neighbors=15).fit(latent[~test], labels[~test])
    return float((clf.predict(latent[test]) == labels[test]).mean())


# ------------------------------------------------------------------------------------ driver
def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    models = [m for m in args.models.split(",") if m]
    cases = []
    scenarios = args.scenarios.split(",")
    if "synthetic" in scenarios:
        cases += list(synthetic_cases(args.quick, args.seed))
    for name, fn in (("mixomics", mixomics_case), ("citeseq", citeseq_case)):
        if name in scenarios:
            try:
                cases.append(fn(args.quick, args.seed, args.data_dir))
            except FileNotFoundError as err:
                print(f"skipping {name}: {err}", file=sys.stderr)
    rows = []
    for case in cases:
        meta = {"scenario": case["scenario"], "missing_rate": case["missing_rate"]}
        for row in floors(case):
            rows.append({**meta, **row})
        for name in models:
            try:
                rows.append({**meta, **run_model(name, case, args.quick)})
            except Exception as err:  # a failing model is a row, not a crash of the benchmark
                rows.append({**meta, "method": name, "error": f"{type(err).__name__}: {err}"})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    write(table, args)
    return table


def write(table: pd.DataFrame, args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    record = provenance(["python", "benchmarks/models.py", *sys.argv[1:]])
    _atomic(args.out / "models.csv", table.to_csv(index=False))
    _atomic(args.out / "models.provenance.json", json.dumps(record, indent=1))
    cols = [c for c in ("scenario", "missing_rate", "method", "pearson_r", "rmse", "coverage_90", "crps", "heldout_loglik",
                        "knn_label_acc", "train_seconds", "error") if c in table]
    md = ["# Model comparison: imputation, calibration, held-out likelihood, latent quality", "",
          f"Command: `python benchmarks/models.py {' '.join(sys.argv[1:])}`; torch threads {args.threads}; "
          f"{os.cpu_count()} CPUs; torch {torch.__version__}; mdlprob {mdlprob.__version__}.", "",
          "Imputation metrics on entries hidden from training (log1p scale for counts); `coverage_90`: "
          "fraction of hidden entries inside the 90% predictive interval; `crps`: sample CRPS of 100 "
          "predictive draws (log1p scale for counts; the mean floor draws from N(mean, sd), KNN's is its "
          "absolute error); `heldout_loglik`: IWAE "
          "estimate per observation (nats); `knn_label_acc`: 15-NN on training latents.", "",
          markdown_table(table[cols]), "", "## Provenance", "", *provenance_lines(record)]
    _atomic(args.out / "models.md", "\n".join(md) + "\n")
    _figure(table, args.out / "models.png")


def _figure(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    syn = table[table["scenario"] == "synthetic"]
    if syn.empty:
        return
    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    from mdlprob.plotting import method_colors

    colors = method_colors(sorted(syn["method"].unique()))
    for ax, metric in zip(axes, ("pearson_r", "rmse", "coverage_90", "crps"), strict=True):
        for method, grp in syn.groupby("method"):
            if metric in grp and grp[metric].notna().any():
                ax.plot(grp["missing_rate"], grp[metric], marker="o", label=method, color=colors[method])
        ax.set(xlabel="MCAR missing rate per modality", ylabel=metric, title=f"synthetic: {metric}")
    axes[2].axhline(0.9, color="k", ls="--", lw=0.8)
    handles = [plt.Line2D([], [], color=c, marker="o", label=m) for m, c in colors.items()]
    axes[1].legend(handles=handles, fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def _atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


if __name__ == "__main__":
    main()

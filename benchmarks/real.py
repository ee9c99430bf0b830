"""Real-data scoreboard: mdlprob's recommended configuration against the strongest simple baseline.

Every comparison is made **in the same run, on the same folds and masks**; every baseline is
tuned by cross-validation inside the training rows as ``../shared/BASELINES.md`` prescribes.

Tasks (rows of the scoreboard: task x data set x missing rate):

* ``survival`` -- TCGA BLCA and LUAD (``tcga_survival(source="mcat")``: RNA z-scores as
  ``sign(x) log(1 + |x|)``, CNV, age + sex), overall survival, the published MCAT 5 folds
  (train on ``train``, score on ``val``). For each rate in 0/25/50/75% a seeded random subset
  of all patients (nested across rates; mask seeds ``--seeds``) loses the RNA block.
  Baselines: Cox on age + sex; Coxnet (``l1_ratio`` and ``alpha`` by inner 5-fold CV) on all
  features, RNA of absent patients mean- or KNN(10)-imputed; the ``mdlprob.fusion`` early,
  late, intermediate (Kronecker, attention) fusion nets. Metrics: Harrell's C, integrated
  Brier score (IBS, ten times between the 10% and 80% quantiles of the test times).
* ``classification`` -- mixOmics breast.TCGA subtypes: train on the 150 training patients
  (mRNA, miRNA, protein), predict the 70 test patients (no protein); also with a seeded 50% of
  the test patients lacking miRNA. Baselines: ``LogisticRegressionCV`` on mRNA, on mRNA +
  miRNA (mean-filled), the fusion nets. Metrics: accuracy, macro-F1, ECE.
* ``imputation`` -- mixOmics protein hidden for 30% of the 150 training patients (seeds
  ``--seeds``), predicted from mRNA + miRNA; ECCITE-seq PBMC ADT hidden for 20% of the 500
  cells, predicted from RNA (2,000 most variable genes). Baselines: ``RidgeCV`` (leave-one-out,
  one alpha per target; Gaussian predictive with the leave-one-out residual sd), KNN (k by
  5-fold CV; its neighbours form the predictive sample), MOFA+ (mofapy2, mixOmics). CITE-seq
  baselines work on the 30 principal components of scaled log-normalised RNA. Metrics:
  per-feature Pearson r on the hidden rows (log1p scale for counts), 90% interval coverage,
  CRPS.

mdlprob rows are inductive for survival and classification (the model is fitted on the
training fold only, then heads and the model are applied to unseen patients with whatever
views they have) and transductive for imputation (the model sees the other views of the rows
whose target is hidden, as the KNN and ridge baselines do at prediction).

Scoreboard: per row, the strongest baseline (best mean of the primary metric, chosen after
the fact: this favours the baseline), mdlprob's recommended configuration, and their paired
difference with a 90% bootstrap interval over the paired units (folds x mask seeds for
survival; test patients for classification; features x mask seeds for imputation). Verdict:
``better`` if the interval lies above 0, ``worse`` if below, else ``tied``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/real.py --out benchmarks/results
    OMP_NUM_THREADS=1 python benchmarks/real.py --quick --tasks classification --out /tmp/real_quick
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import mudata
import numpy as np
import pandas as pd
import torch

import mdlprob
from mdlprob import metrics
from mdlprob._utils import atomic_path
from mdlprob.benchmark import markdown_table
from mdlprob.benchmark._frame import dense_values
from mdlprob.data import hide_modality, setup_mudata, subset

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _real_baselines as base  # noqa: E402
from _real_recommended import RECOMMENDED, impute_recommended, latent_head  # noqa: E402

TASKS = ("survival", "classification", "imputation")
SURVIVAL_LIKELIHOODS = {"rna": "gaussian", "cnv": "gaussian", "clinical": "mixed"}
MIXOMICS_LIKELIHOODS = {"mrna": "gaussian", "mirna": "gaussian", "protein": "gaussian"}
PRIMARY = {"survival": ("harrell_c", 1), "classification": ("accuracy", 1), "imputation": ("pearson_r", 1)}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--seeds", default=None, help="mask seeds (default 0 for survival; 0,1,2 otherwise)")
    p.add_argument("--cancers", default="BLCA,LUAD")
    p.add_argument("--rates", default="0,0.25,0.5,0.75")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="smoke test: 2 folds, rates 0 and 0.5, tiny models")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--impute-datasets", default="mixomics,citeseq", help="imputation data sets to run")
    p.add_argument("--impute-scoring", default="loglik", choices=["loglik", "pearson"],
                   help="criterion of the imputation recipe's search (ablation; the recommended one is loglik)")
    p.add_argument("--impute-start", default="none", choices=["none", "defaults"],
                   help="ablation: start the search from the package defaults (deep and linear decoders)")
    args = p.parse_args(argv)
    args.tasks = [t for t in args.tasks.split(",") if t]
    unknown = set(args.tasks) - set(TASKS)
    if unknown:
        p.error(f"--tasks: unknown {sorted(unknown)}; choose from {TASKS}")
    args.rates = [float(r) for r in ("0,0.5" if args.quick else args.rates).split(",")]
    args.seeds = None if args.seeds is None else [int(s) for s in args.seeds.split(",")]
    if args.quick:
        args.folds = min(args.folds, 2)
    args.fusion_epochs = 5 if args.quick else 100
    return args


def _subset(X: dict, presence: dict, rows: np.ndarray) -> tuple[dict, dict]:
    """Rows of the fusion inputs and presence masks."""
    return {m: v[rows] for m, v in X.items()}, {m: v[rows] for m, v in presence.items()}


def _rows(meta: dict, results: dict[str, dict]) -> list[dict]:
    return [{**meta, "method": name, **res} for name, res in results.items()]


# ------------------------------------------------------------------------------------ survival
def load_tcga(cancer: str, data_dir) -> mdlprob.datasets.tcga_survival:
    mdata = mdlprob.datasets.tcga_survival(cancer, source="mcat", data_dir=data_dir)
    rna = mdata.mod["rna"]
    rna.X = (np.sign(rna.X) * np.log1p(np.abs(rna.X))).astype(np.float32)
    return mdata


def nested_mask(n_obs: int, rate: float, seed: int) -> np.ndarray:
    """The first ``rate * n_obs`` of one seeded permutation: masks are nested across rates."""
    hide = np.zeros(n_obs, dtype=bool)
    hide[np.random.default_rng(seed).permutation(n_obs)[: round(rate * n_obs)]] = True
    return hide


def eval_times(y_train, y_test) -> np.ndarray:
    t_test = y_test["time"]
    lo = np.quantile(t_test, 0.1)
    hi = min(np.quantile(t_test, 0.8), y_train["time"][y_train["event"]].max(), t_test.max() - 1e-6)
    return np.unique(np.linspace(lo, hi, 10)) if hi > lo else np.array([lo])


def survival_scores(y_train, y_test, risk, surv) -> dict:
    out = {"harrell_c": metrics.harrell_c(y_test["event"], y_test["time"], risk)}
    if surv is not None:
        times = eval_times(y_train, y_test)
        out["ibs"] = metrics.integrated_brier_score(y_train, y_test, np.clip(surv(times), 0, 1), times)
    return out


def survival_fold(mdata, raw, clin, y, tr, te, args, seed: int) -> dict[str, dict]:
    from mdlprob.fusion import EarlyFusion, IntermediateFusion, LateFusion, fusion_inputs

    res = {}
    start = time.perf_counter()
    risk, fn, clin_te = base.cox_clinical(clin[tr], y[tr], clin[te])
    surv = lambda t: base.step_functions_at(fn(clin_te), t)  # noqa: E731
    res["clinical Cox (age + sex)"] = {**survival_scores(y[tr], y[te], risk, surv), "seconds": time.perf_counter() - start}
    for how in ("mean", "knn"):
        start = time.perf_counter()
        Xtr, Xte = base.impute_features(raw[tr], raw[te], how)
        risk, fn, params = base.coxnet_cv(Xtr, y[tr], Xte, seed=seed)
        res[f"Coxnet, {how}-imputed"] = {**survival_scores(y[tr], y[te], risk, lambda t, X=Xte, f=fn: base.step_functions_at(f(X), t)),
                                        "seconds": time.perf_counter() - start}
    X, presence = fusion_inputs(mdata)
    opts = {"task": "survival", "max_epochs": args.fusion_epochs, "random_state": seed}
    for name, est in (("early fusion", EarlyFusion(**opts)), ("late fusion", LateFusion(**opts)),
                      ("intermediate fusion (Kronecker)", IntermediateFusion(fusion="kronecker", **opts)),
                      ("intermediate fusion (attention)", IntermediateFusion(fusion="attention", **opts))):
        start = time.perf_counter()
        (X_tr, p_tr), (X_te, p_te) = _subset(X, presence, tr), _subset(X, presence, te)
        est.fit(X_tr, y[tr], presence=p_tr)
        risk = est.predict_risk(X_te, presence=p_te)
        surv = lambda t, e=est, X_te=X_te, p_te=p_te: e.predict_survival_function(X_te, t, presence=p_te)  # noqa: E731
        res[name] = {**survival_scores(y[tr], y[te], risk, surv), "seconds": time.perf_counter() - start}
    start = time.perf_counter()
    est = latent_head("survival", subset(mdata, tr), y[tr], seed=seed, quick=args.quick)
    test = subset(mdata, te)
    risk, lower, upper = est.predict_risk(test, return_interval=True)
    scores = survival_scores(y[tr], y[te], risk, lambda t: est.predict_survival_function(test, t))
    has_rna = presence["rna"][te]
    width = upper - lower
    scores["width_ratio"] = float(width[~has_rna].mean() / width[has_rna].mean()) if (~has_rna).any() and has_rna.any() else np.nan
    res["mdlprob"] = {**scores, "seconds": time.perf_counter() - start}
    return res


def run_survival(args) -> list[dict]:
    from sksurv.util import Surv

    rows = []
    for cancer in [c for c in args.cancers.split(",") if c]:
        full = load_tcga(cancer, args.data_dir)
        y = Surv.from_arrays(full.obs["event"].to_numpy() == 1, full.obs["time"].to_numpy())
        clinical = full.mod["clinical"]
        clin = np.column_stack([dense_values(full, "clinical")[:, list(clinical.var_names).index(c)]
                                for c in ("age", "is_female")])
        splits = [((full.obs[f"fold_{i}"] == "train").to_numpy(), (full.obs[f"fold_{i}"] == "val").to_numpy())
                  for i in range(args.folds)]
        for seed in args.seeds or [0]:
            for rate in args.rates:
                hide = nested_mask(full.n_obs, rate, seed)
                mdata = hide_modality(full, "rna", hide) if hide.any() else full.copy()
                setup_mudata(mdata, likelihoods=SURVIVAL_LIKELIHOODS)
                rna = np.where(hide[:, None], np.nan, dense_values(full, "rna"))
                raw = np.hstack([rna, dense_values(full, "cnv"), clin])
                for k, (tr, te) in enumerate(splits):
                    meta = {"task": "survival", "dataset": f"TCGA-{cancer}", "missing_rate": rate, "seed": seed,
                            "unit": f"s{seed}f{k}", "setting": "inductive"}
                    rows += _rows(meta, survival_fold(mdata, raw, clin, y, tr, te, args, seed))
                    _progress(rows)
    return rows


# ------------------------------------------------------------------------------------ classification
def run_classification(args) -> list[dict]:
    from mdlprob.fusion import EarlyFusion, IntermediateFusion, LateFusion, fusion_inputs

    full = mdlprob.datasets.mixomics_breast(data_dir=args.data_dir)
    test = (full.obs["split"] == "test").to_numpy()
    labels = full.obs["subtype"].astype(str).to_numpy()
    classes = np.unique(labels)
    y = np.searchsorted(classes, labels)
    scenarios = [("no protein", None)] + [(f"no protein, 50% no miRNA (seed {s})", s) for s in (args.seeds or [0, 1, 2])]
    if args.quick:
        scenarios = scenarios[:2]
    rows = []
    train = subset(full, ~test)
    setup_mudata(train, likelihoods=MIXOMICS_LIKELIHOODS)
    start = time.perf_counter()
    est = latent_head("classification", train, labels[~test], seed=0, quick=args.quick)
    fit_seconds = time.perf_counter() - start
    for scenario, seed in scenarios:
        hide = np.zeros(full.n_obs, dtype=bool)
        if seed is not None:
            idx = np.flatnonzero(test)
            hide[np.random.default_rng(seed).choice(idx, idx.size // 2, replace=False)] = True
        view = hide_modality(full, "mirna", hide) if hide.any() else full.copy()
        setup_mudata(view, likelihoods=MIXOMICS_LIKELIHOODS)
        res = {}
        mrna, mirna = dense_values(view, "mrna"), dense_values(view, "mirna")
        for name, X in (("logistic regression, mRNA", mrna), ("logistic regression, mRNA + miRNA", np.hstack([mrna, mirna]))):
            start = time.perf_counter()
            cls, proba = base.logistic_cv(X[~test], labels[~test], X[test])
            res[name] = {"proba": proba[:, np.searchsorted(cls, classes)], "seconds": time.perf_counter() - start}
        X, presence = fusion_inputs(view)
        (X_tr, p_tr), (X_te, p_te) = _subset(X, presence, ~test), _subset(X, presence, test)
        opts = {"task": "classification", "max_epochs": 5 if args.quick else 200, "random_state": 0}
        for name, fusion in (("early fusion", EarlyFusion(**opts)), ("late fusion", LateFusion(**opts)),
                             ("intermediate fusion (Kronecker)", IntermediateFusion(fusion="kronecker", **opts))):
            start = time.perf_counter()
            fusion.fit(X_tr, labels[~test], presence=p_tr)
            proba = fusion.predict_proba(X_te, presence=p_te)
            res[name] = {"proba": proba[:, np.searchsorted(fusion.classes_, classes)], "seconds": time.perf_counter() - start}
        start = time.perf_counter()
        proba, lower, upper = est.predict_proba(subset(view, test), return_interval=True)
        pick = proba.argmax(1)
        width = (upper - lower)[np.arange(len(pick)), pick]
        lacks = hide[test]
        res["mdlprob"] = {"proba": proba[:, np.searchsorted(est.head_.classes_, classes)],
                          "seconds": fit_seconds + time.perf_counter() - start,
                          "width_ratio": float(width[lacks].mean() / width[~lacks].mean()) if lacks.any() else np.nan}
        meta = {"task": "classification", "dataset": "mixOmics BRCA", "missing_rate": 0.5 if seed is not None else 0.0,
                "scenario": scenario, "seed": -1 if seed is None else seed, "setting": "inductive"}
        for name, r in res.items():
            proba = r.pop("proba")
            for i, (yt, p) in enumerate(zip(y[test], proba, strict=True)):  # one unit per test patient
                rows.append({**meta, "method": name, "unit": f"p{i}", "correct": float(p.argmax() == yt),
                             "label": int(yt), **{f"proba_class{c}": float(v) for c, v in enumerate(p)}, **r})
        _progress(rows)
    return rows


# ------------------------------------------------------------------------------------ imputation
def imputation_rows(meta: dict, truth: np.ndarray, hide: np.ndarray, preds: dict, count: bool) -> list[dict]:
    """One row per (method, hidden feature): r; coverage and CRPS where a predictive exists."""
    tf = np.log1p if count else (lambda a: a)
    rows = []
    for name, p in preds.items():
        t = truth[hide]
        r = metrics.pearson_per_feature(tf(t), tf(p["mean"][hide]))
        cov = crps = None
        if "lower" in p:
            inside = (t >= p["lower"][hide]) & (t <= p["upper"][hide])
            cov = inside.mean(0)
        if "samples" in p:
            crps = np.array([metrics.crps(tf(t[:, j]), tf(p["samples"][:, hide][:, :, j])) for j in range(t.shape[1])])
        config = str(p["config"]) if "config" in p else None
        for j in range(t.shape[1]):
            rows.append({**meta, "method": name, "unit": f"{meta['seed']}:{j}", "pearson_r": float(r[j]),
                         "coverage_90": None if cov is None else float(cov[j]),
                         "crps": None if crps is None else float(crps[j]), "seconds": p.get("seconds"),
                         "config": config})
    return rows


def gaussian_prediction(mean, sd, rng, count: bool) -> dict:
    """A Gaussian predictive (on log1p for counts): mean, 90% bounds and 100 draws on the data scale."""
    inv = np.expm1 if count else (lambda a: a)
    draws = mean[None] + sd[None] * rng.standard_normal((100, *mean.shape))
    return {"mean": inv(mean), "lower": inv(mean - base.Z90 * sd), "upper": inv(mean + base.Z90 * sd),
            "samples": np.clip(inv(draws), 0, None) if count else draws}


def depth_r2(view, ensemble, seed: int) -> dict:
    """R^2 of each cell's log RNA depth on the latent: the tuned model's first member, and the same
    configuration with ``library_size=False`` (the earlier count model)."""
    from sklearn.linear_model import LinearRegression

    depth = np.log(dense_values(view, "rna").sum(1))
    out = {}
    member = ensemble.members_[0]
    out["depth_r2_latent"] = LinearRegression().fit(lat := member.get_latent(view), depth).score(lat, depth)
    legacy = view.copy()
    setup_mudata(legacy, likelihoods={"rna": "nb", "adt": "nb"}, library_size=False)
    mdlprob.settings.seed = seed
    old = type(member)(legacy, **ensemble.model_kwargs)
    old.train(**ensemble.train_kwargs_)
    out["depth_r2_latent_without_library"] = LinearRegression().fit(lat := old.get_latent(legacy), depth).score(lat, depth)
    return out


def run_imputation(args) -> list[dict]:
    rows = []
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    datasets = getattr(args, "impute_datasets", "mixomics,citeseq").split(",")
    if "mixomics" in datasets:
        rows += _impute_mixomics(args, seeds)
    if "citeseq" in datasets:
        rows += _impute_citeseq(args, seeds)
    return rows


def _impute_mixomics(args, seeds) -> list[dict]:
    rows = []
    full = mdlprob.datasets.mixomics_breast(data_dir=args.data_dir)
    truth = dense_values(full, "protein")
    X = np.hstack([dense_values(full, "mrna"), dense_values(full, "mirna")])
    has = np.asarray(full.obsmap["protein"]) > 0
    for seed in seeds:
        rng = np.random.default_rng(seed)
        hide = np.zeros(full.n_obs, dtype=bool)
        hide[rng.choice(np.flatnonzero(has), round(0.3 * has.sum()), replace=False)] = True
        seen = has & ~hide
        preds = {}
        start = time.perf_counter()
        mean, sd = base.ridge_gaussian(X[seen], truth[seen], X)
        preds["ridge (LOO alpha per protein)"] = {**gaussian_prediction(mean, sd, rng, False), "seconds": time.perf_counter() - start}
        start = time.perf_counter()
        Xs = np.vstack(base.standardise(X[seen], X, clip=np.inf))[seen.sum():]
        mean, neigh, _ = base.knn_cv(Xs[seen], truth[seen], Xs, seed=seed)
        preds["KNN (k by CV)"] = {"mean": mean, "samples": neigh, "seconds": time.perf_counter() - start}
        if not args.quick:
            start = time.perf_counter()
            views = {"mrna": dense_values(full, "mrna"), "mirna": dense_values(full, "mirna"),
                     "protein": np.where(seen[:, None], truth, np.nan)}
            mean, sd = base.mofa_plus(views, "protein", seed=seed)
            preds["MOFA+ (mofapy2)"] = {**gaussian_prediction(mean, np.maximum(sd, 1e-6), rng, False),
                                        "seconds": time.perf_counter() - start}
        view = hide_modality(full, "protein", hide)
        setup_mudata(view, likelihoods=MIXOMICS_LIKELIHOODS)
        start = time.perf_counter()
        preds["mdlprob"] = impute_recommended(view, "protein", ["mrna", "mirna"], seed=seed, quick=args.quick,
                                              scoring=getattr(args, "impute_scoring", "loglik"),
                                              start=getattr(args, "impute_start", "none"))
        preds["mdlprob"]["seconds"] = time.perf_counter() - start
        preds["mdlprob"].pop("model")
        meta = {"task": "imputation", "dataset": "mixOmics protein", "missing_rate": 0.3, "seed": seed,
                "setting": "transductive"}
        rows += imputation_rows(meta, truth, hide, preds, count=False)
        _progress(rows)
    return rows


def _impute_citeseq(args, seeds) -> list[dict]:
    rows = []
    cite = mdlprob.datasets.citeseq_pbmc(data_dir=args.data_dir, min_cells=1)
    counts = cite.mod["rna"].X.toarray()
    lognorm = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4)
    top = np.sort(np.argsort(-lognorm.var(0))[: 300 if args.quick else 2000])
    cite = mdlprob.data.make_mudata({"rna": cite.mod["rna"][:, top].copy(), "adt": cite.mod["adt"].copy()})
    adt = dense_values(cite, "adt")
    from sklearn.decomposition import PCA

    scaled = np.clip((lognorm[:, top] - lognorm[:, top].mean(0)) / (lognorm[:, top].std(0) + 1e-8), -10, 10)
    pcs = PCA(30, random_state=0).fit_transform(scaled)
    for seed in seeds:
        rng = np.random.default_rng(seed)
        hide = np.zeros(cite.n_obs, dtype=bool)
        hide[rng.permutation(cite.n_obs)[: cite.n_obs // 5]] = True
        preds = {}
        start = time.perf_counter()
        mean, neigh, _ = base.knn_cv(pcs[~hide], np.log1p(adt[~hide]), pcs, seed=seed)
        preds["KNN on 30 PCs (k by CV)"] = {"mean": np.expm1(mean), "samples": np.expm1(neigh), "seconds": time.perf_counter() - start}
        start = time.perf_counter()
        mean, sd = base.ridge_gaussian(pcs[~hide], np.log1p(adt[~hide]), pcs)
        preds["ridge on 30 PCs"] = {**gaussian_prediction(mean, sd, rng, True), "seconds": time.perf_counter() - start}
        view = hide_modality(cite, "adt", hide)
        setup_mudata(view, likelihoods={"rna": "nb", "adt": "nb"})
        start = time.perf_counter()
        preds["mdlprob"] = impute_recommended(view, "adt", ["rna"], seed=seed, quick=args.quick,
                                              scoring=getattr(args, "impute_scoring", "loglik"),
                                              start=getattr(args, "impute_start", "none"))
        preds["mdlprob"]["seconds"] = time.perf_counter() - start
        depth = depth_r2(view, preds["mdlprob"].pop("model"), seed)
        meta = {"task": "imputation", "dataset": "CITE-seq ADT", "missing_rate": 0.2, "seed": seed,
                "setting": "transductive", **depth}
        rows += imputation_rows(meta, adt, hide, preds, count=True)
        _progress(rows)
    return rows


# ------------------------------------------------------------------------------------ scoreboard
def _bootstrap(diff: np.ndarray, rng: np.random.Generator, n_boot: int = 2000) -> tuple[float, float]:
    means = diff[rng.integers(diff.size, size=(n_boot, diff.size))].mean(1)
    return tuple(float(q) for q in np.quantile(means, [0.05, 0.95]))


def scoreboard(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, data set, missing rate / scenario): strongest baseline vs mdlprob."""
    rng = np.random.default_rng(0)
    out = []
    keys = ["task", "dataset", "missing_rate"] + (["scenario"] if "scenario" in table else [])
    for key, part in table.groupby(keys, sort=False, dropna=False):
        task = key[0]
        metric = {"classification": "correct"}.get(task, PRIMARY[task][0])
        means = part.groupby("method")[metric].mean()
        baselines = means.drop("mdlprob", errors="ignore")
        if "mdlprob" not in means or baselines.empty:
            continue
        best = baselines.idxmax()
        a = part[part["method"] == "mdlprob"].set_index("unit")[metric]
        b = part[part["method"] == best].set_index("unit")[metric]
        units = a.index.intersection(b.index)
        diff = (a[units] - b[units]).to_numpy(dtype=float)
        diff = diff[np.isfinite(diff)]
        lo, hi = _bootstrap(diff, rng)
        row = dict(zip(keys, key, strict=True))
        row.update({"strongest baseline": best, "baseline": means[best], "mdlprob": means["mdlprob"],
                    "difference": float(diff.mean()), "90% interval": f"[{lo:+.3f}, {hi:+.3f}]",
                    "verdict": "better" if lo > 0 else ("worse" if hi < 0 else "tied"),
                    "setting": part["setting"].iloc[0]})
        row.update(_calibration(task, part))
        out.append(row)
    return pd.DataFrame(out)


def _calibration(task: str, part: pd.DataFrame) -> dict:
    mine = part[part["method"] == "mdlprob"]
    if task == "survival":
        return {"IBS mdlprob / best baseline IBS": f"{mine['ibs'].mean():.3f} / "
                f"{part[part['method'] != 'mdlprob'].groupby('method')['ibs'].mean().min():.3f}",
                "interval width without/with RNA": f"{mine['width_ratio'].mean():.2f}"}
    if task == "classification":
        def ece(rows: pd.DataFrame) -> float:
            proba = rows[[c for c in rows if c.startswith("proba_class")]].to_numpy(dtype=float)
            return metrics.expected_calibration_error(rows["label"].to_numpy(), proba)
        return {"ECE mdlprob / best baseline ECE": f"{ece(mine):.3f} / "
                f"{min(ece(g) for n, g in part.groupby('method') if n != 'mdlprob'):.3f}"}
    cov = mine["coverage_90"].astype(float).mean()
    crps_base = part[part["method"] != "mdlprob"].groupby("method")["crps"].mean().dropna()
    out = {"coverage 90% (mdlprob)": f"{cov:.3f}",
           "CRPS mdlprob / best baseline CRPS": f"{mine['crps'].astype(float).mean():.3f} / {crps_base.min():.3f}"}
    if "depth_r2_latent" in part and part["depth_r2_latent"].notna().any():
        out["depth R2 of latent (library / none)"] = (f"{part['depth_r2_latent'].mean():.2f} / "
                                                      f"{part['depth_r2_latent_without_library'].mean():.2f}")
    return out


def _progress(rows: list[dict]) -> None:
    last = rows[-1]
    print(f"[{time.strftime('%H:%M:%S')}] {last['task']} {last['dataset']} rate={last['missing_rate']} "
          f"seed={last['seed']}: {len(rows)} rows", file=sys.stderr, flush=True)


def write(table: pd.DataFrame, board: pd.DataFrame, runs: dict, args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out / "real.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(args.out / "real.json") as tmp:
        Path(tmp).write_text(json.dumps(runs, indent=1))
    lines = ["# Real-data scoreboard: mdlprob's recommended configuration vs the strongest baseline", "",
             f"{os.cpu_count()} CPUs (shared), torch threads 1, mdlprob {mdlprob.__version__}. Runs:", "",
             *[f"- {task}: `{r['command']}` ({r['date']}, torch {r['torch']}, {r['minutes']} min)"
               for task, r in runs.items()], "",
             "Protocol: the docstring of `benchmarks/real.py`. Recommended configurations: "
             "`benchmarks/_real_recommended.py`.", "",
             markdown_table(board.round(3)), "",
             "## Every method (mean of the primary metric over paired units)", ""]
    for task, part in table.groupby("task", sort=False):
        metric = {"classification": "correct"}.get(task, PRIMARY[task][0])
        keys = ["dataset", "missing_rate"] + (["scenario"] if task == "classification" else [])
        wide = part.groupby([*keys, "method"], dropna=False)[metric].mean().unstack("method")
        lines += [f"### {task} ({'accuracy' if metric == 'correct' else metric})", "", markdown_table(wide.round(3).reset_index()), ""]
    lines += ["## Recommended configurations", ""] + [f"- `{k}`: {v}" for k, v in RECOMMENDED.items()]
    with atomic_path(args.out / "real.md") as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    _figure(board, args.out / "real.png")


def _figure(board: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.dataset} {r.missing_rate:g}" + (f" {r.scenario}" if isinstance(getattr(r, "scenario", None), str) else "")
              for r in board.itertuples()]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(board) + 1))
    lo_hi = np.array([[float(v) for v in s.strip("[]").split(",")] for s in board["90% interval"]])
    ax.errorbar(board["difference"], np.arange(len(board)), xerr=np.abs(lo_hi.T - board["difference"].to_numpy()),
                fmt="o", color="k")
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(np.arange(len(board)), labels, fontsize=7)
    ax.set_xlabel("mdlprob minus strongest baseline (C, accuracy or r), 90% interval")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    args = parse_args(argv)
    args.command = " ".join(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(1)
    mudata.set_options(pull_on_update=False)
    mdlprob.settings.progress_bar = False
    rows, mine = [], {}
    for task in args.tasks:
        start = time.perf_counter()
        rows += {"survival": run_survival, "classification": run_classification, "imputation": run_imputation}[task](args)
        mine[task] = {"command": f"OMP_NUM_THREADS=1 python benchmarks/real.py {args.command}",
                      "minutes": round((time.perf_counter() - start) / 60, 1),
                      "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__}
        others = _previous_runs(args.out, exclude=args.tasks)  # re-read: another run may have written meanwhile
        table = pd.concat([others["table"], pd.DataFrame(rows)], ignore_index=True)
        write(table, scoreboard(table), {**others["tasks"], **mine}, args)
    return pd.DataFrame(rows)


def _previous_runs(out: Path, *, exclude: Sequence[str]) -> dict:
    """Rows and run records of the other tasks already in ``out``: tasks can be run one at a time."""
    csv, meta = out / "real.csv", out / "real.json"
    if not (csv.exists() and meta.exists()):
        return {"table": pd.DataFrame(), "tasks": {}}
    table = pd.read_csv(csv)
    tasks = {k: v for k, v in json.loads(meta.read_text()).items() if k not in exclude}
    return {"table": table[table["task"].isin(list(tasks))], "tasks": tasks}


if __name__ == "__main__":
    main()

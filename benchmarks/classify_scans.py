"""Lesion-load class from MRI + clinical + omics views with random views missing (synthetic).

Data (generator :func:`make_data`, documented there): ``mdlprob.datasets.synthetic_scans``
phantoms (sequences T1 and FLAIR) plus a small clinical table and an omics-like Gaussian vector,
both drawn from the phantoms' latent ``obsm["z_true"]``, so that every view carries some
information on the label ``obs["label"]`` (lesion load low / moderate / high). Each view is
missing completely at random for ``--missing`` (default 30%) of the subjects, never all four.
Subjects are split at random into training (70%) and test (30%) sets; nothing about the test
subjects is used for training (inductive).

Methods:

* ``poe+classifier``: two-stage. A ``PoEVAE`` (convolutional experts for the scans, MLP experts
  for clinical and omics) trained without labels on the training subjects; a Bayesian
  ``ClassifierHead`` fitted with ``fit_from_model`` on posterior latent draws of the training
  subjects; test subjects are embedded from whatever views they have;
* ``poe_joint``: a ``PoEVAE`` trained jointly with the categorical outcome
  (``setup_mudata(..., outcome={"key": "label", "type": "categorical"})``); probabilities from
  ``predict_outcome``;
* ``early``, ``late``, ``intermediate_kronecker``, ``intermediate_attention``: the
  ``mdlprob.fusion`` baselines on ``fusion_inputs`` of the same MuData (scan pixels as vectors,
  absent views marked absent);
* ``majority``: the most frequent training class (the floor);
* ``oracle_z_true``: scikit-learn ``LogisticRegression`` on the true latent ``obsm["z_true"]``
  of the training subjects (unavailable in practice): a reference for how much of the label
  the anatomy explains at all, since the lesion count is Poisson given :math:`z` and lesion
  sizes and positions are random.

Metrics on the test subjects: accuracy and macro-F1 with 90% percentile bootstrap intervals
(2,000 resamples of test subjects, the same for every method; the trained models are fixed),
expected calibration error, and the accuracy among test subjects with and without FLAIR.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/classify_scans.py --out benchmarks/results
    OMP_NUM_THREADS=1 python benchmarks/classify_scans.py --quick --out /tmp/classify_scans_quick
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression

import mdlprob
from mdlprob import metrics
from mdlprob._utils import atomic_path
from mdlprob.benchmark import bootstrap_classification, markdown_table
from mdlprob.data import make_mudata, setup_mudata, subset, table_to_anndata
from mdlprob.datasets._synthetic_scans import LABELS
from mdlprob.fusion import EarlyFusion, IntermediateFusion, LateFusion, fusion_inputs

VIEWS = ("t1", "flair", "clinical", "omics")
LIKELIHOODS = {"t1": "gaussian", "flair": "gaussian", "clinical": "mixed", "omics": "gaussian"}
N_BOOT = 2000
N_OMICS = 40


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--missing", type=float, default=0.3, help="MCAR rate of each view")
    p.add_argument("--quick", action="store_true", help="tiny settings (smoke test)")
    args = p.parse_args(argv)
    if not 0.0 <= args.missing < 1.0:
        p.error(f"--missing: expected a rate in [0, 1), got {args.missing}")
    args.cfg = {
        "n_obs": 40 if args.quick else 360, "size": 28 if args.quick else 32, "n_latent": 4 if args.quick else 12,
        "n_hidden": 16 if args.quick else 64, "epochs": 1 if args.quick else 12, "batch_size": 32, "lr": 2e-3,
        "head_epochs": 20 if args.quick else 500, "latent_samples": 3 if args.quick else 20,
        "pred_samples": 5 if args.quick else 100, "fusion_epochs": 5 if args.quick else 200,
    }
    return args


# ---------------------------------------------------------------------------------------- data
def make_data(n_obs: int, *, size: int, missing: float, seed: int) -> md.MuData:
    r"""Scans, clinical table and omics vector of ``n_obs`` subjects; each view MCAR-missing.

    With :math:`z_i \in \mathbb{R}^7` the phantom latent (``obsm["z_true"]``; column 5 is
    atrophy, column 6 lesion propensity, which drives the lesion count and so the label):

    * ``t1``, ``flair``: ``synthetic_scans(n_obs, sequences=("t1", "flair"), size=size)``;
    * ``clinical`` (mixed table): ``age`` :math:`= 45 + 8 z_{i5} + \mathcal{N}(0, 5^2)`;
      ``disability`` (EDSS-like) :math:`= 2.5 + 0.8 z_{i6} + 0.4 z_{i5} + \mathcal{N}(0, 1)`;
      ``relapse`` :math:`\sim \mathrm{Bernoulli}(\sigma(0.8 z_{i6}))`; ``site``, a categorical
      column with three levels unrelated to :math:`z` (a nuisance);
    * ``omics`` (Gaussian, 40 features): :math:`x_i = 0.6\, W^\top z_i + \varepsilon_i`,
      :math:`W_{kj} \sim \mathcal{N}(0, 1)`, :math:`\varepsilon_{ij} \sim \mathcal{N}(0, 1)`.

    Each view is absent for a fraction ``missing`` of the subjects (independently); a subject
    that would lose all four gets one back, chosen at random.
    """
    rng = np.random.default_rng(seed + 1)
    scans = mdlprob.datasets.synthetic_scans(n_obs, sequences=("t1", "flair"), size=size, seed=seed)
    z = np.asarray(scans.obsm["z_true"], dtype=np.float64)
    names = scans.obs_names
    table = pd.DataFrame({
        "age": 45 + 8 * z[:, 5] + rng.normal(0, 5, n_obs),
        "disability": 2.5 + 0.8 * z[:, 6] + 0.4 * z[:, 5] + rng.normal(0, 1, n_obs),
        "relapse": (rng.random(n_obs) < 1 / (1 + np.exp(-0.8 * z[:, 6]))).astype(np.int64),
        "site": pd.Categorical(rng.choice(["A", "B", "C"], n_obs)),
    }, index=names)
    clinical = table_to_anndata(table)
    w = rng.standard_normal((z.shape[1], N_OMICS))
    omics = ad.AnnData((0.6 * z @ w + rng.standard_normal((n_obs, N_OMICS))).astype(np.float32),
                       obs=pd.DataFrame(index=names), var=pd.DataFrame(index=[f"omic{j}" for j in range(N_OMICS)]))
    views = {"t1": scans["t1"], "flair": scans["flair"], "clinical": clinical, "omics": omics}
    present = rng.random((n_obs, len(VIEWS))) >= missing
    for i in np.flatnonzero(~present.any(1)):
        present[i, rng.integers(len(VIEWS))] = True
    mods = {v: views[v][present[:, j]].copy() for j, v in enumerate(VIEWS)}
    mdata = make_mudata(mods, obs_order=names)
    mdata.obs["label"] = pd.Categorical(scans.obs["label"].to_numpy(), categories=list(LABELS))
    mdata.obs["lesion_load"] = scans.obs["lesion_load"].to_numpy()
    mdata.obsm["z_true"] = z
    return mdata


# ------------------------------------------------------------------------------------ metrics
def evaluate(y: np.ndarray, proba: np.ndarray, flair: np.ndarray, rng: np.random.Generator) -> dict:
    """Accuracy, macro-F1 (point and 90% bootstrap interval), ECE, accuracy with/without FLAIR."""
    out = bootstrap_classification(y, proba, rng, n_boot=N_BOOT)
    for key, rows in (("accuracy_with_flair", flair), ("accuracy_without_flair", ~flair)):
        out[key] = metrics.accuracy(y[rows], proba[rows]) if rows.any() else float("nan")
    return out


# ------------------------------------------------------------------------------------ methods
def poe(mdata: md.MuData, cfg: dict, seed: int):
    mdlprob.settings.seed = seed
    model = mdlprob.models.PoEVAE(mdata, n_latent=cfg["n_latent"], n_hidden=cfg["n_hidden"])
    model.train(max_epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"], progress_bar=False)
    return model


def two_stage(train_md: md.MuData, test_md: md.MuData, y_train: np.ndarray, cfg: dict, seed: int) -> np.ndarray:
    setup_mudata(train_md, likelihoods=LIKELIHOODS)
    model = poe(train_md, cfg, seed)
    head = mdlprob.heads.ClassifierHead(max_epochs=cfg["head_epochs"], random_state=seed)
    head.fit_from_model(model, train_md, y_train, n_samples=cfg["latent_samples"])
    return head.predict_proba(model.get_latent(test_md, n_samples=cfg["latent_samples"]))


def joint(train_md: md.MuData, test_md: md.MuData, y_train: np.ndarray, cfg: dict, seed: int) -> np.ndarray:
    setup_mudata(train_md, likelihoods=LIKELIHOODS, outcome={"key": "label", "type": "categorical"})
    model = poe(train_md, cfg, seed)
    pred = model.predict_outcome(test_md, n_samples=cfg["pred_samples"])
    return pred[list(LABELS)].to_numpy()


def fusion_models(cfg: dict, seed: int) -> dict:
    opts = {"task": "classification", "max_epochs": cfg["fusion_epochs"], "random_state": seed}
    return {"early": EarlyFusion(**opts), "late": LateFusion(**opts),
            "intermediate_kronecker": IntermediateFusion(fusion="kronecker", **opts),
            "intermediate_attention": IntermediateFusion(fusion="attention", **opts)}


# ------------------------------------------------------------------------------------ driver
def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    """Run every method, write ``classify_scans.json`` and ``classify_scans.md``; return the table."""
    args = parse_args(argv)
    args.command = " ".join(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(1)
    start, cpu_start = time.perf_counter(), time.process_time()
    cfg = args.cfg
    full = make_data(cfg["n_obs"], size=cfg["size"], missing=args.missing, seed=args.seed)
    setup_mudata(full, likelihoods=LIKELIHOODS)
    y = full.obs["label"].cat.codes.to_numpy().astype(np.int64)
    perm = np.random.default_rng(args.seed).permutation(full.n_obs)
    n_test = int(round(0.3 * full.n_obs))
    test = np.zeros(full.n_obs, dtype=bool)
    test[perm[:n_test]] = True
    train_md, test_md = subset(full, np.flatnonzero(~test)), subset(full, np.flatnonzero(test))
    X, presence = fusion_inputs(full)
    results = {}
    for name, fn in (("poe+classifier", two_stage), ("poe_joint", joint)):
        t0, c0 = time.perf_counter(), time.process_time()
        proba = fn(train_md, test_md, y[~test], cfg, args.seed)
        results[name] = {"proba": proba, "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}
    for name, est in fusion_models(cfg, args.seed).items():
        t0, c0 = time.perf_counter(), time.process_time()
        est.fit({m: v[~test] for m, v in X.items()}, y[~test], presence={m: v[~test] for m, v in presence.items()})
        proba = est.predict_proba({m: v[test] for m, v in X.items()}, presence={m: v[test] for m, v in presence.items()})
        results[name] = {"proba": proba, "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}
    t0, c0 = time.perf_counter(), time.process_time()
    oracle = LogisticRegression(max_iter=2000).fit(full.obsm["z_true"][~test], y[~test])
    results["oracle_z_true"] = {"proba": oracle.predict_proba(full.obsm["z_true"][test]),
                                "seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0}
    counts = np.bincount(y[~test], minlength=len(LABELS))
    results["majority"] = {"proba": np.tile(np.eye(len(LABELS))[counts.argmax()], (n_test, 1)), "seconds": 0.0,
                           "cpu_seconds": 0.0}
    rows = []
    for name, res in results.items():
        rng = np.random.default_rng(args.seed)  # the same bootstrap resamples for every method
        rows.append({"method": name, "n_train": int((~test).sum()), "n_test": n_test,
                     **evaluate(y[test], res["proba"], presence["flair"][test], rng),
                     "seconds": res["seconds"], "cpu_seconds": res["cpu_seconds"]})
        print(name, {k: round(v, 3) for k, v in rows[-1].items() if isinstance(v, float)}, file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    args.wall_seconds, args.cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    views = {m: int(v[test].sum()) for m, v in presence.items()}
    write(table, args, views=views, classes=np.bincount(y, minlength=len(LABELS)).tolist())
    return table


def write(table: pd.DataFrame, args: argparse.Namespace, *, views: dict, classes: list) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"command": f"OMP_NUM_THREADS=1 python benchmarks/classify_scans.py {args.command}".strip(),
            "wall_seconds": args.wall_seconds, "cpu_seconds": args.cpu_seconds, "torch_version": torch.__version__,
            "mdlprob_version": mdlprob.__version__, "cpu_count": os.cpu_count(), "missing": args.missing,
            "config": args.cfg, "test_subjects_with_view": views, "class_counts": dict(zip(LABELS, classes, strict=True))}
    with atomic_path(args.out / "classify_scans.json") as tmp:
        tmp.write_text(json.dumps({"meta": meta, "results": table.to_dict(orient="records")}, indent=2))
    show = pd.DataFrame({
        "method": table["method"],
        "accuracy [90% CI]": [f"{r.accuracy:.3f} [{r.accuracy_lo:.3f}, {r.accuracy_hi:.3f}]" for r in table.itertuples()],
        "macro-F1 [90% CI]": [f"{r.macro_f1:.3f} [{r.macro_f1_lo:.3f}, {r.macro_f1_hi:.3f}]" for r in table.itertuples()],
        "ECE": table["ece"], "acc. with FLAIR": table["accuracy_with_flair"],
        "acc. without FLAIR": table["accuracy_without_flair"], "wall s": table["seconds"], "CPU s": table["cpu_seconds"],
    })
    lines = ["# Lesion-load class from T1 + FLAIR + clinical + omics, random views missing (synthetic)", "",
             f"Command: `{meta['command']}`; torch threads 1; {os.cpu_count()} CPUs (shared); torch {torch.__version__}; "
             f"mdlprob {mdlprob.__version__}; wall time {args.wall_seconds:.0f} s, CPU time {args.cpu_seconds:.0f} s.", "",
             f"{int(table['n_train'].iloc[0])} training and {int(table['n_test'].iloc[0])} test subjects; classes "
             f"{meta['class_counts']}; each view MCAR-missing for {args.missing:.0%} of subjects (never all); test "
             f"subjects with each view: {views}. Settings: {args.cfg}. Intervals: 90% percentile bootstrap over test "
             f"subjects ({N_BOOT} resamples). Data generator and protocol: docstrings of `benchmarks/classify_scans.py`.",
             "", markdown_table(show), ""]
    with atomic_path(args.out / "classify_scans.md") as tmp:
        tmp.write_text("\n".join(lines))


if __name__ == "__main__":
    main()

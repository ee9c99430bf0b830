"""PAM50 subtype classification on mixOmics ``breast.TCGA`` when test patients lack the protein view.

Data: ``mdlprob.datasets.mixomics_breast`` (mRNA 200, miRNA 184, protein 142; subtypes Basal /
Her2 / LumA). Every method is trained on the package's 150 **training** patients, who have all
three views, and scored on the 70 **test** patients, who have mRNA and miRNA but no protein
(the missing view is natural: the source holds no protein for them). Nothing about the test
patients is used for training (inductive).

Methods:

* ``poe+classifier``: two-stage. A ``PoEVAE`` fitted without labels on the training patients; a
  Bayesian ``ClassifierHead`` (``mdlprob.heads``) fitted on 20 posterior latent draws of the
  training patients; test patients are embedded from mRNA + miRNA (their product of experts
  simply lacks the protein expert) and predicted from their latent draws;
* ``poe_joint``: a ``PoEVAE`` trained jointly with the categorical outcome
  (``setup_mudata(..., outcome={"key": "subtype", "type": "categorical"})``) on the training
  patients; probabilities and their 90% intervals from ``predict_outcome``;
* ``early``, ``late``, ``intermediate_kronecker``, ``intermediate_attention``: the
  ``mdlprob.fusion`` baselines trained on the three views of the training patients, predicting
  with the protein view marked absent;
* ``logreg_mrna_mirna``: the floor, scikit-learn ``LogisticRegressionCV`` (5-fold CV over C)
  on standardised concatenated mRNA + miRNA (the views every patient has).

Metrics on the 70 test patients: accuracy and macro-F1 with a 90% percentile bootstrap interval
(2,000 resamples of test patients; the trained model is fixed), expected calibration error, and
for the Bayesian methods the mean width of the 90% interval of the predicted class's
probability: ``prob_width_test`` on the test patients; ``prob_width_train`` on the training
patients with all their views and ``prob_width_train_no_protein`` on the same patients with the
protein view withheld at prediction (``given=("mrna", "mirna")``), which isolates the effect of
the missing view on the interval (in-sample, so both are narrower than out-of-sample widths).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/classify_mixomics.py --out benchmarks/results
    OMP_NUM_THREADS=1 python benchmarks/classify_mixomics.py --quick --out /tmp/mixomics_quick
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import mudata as md
import numpy as np
import pandas as pd
import torch

import mdlprob
from mdlprob._utils import atomic_path
from mdlprob.benchmark import bootstrap_classification, markdown_table
from mdlprob.data import setup_mudata, subset
from mdlprob.datasets._mixomics import SUBTYPES
from mdlprob.fusion import EarlyFusion, IntermediateFusion, LateFusion, fusion_inputs

LIKELIHOODS = {"mrna": "gaussian", "mirna": "gaussian", "protein": "gaussian"}
GIVEN = ("mrna", "mirna")  # the views every patient has
N_BOOT = 2000


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny settings (smoke test): few epochs")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args(argv)
    args.cfg = {
        "n_latent": 4 if args.quick else 10, "n_hidden": 16 if args.quick else 64,
        "epochs": 3 if args.quick else 300, "batch_size": 64, "lr": 2e-3,
        "head_epochs": 20 if args.quick else 500, "latent_samples": 3 if args.quick else 20,
        "pred_samples": 10 if args.quick else 100, "fusion_epochs": 5 if args.quick else 200,
    }
    return args


# ------------------------------------------------------------------------------------ metrics


def predicted_width(proba: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Mean width of the interval of the predicted class's probability."""
    k = proba.argmax(1)
    rows = np.arange(k.size)
    return float((upper[rows, k] - lower[rows, k]).mean())


# ------------------------------------------------------------------------------------ methods
def poe(mdata, cfg: dict, seed: int):
    mdlprob.settings.seed = seed
    model = mdlprob.models.PoEVAE(mdata, n_latent=cfg["n_latent"], n_hidden=cfg["n_hidden"])
    model.train(max_epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"], progress_bar=False)
    return model


def two_stage(full, train_md, y, test, cfg: dict, seed: int) -> dict:
    setup_mudata(train_md, likelihoods=LIKELIHOODS)
    model = poe(train_md, cfg, seed)
    head = mdlprob.heads.ClassifierHead(max_epochs=cfg["head_epochs"], random_state=seed)
    head.fit(model.get_latent(full, n_samples=cfg["latent_samples"])[:, ~test], y[~test])
    out = {}
    for key, given in (("", None), ("_no_protein", GIVEN)):
        Z = model.get_latent(full, given=given, n_samples=cfg["latent_samples"])
        out[key] = head.predict_proba(Z, return_interval=True)
    return _collect(out, test)


def joint(full, train_md, y, test, cfg: dict, seed: int) -> dict:
    setup_mudata(train_md, likelihoods=LIKELIHOODS, outcome={"key": "subtype", "type": "categorical"})
    model = poe(train_md, cfg, seed)
    out = {}
    for key, given in (("", None), ("_no_protein", GIVEN)):
        pred = model.predict_outcome(full, given=given, n_samples=cfg["pred_samples"], level=0.9)
        out[key] = tuple(pred[[f"{c}{suffix}" for c in SUBTYPES]].to_numpy() for suffix in ("", "_lower", "_upper"))
    return _collect(out, test)


def _collect(out: dict, test: np.ndarray) -> dict:
    """Test probabilities and interval widths: test patients; training patients with and without protein."""
    proba, lower, upper = out[""]
    p2, l2, u2 = out["_no_protein"]
    return {"proba": proba[test], "prob_width_test": predicted_width(proba[test], lower[test], upper[test]),
            "prob_width_train": predicted_width(proba[~test], lower[~test], upper[~test]),
            "prob_width_train_no_protein": predicted_width(p2[~test], l2[~test], u2[~test])}


def fusion_models(cfg: dict, seed: int) -> dict:
    opts = {"task": "classification", "max_epochs": cfg["fusion_epochs"], "random_state": seed}
    return {
        "early": EarlyFusion(**opts),
        "late": LateFusion(**opts),
        "intermediate_kronecker": IntermediateFusion(fusion="kronecker", **opts),
        "intermediate_attention": IntermediateFusion(fusion="attention", **opts),
    }


def logreg(X: dict, y: np.ndarray, test: np.ndarray, seed: int) -> dict:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    Z = np.hstack([X["mrna"], X["mirna"]])
    clf = make_pipeline(StandardScaler(), LogisticRegressionCV(
        Cs=10, cv=5, l1_ratios=(0.0,), scoring="neg_log_loss", max_iter=5000, random_state=seed,
        use_legacy_attributes=False))
    clf.fit(Z[~test], y[~test])
    return {"proba": clf.predict_proba(Z[test])}


# ------------------------------------------------------------------------------------ driver
def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    args = parse_args(argv)
    args.command = " ".join(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    full = mdlprob.datasets.mixomics_breast(data_dir=args.data_dir)
    test = (full.obs["split"] == "test").to_numpy()
    y = full.obs["subtype"].cat.codes.to_numpy().astype(np.int64)
    with md.set_options(pull_on_update=False):
        train_md = subset(full, ~test)
    setup_mudata(full, likelihoods=LIKELIHOODS)
    X, presence = fusion_inputs(full)
    results = {}
    for name, fn in (("poe+classifier", two_stage), ("poe_joint", joint)):
        t0 = time.perf_counter()
        results[name] = {**fn(full, train_md, y, test, args.cfg, args.seed), "seconds": time.perf_counter() - t0}
    for name, est in fusion_models(args.cfg, args.seed).items():
        t0 = time.perf_counter()
        est.fit({m: v[~test] for m, v in X.items()}, y[~test], presence={m: v[~test] for m, v in presence.items()})
        proba = est.predict_proba({m: v[test] for m, v in X.items()}, presence={m: v[test] for m, v in presence.items()})
        results[name] = {"proba": proba, "seconds": time.perf_counter() - t0}
    t0 = time.perf_counter()
    results["logreg_mrna_mirna"] = {**logreg(X, y, test, args.seed), "seconds": time.perf_counter() - t0}
    rows = []
    for name, res in results.items():
        rng = np.random.default_rng(args.seed)  # the same bootstrap resamples for every method
        rows.append({"method": name, "n_train": int((~test).sum()), "n_test": int(test.sum()),
                     **bootstrap_classification(y[test], res["proba"], rng, n_boot=N_BOOT),
                     **{k: v for k, v in res.items() if k not in ("proba",)}})
        print(name, {k: round(v, 3) for k, v in rows[-1].items() if isinstance(v, float)}, file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    args.wall_seconds = time.perf_counter() - start
    write(table, args, protein_test=int(presence["protein"][test].sum()))
    return table


def write(table: pd.DataFrame, args: argparse.Namespace, *, protein_test: int) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out / "classify_mixomics.csv") as tmp:
        table.to_csv(tmp, index=False)
    show = pd.DataFrame({
        "method": table["method"],
        "accuracy [90% CI]": [f"{r.accuracy:.3f} [{r.accuracy_lo:.3f}, {r.accuracy_hi:.3f}]" for r in table.itertuples()],
        "macro-F1 [90% CI]": [f"{r.macro_f1:.3f} [{r.macro_f1_lo:.3f}, {r.macro_f1_hi:.3f}]" for r in table.itertuples()],
        "ECE": table["ece"],
        "prob. 90% width (test, no protein)": table.get("prob_width_test", np.nan),
        "prob. 90% width (train, with protein)": table.get("prob_width_train", np.nan),
        "prob. 90% width (train, protein withheld)": table.get("prob_width_train_no_protein", np.nan),
        "seconds": table["seconds"],
    })
    md = ["# Subtype classification, mixOmics breast.TCGA: train with protein, test without", "",
          f"Command: `OMP_NUM_THREADS=1 python benchmarks/classify_mixomics.py {args.command}`; torch threads 1; "
          f"{os.cpu_count()} CPUs (shared); torch {torch.__version__}; mdlprob {mdlprob.__version__}; "
          f"wall time {args.wall_seconds:.0f} s.", "",
          f"{int(table['n_train'].iloc[0])} training patients (mRNA, miRNA, protein), {int(table['n_test'].iloc[0])} "
          f"test patients (mRNA, miRNA; {protein_test} with protein). Settings: {args.cfg}. Metric intervals: 90% "
          f"percentile bootstrap over test patients ({N_BOOT} resamples). Probability width: mean width of the 90% "
          "interval of the predicted class's probability (Bayesian methods only). Protocol: docstring of "
          "`benchmarks/classify_mixomics.py`.", "", markdown_table(show), ""]
    with atomic_path(args.out / "classify_mixomics.md") as tmp:
        tmp.write_text("\n".join(md))


if __name__ == "__main__":
    main()

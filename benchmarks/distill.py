"""Distillation: how much of the full model's quality a student for a subset of modalities keeps.

A PoEVAE teacher (n_latent 8) is trained on 75% of ``synthetic(n, n_vars={"rna": 100,
"protein": 20})`` (every modality observed); for each subset :math:`S` a student is distilled
with ``teacher.distill(S)`` (defaults: 90/10 split of the training rows, early stopping on the
held-out KL). On the 25% held-out observations, three predictors are compared:

- ``teacher, all views``: the teacher's posterior given every modality (the imputed modality
  excluded for imputation), what a complete cohort gets;
- ``teacher, given S``: the teacher's own posterior given :math:`S` only;
- ``student, given S``: the student's posterior given :math:`S` only.

Scores: ``mse_to_full`` (mean squared difference of the posterior mean to the teacher's
all-view mean), ``kl_to_full`` (mean KL from the teacher's all-view posterior), ``r2_z_true``
(R² of the true latent regressed on the posterior mean), ``accuracy`` of the synthetic label by
a logistic regression fitted on the teacher's all-view latent of the training rows (a
downstream head trained on the complete cohort, applied as is), and for the first modality
outside :math:`S` the imputation Pearson r (log1p, all entries) and 90% interval coverage.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/distill.py --out benchmarks/results   # about 2 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

import mdlprob
from mdlprob._utils import atomic_path
from mdlprob.benchmark import markdown_table
from mdlprob.data import setup_mudata

LIKELIHOODS = {"rna": "nb", "protein": "nb", "clinical": "mixed"}
SUBSETS = (("clinical", "protein"), ("clinical",), ("rna", "clinical"))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--n-obs", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def _posterior(model, mdata, given):
    mean = model.get_latent(mdata, given=given)
    return mean, mdata.obsm["X_mdlprob_std"] ** 2


def _kl(mean_p, var_p, mean_q, var_q) -> float:
    return float((0.5 * (var_p / var_q + (mean_p - mean_q) ** 2 / var_q - 1 + np.log(var_q / var_p))).sum(1).mean())


def _imputation(model, mdata, target: str, given) -> dict:
    x = mdata.mod[target].X  # every observation has it: the measured values are the truth
    truth = np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)
    imp = model.impute(mdata, target, given=given, n_samples=100)
    mean, lo, hi = (imp.layers[k] for k in ("mean", "q05", "q95"))
    return {"impute_r": float(np.corrcoef(np.log1p(mean).ravel(), np.log1p(truth).ravel())[0, 1]),
            "coverage90": float(((truth >= lo) & (truth <= hi)).mean())}


def run(args: argparse.Namespace) -> list[dict]:
    from sklearn.linear_model import LinearRegression, LogisticRegression

    mdlprob.settings.seed = args.seed
    full = mdlprob.datasets.synthetic(args.n_obs, n_vars={"rna": 100, "protein": 20}, seed=args.seed)
    test = np.random.default_rng(args.seed).random(full.n_obs) < 0.25
    train, held = full[~test].copy(), full[test].copy()
    setup_mudata(train, likelihoods=LIKELIHOODS)
    teacher = mdlprob.models.PoEVAE(train, n_latent=8)
    start = time.perf_counter()
    teacher.train(max_epochs=args.epochs, progress_bar=False)
    teacher_time = time.perf_counter() - start
    head = LogisticRegression(max_iter=2000).fit(teacher.get_latent(train), train.obs["label"].astype(str))
    full_mean, full_var = _posterior(teacher, held, None)
    truth, labels = held.obsm["z_true"], held.obs["label"].astype(str).to_numpy()
    rows = []
    for subset in SUBSETS:
        given = list(subset)
        target = next(m for m in LIKELIHOODS if m not in subset)
        start = time.perf_counter()
        student = teacher.distill(given, progress_bar=False)
        seconds = time.perf_counter() - start
        others = [m for m in LIKELIHOODS if m != target]
        for name, model, use in [("teacher, all views", teacher, None), ("teacher, given S", teacher, given),
                                 ("student, given S", student, given)]:
            mean, var = _posterior(model, held, use)
            row = {"subset": "+".join(subset), "predictor": name, "mse_to_full": float(((mean - full_mean) ** 2).mean()),
                   "kl_to_full": _kl(full_mean, full_var, mean, var),
                   "r2_z_true": float(LinearRegression().fit(mean, truth).score(mean, truth)),
                   "accuracy": float((head.predict(mean) == labels).mean()), "imputed": target,
                   **_imputation(model, held, target, others if use is None else use)}
            row["seconds"] = seconds if model is student else (teacher_time if use is None else 0.0)
            rows.append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> list[dict]:
    args = parse_args(argv)
    torch.set_num_threads(1)
    rows = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"command": f"python benchmarks/distill.py {' '.join(sys.argv[1:])}".strip(), "epochs": args.epochs,
            "n_obs": args.n_obs, "seed": args.seed, "torch": torch.__version__}
    with atomic_path(args.out / "distill.json") as tmp:
        tmp.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    import pandas as pd

    lines = ["# Distillation of the joint posterior", "",
             f"Command: `{meta['command']}`; PoEVAE teacher (n_latent 8), {args.epochs} epochs, seed {args.seed}; "
             f"torch {torch.__version__}. Held-out observations (25%). seconds: teacher training, or distillation.",
             "See the module docstring for the scores.", "", markdown_table(pd.DataFrame(rows)), ""]
    with atomic_path(args.out / "distill.md") as tmp:
        tmp.write_text("\n".join(lines))
    return rows


if __name__ == "__main__":
    main()

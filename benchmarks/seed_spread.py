"""Seed spread on one survival row of the real-data scoreboard: is a gap noise or bias?

``benchmarks/real.py`` trains every neural method (mdlprob's recommended configuration and the
fusion baselines) once, with the mask seed as its training seed, and picks the strongest
baseline after the fact. This script retrains each of them with several training seeds on the
**same folds and the same RNA mask** as ``real.py`` (mask seed 0) and reports, per method, the
mean Harrell's C over the 5 published folds for each training seed, the mean and sd over
seeds, and the mean of a seed-averaged ensemble's risk (mdlprob: standardised risks of the
seeds averaged per patient). A gap between mdlprob and a baseline that survives averaging
over seeds is bias, not luck of one initialisation.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/seed_spread.py --cancer LUAD --rate 0.5 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sksurv.metrics import concordance_index_censored
from sksurv.util import Surv

import mdlprob
from mdlprob._utils import atomic_path
from mdlprob.benchmark import markdown_table
from mdlprob.data import hide_modality, setup_mudata, subset

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real  # noqa: E402
from _real_recommended import latent_head  # noqa: E402


def main(argv=None) -> pd.DataFrame:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cancer", default="LUAD")
    p.add_argument("--rate", type=float, default=0.5)
    p.add_argument("--model-seeds", type=int, default=3, help="training seeds of mdlprob's recipe")
    p.add_argument("--fusion-seeds", type=int, default=5, help="training seeds of each fusion net")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    mdlprob.settings.progress_bar = False
    from mdlprob.fusion import EarlyFusion, IntermediateFusion, LateFusion, fusion_inputs

    start = time.perf_counter()
    full = real.load_tcga(args.cancer, None)
    y = Surv.from_arrays(full.obs["event"].to_numpy() == 1, full.obs["time"].to_numpy())
    n_folds = 2 if args.quick else 5
    splits = [((full.obs[f"fold_{i}"] == "train").to_numpy(), (full.obs[f"fold_{i}"] == "val").to_numpy())
              for i in range(n_folds)]
    hide = real.nested_mask(full.n_obs, args.rate, 0)
    mdata = hide_modality(full, "rna", hide) if hide.any() else full.copy()
    setup_mudata(mdata, likelihoods=real.SURVIVAL_LIKELIHOODS)
    X, presence = fusion_inputs(mdata)
    epochs = 5 if args.quick else 100

    def c_index(te, risk) -> float:
        return float(concordance_index_censored(y[te]["event"], y[te]["time"], risk)[0])

    rows = []
    nets = {"early fusion": lambda s: EarlyFusion(task="survival", max_epochs=epochs, random_state=s),
            "intermediate fusion (Kronecker)": lambda s: IntermediateFusion(fusion="kronecker", task="survival",
                                                                            max_epochs=epochs, random_state=s),
            "intermediate fusion (attention)": lambda s: IntermediateFusion(fusion="attention", task="survival",
                                                                            max_epochs=epochs, random_state=s),
            "late fusion": lambda s: LateFusion(task="survival", max_epochs=epochs, random_state=s)}
    for k, (tr, te) in enumerate(splits):
        (X_tr, p_tr), (X_te, p_te) = real._subset(X, presence, tr), real._subset(X, presence, te)
        for name, make in nets.items():
            risks = []
            for seed in range(2 if args.quick else args.fusion_seeds):
                est = make(seed).fit(X_tr, y[tr], presence=p_tr)
                risks.append(est.predict_risk(X_te, presence=p_te))
                rows.append({"method": name, "fold": k, "seed": seed, "harrell_c": c_index(te, risks[-1])})
            rows.append({"method": name, "fold": k, "seed": "ensemble", "harrell_c": c_index(te, _average(risks))})
        test, risks = subset(mdata, te), []
        for seed in range(2 if args.quick else args.model_seeds):
            est = latent_head("survival", subset(mdata, tr), y[tr], seed=seed, quick=args.quick)
            risks.append(est.predict_risk(test))
            rows.append({"method": "mdlprob", "fold": k, "seed": seed, "harrell_c": c_index(te, risks[-1])})
        rows.append({"method": "mdlprob", "fold": k, "seed": "ensemble", "harrell_c": c_index(te, _average(risks))})
        print(f"[{time.strftime('%H:%M:%S')}] fold {k} done", file=sys.stderr, flush=True)
    table = pd.DataFrame(rows)
    write(table, args, minutes=(time.perf_counter() - start) / 60)
    return table


def _average(risks: list[np.ndarray]) -> np.ndarray:
    """Per-patient mean of standardised risks (scales differ between seeds)."""
    return np.mean([(r - r.mean()) / r.std() for r in risks], axis=0)


def write(table: pd.DataFrame, args, minutes: float) -> None:
    single = table[table["seed"] != "ensemble"]
    per_seed = single.groupby(["method", "seed"])["harrell_c"].mean().unstack("seed")
    summary = pd.DataFrame({
        "C per training seed (mean over folds)": per_seed.apply(lambda r: ", ".join(f"{v:.3f}" for v in r.dropna()), axis=1),
        "mean over seeds": per_seed.mean(axis=1), "sd over seeds": per_seed.std(axis=1, ddof=1),
        "seed-averaged ensemble": table[table["seed"] == "ensemble"].groupby("method")["harrell_c"].mean(),
    }).sort_values("mean over seeds", ascending=False)
    name = f"seed_spread_{args.cancer}_{args.rate:g}"
    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out / f"{name}.csv") as tmp:
        table.to_csv(tmp, index=False)
    command = "OMP_NUM_THREADS=1 python benchmarks/seed_spread.py " + " ".join(sys.argv[1:])
    lines = [f"# Seed spread: TCGA-{args.cancer}, {args.rate:.0%} of patients without RNA", "",
             f"`{command}` ({time.strftime('%Y-%m-%d')}, torch {torch.__version__}, {minutes:.1f} min, 2 shared CPU cores). "
             "Same 5 published folds and RNA mask (seed 0) as `benchmarks/real.py`; each method retrained with several "
             "training seeds (seed 0 is the run `real.py` reports). Protocol: the docstring of `benchmarks/seed_spread.py`.", "",
             markdown_table(summary.round(3).reset_index()), ""]
    with atomic_path(args.out / f"{name}.md") as tmp:
        Path(tmp).write_text("\n".join(lines))


if __name__ == "__main__":
    main()

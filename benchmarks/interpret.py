"""Which modality matters and which to measure next: expected against realised gains, modality Shapley values.

Cohorts (each: a ``PoEVAE`` and a ``LatentHead`` fitted on training observations only, everything
scored on held-out observations):

* ``synthetic``: ``mdlprob.datasets.synthetic(1800, missing={"protein": .3, "clinical": .3})``,
  1,500 training / 300 held out; head: classifier of ``label``.
* ``scans``: ``mdlprob.datasets.synthetic_scans(700, size=28, missing={"t2": .3, "flair": .3})``
  (three MRI sequences as 28x28 images, convolutional experts), 550 training / 150 held out;
  head: classifier of the lesion-load ``label``.
* ``blca``, ``luad``: TCGA (``tcga_survival(cancer, source="mcat")``: RNA z-scores as
  ``sign(x) log(1 + |x|)``, CNV, clinical), the published fold 0: ``train`` patients to fit,
  ``val`` patients held out; head: Cox PH on overall survival.
* ``mixomics``: ``mixomics_breast`` (mRNA, miRNA, protein); 50 of the 150 patients with protein
  are held out (seeded), the model sees the other 170 (the 70 test patients have no protein),
  the classifier of the subtype is fitted on the other 100 labelled patients.

For each cohort:

* **expected against realised gain** of acquiring the view (``rna`` for TCGA, ``protein`` for
  mixOmics, every view for synthetic and scans): ``mdlprob.interpret.realised_information_gain`` hides the view
  of held-out observations that have it, values it from 20 predictive draws, reveals it; Spearman ρ
  and means of expected and realised reductions of the latent entropy (nats), of the head's 90%
  interval width, and of the decision (risk group above the median / predicted class);
* **modality contributions**: ``modality_contributions`` on the held-out observations, the head's
  C-index (TCGA) or accuracy (synthetic, mixOmics) for every subset of views, Shapley values with
  90% bootstrap intervals (500 resamples of the held-out observations, model and head fixed), and
  the best subset of each size (the cost curve).

Figures: ``interpret_<cohort>_shapley.png``, ``interpret_<cohort>_cost.png`` and
``interpret_<cohort>_acquisition.png`` (per-observation expected value of the view, for held-out
observations whose view was hidden).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/interpret.py --out benchmarks/results
    # one cohort, added to (or replacing its entry in) an earlier interpret.json
    OMP_NUM_THREADS=1 python benchmarks/interpret.py --cohorts scans --out benchmarks/results
    OMP_NUM_THREADS=1 python benchmarks/interpret.py --quick --cohorts synthetic --out /tmp/interpret_quick
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sksurv.util import Surv

import mdlprob
from mdlprob._utils import atomic_path
from mdlprob.benchmark import markdown_table
from mdlprob.data import setup_mudata, subset
from mdlprob.heads import ClassifierHead, CoxPHHead, LatentHead
from mdlprob.interpret import (
    expected_information_gain,
    gain_agreement,
    modality_contributions,
    realised_information_gain,
)

COHORTS = ("synthetic", "scans", "blca", "luad", "mixomics")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--cohorts", default=",".join(COHORTS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny settings (smoke test)")
    p.add_argument("--fresh", action="store_true", help="drop the cohorts of an earlier interpret.json in --out")
    p.add_argument("--data-dir", default=None)
    args = p.parse_args(argv)
    args.cohorts = [c for c in args.cohorts.split(",") if c]
    unknown = set(args.cohorts) - set(COHORTS)
    if unknown:
        p.error(f"--cohorts: unknown {sorted(unknown)}; choose from {COHORTS}")
    args.cfg = {"n_latent": 4 if args.quick else 16, "n_hidden": 16 if args.quick else 64,
                "epochs": 3 if args.quick else 100, "head_epochs": 20 if args.quick else 300,
                "n_samples": 4 if args.quick else 20, "n_bootstrap": 20 if args.quick else 500,
                "n_synthetic": 300 if args.quick else 1800}
    return args


# ------------------------------------------------------------------------------------ cohorts
def synthetic(args):
    n = args.cfg["n_synthetic"]
    data = mdlprob.datasets.synthetic(n, missing={"protein": 0.3, "clinical": 0.3}, seed=args.seed)
    setup_mudata(data, likelihoods={"rna": "nb", "protein": "nb", "clinical": "mixed"})
    test = np.arange(n) >= n - n // 6
    y = data.obs["label"].to_numpy()
    return data, ~test, test, ~test, y, "classifier", ["rna", "protein", "clinical"]


def scans(args):
    n = 300 if args.quick else 700
    data = mdlprob.datasets.synthetic_scans(n, size=28, missing={"t2": 0.3, "flair": 0.3}, seed=args.seed)
    setup_mudata(data, likelihoods=dict.fromkeys(("t1", "t2", "flair"), "gaussian"))
    test = np.arange(n) >= n - 150 * n // 700
    y = data.obs["label"].astype(str).to_numpy()
    return data, ~test, test, ~test, y, "classifier", ["t1", "t2", "flair"]


def tcga(cancer: str, args):
    data = mdlprob.datasets.tcga_survival(cancer, source="mcat", data_dir=args.data_dir)
    rna = data.mod["rna"]
    rna.X = (np.sign(rna.X) * np.log1p(np.abs(rna.X))).astype(np.float32)
    setup_mudata(data, likelihoods={"rna": "gaussian", "cnv": "gaussian", "clinical": "mixed"})
    train = (data.obs["fold_0"] == "train").to_numpy()
    test = (data.obs["fold_0"] == "val").to_numpy()
    y = Surv.from_arrays(data.obs["event"].to_numpy().astype(bool), data.obs["time"].to_numpy())
    return data, train, test, train, y, "survival", ["rna"]


def mixomics(args):
    data = mdlprob.datasets.mixomics_breast(data_dir=args.data_dir)
    setup_mudata(data, likelihoods={"mrna": "gaussian", "mirna": "gaussian", "protein": "gaussian"})
    has_protein = (data.obs["split"] == "train").to_numpy()
    held = np.zeros(data.n_obs, dtype=bool)
    held[np.random.default_rng(args.seed).choice(np.flatnonzero(has_protein), 50, replace=False)] = True
    y = data.obs["subtype"].astype(str).to_numpy()
    return data, ~held, held, has_protein & ~held, y, "classifier", ["protein"]


def load(name: str, args):
    if name == "synthetic":
        return synthetic(args)
    if name == "mixomics":
        return mixomics(args)
    if name == "scans":
        return scans(args)
    return tcga(name, args)


# ------------------------------------------------------------------------------------ study
def fit(data, fit_rows, head_rows, y, kind: str, cfg: dict, seed: int):
    mdlprob.settings.seed = seed
    fit_md = subset(data, fit_rows)
    model = mdlprob.PoEVAE(fit_md, n_latent=cfg["n_latent"], n_hidden=cfg["n_hidden"])
    model.train(max_epochs=cfg["epochs"], batch_size=64, lr=2e-3, progress_bar=False)
    head_cls = ClassifierHead if kind == "classifier" else CoxPHHead
    head = LatentHead(model, head_cls(max_epochs=cfg["head_epochs"], random_state=seed), modality_latents=False,
                      n_samples=cfg["n_samples"], random_state=seed)
    head.fit(subset(data, head_rows), y[head_rows])
    return model, head


def study(name: str, args) -> dict:
    cfg = args.cfg
    start = time.perf_counter()
    data, fit_rows, test, head_rows, y, kind, views = load(name, args)
    model, head = fit(data, fit_rows, head_rows, y, kind, cfg, args.seed)
    held = subset(data, test)
    rows = []
    for view in views:
        frame = realised_information_gain(model, held, view, target=head, n_samples=cfg["n_samples"])
        agreement = gain_agreement(frame)
        for q, r in agreement.iterrows():
            rows.append({"cohort": name, "view": view, "quantity": q, **r.to_dict()})
    contrib = modality_contributions(model, held, target=head, y=y[test], n_bootstrap=cfg["n_bootstrap"],
                                     n_samples=cfg["n_samples"], random_state=args.seed)
    hide = mdlprob.data.presence_mask(held, model.registry_)[:, model.modalities.index(views[0])]
    hide &= mdlprob.data.presence_mask(held, model.registry_).sum(1) > 1
    hidden = mdlprob.data.hide_modality(held, views[0], hide)
    gains = expected_information_gain(model, hidden, views[0], target=head, n_samples=cfg["n_samples"])
    args.out.mkdir(parents=True, exist_ok=True)
    mdlprob.pl.shapley(contrib, path=args.out / f"interpret_{name}_shapley.png")
    mdlprob.pl.cost_curve(contrib, path=args.out / f"interpret_{name}_cost.png")
    mdlprob.pl.acquisition_value(gains, top=25, path=args.out / f"interpret_{name}_acquisition.png")
    print(name, f"{time.perf_counter() - start:.0f}s", file=sys.stderr, flush=True)
    return {"agreement": rows, "metric": contrib.metric, "n_held_out": int(test.sum()),
            "shapley": contrib.shapley.reset_index().to_dict("records"),
            "subsets": contrib.subsets.rename_axis("subset").reset_index().to_dict("records"),
            "cost_curve": contrib.cost_curve().reset_index().to_dict("records"),
            "seconds": time.perf_counter() - start}


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(1)
    mdlprob.settings.progress_bar = False
    command = "python benchmarks/interpret.py " + " ".join(sys.argv[1:] if argv is None else argv)
    saved = args.out / "interpret.json"
    results = json.loads(saved.read_text())["results"] if saved.is_file() and not args.fresh else {}
    for name in args.cohorts:
        try:
            results[name] = {**study(name, args), "command": command, "date": time.strftime("%Y-%m-%d")}
        except FileNotFoundError as err:  # a shared data set is absent: skip the cohort, say so
            print(f"{name}: skipped ({err})", file=sys.stderr, flush=True)
    report = {"command": command, "date": time.strftime("%Y-%m-%d"), "config": args.cfg, "results": results}
    write(report, args.out)
    return report


def write(report: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "interpret.json") as tmp:
        Path(tmp).write_text(json.dumps(report, indent=1, default=float))
    commands = sorted({(r.get("command", report["command"]), r.get("date", report["date"]))
                       for r in report["results"].values()})
    lines = ["# Which modality matters, and which to measure next", "",
             "Commands: " + "; ".join(f"`{c}` ({d})" for c, d in commands) + ". See the docstring of "
             "`benchmarks/interpret.py` for the protocol.", "",
             "## Expected against realised gain on held-out observations (view hidden, then revealed)", ""]
    agreement = pd.DataFrame([r for res in report["results"].values() for r in res["agreement"]])
    if len(agreement):
        lines += [markdown_table(agreement.round(3).astype({"n_obs": int})), ""]
    for name, res in report["results"].items():
        lines += [f"## {name}: modality contributions to the {res['metric']} ({res['n_held_out']} held out)", "",
                  markdown_table(pd.DataFrame(res["shapley"]).round(3)), "",
                  "Best subset of each size (cost curve):", "",
                  markdown_table(pd.DataFrame(res["cost_curve"]).round(3)), "",
                  f"![shapley](interpret_{name}_shapley.png) ![cost](interpret_{name}_cost.png) "
                  f"![acquisition](interpret_{name}_acquisition.png)", ""]
    with atomic_path(out / "interpret.md") as tmp:
        Path(tmp).write_text("\n".join(lines))


if __name__ == "__main__":
    main()

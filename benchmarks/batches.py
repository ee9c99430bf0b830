"""Batches modelled or not: batch mixing, biology and imputation with and without ``batch_key``.

Three scenarios, each trained twice with the same seed and settings (PoEVAE; batch-blind, and
batch-aware with ``setup_mudata(..., batch_key="batch")``):

- ``synthetic``: ``synthetic(n, batches=3)`` (a known additive and multiplicative batch effect
  on RNA and protein), protein absent at random for 30% of cells.
- ``synthetic-block``: the same data with protein absent for every cell of ``batch2`` (block
  missingness) and nowhere else. The batch-aware model has never seen protein in ``batch2``,
  so its own-batch prediction there uses a decoder column no protein datum trained; it is
  also scored "as if measured in" ``batch0`` (``impute(..., transform_batch="batch0")``).
- ``pbmc-hto``: CITE-seq PBMCs (``citeseq_pbmc(include_hto=True)``), batch = hashtag (sample of
  origin: the hashtag with the largest CLR value, cells whose top two CLR values differ by
  less than 1 dropped as doublets or negatives), ADT absent at random for 30% of cells. Needs
  the shared data (skipped without them).

- ``tcga-query`` (reference mapping on real data, not in the default list; needs the shared
  data): TCGA BLCA and LUAD, each on its own (MCAT features: RNA, CNV, clinical), batch = tissue-source site (the two
  characters after ``TCGA-``). Whole sites, in a seeded order, are held out until they hold
  25% of the patients (the query); RNA is hidden for half of the query patients. A reference
  is trained on the other sites; the query is mapped without fine-tuning, fine-tuned (also
  with the encoders' first layers), or a model is retrained on reference + query. Scored on
  the query: RNA imputation r and 90% coverage on the hidden patients, and Harrell's C of a
  CoxPH head (``mdlprob.heads.CoxPHHead``) fitted on the reference patients' latent draws
  of the same model, applied to the query's (with its bootstrap sd over query patients); with
  wall times. Run it with ``--scenarios
  tcga-query --name batches_tcga``.
- ``synthetic-query`` (reference mapping): a reference trained on ``batch0`` and ``batch1``,
  and ``batch2`` as a query whose protein is absent for half of its cells. Compared on those
  cells: the query mapped with ``PoEVAE.load_query_data`` before fine-tuning (new batch
  columns at zero), after fine-tuning them on the query alone (also with the encoders'
  first layers, ``train_first_layers=True``), and a model retrained on reference + query;
  with wall times (the mapped rows: fine-tuning only).

Scores: iLISI (batch mixing of the latent, scib-metrics ``ilisi_knn`` on 90 neighbours, 0 =
batches apart, 1 = mixed), ``silhouette_batch`` (scib-metrics, 1 = mixed) and, where a label
exists, ``silhouette_label`` (biology kept, scib-metrics, higher is better) and the R² of the
true latent regressed on the learned one; imputation Pearson r (log1p, all hidden entries)
and coverage of the 90% interval of the hidden modality.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/batches.py --out benchmarks/results   # about 10 min on 2 cores
"""

from __future__ import annotations

import argparse
import json
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
from mdlprob.benchmark import markdown_table
from mdlprob.data import hide_modality, setup_mudata

MIN_HTO_MARGIN = 1.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--n-obs", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--scenarios", default="synthetic,synthetic-block,pbmc-hto,synthetic-query",
                   help="comma-separated; also tcga-query (TCGA BLCA tissue-source sites, shared data)")
    p.add_argument("--name", default="batches", help="results file stem: <out>/<name>.md and .json")
    return p.parse_args(argv)


def _synthetic(n_obs: int, *, block: bool) -> tuple[md.MuData, dict, str]:
    mdata = mdlprob.datasets.synthetic(n_obs, n_vars={"rna": 100, "protein": 20},
                                       missing={} if block else {"protein": 0.3}, batches=3)
    if block:
        mdata = hide_modality(mdata, "protein", (mdata.obs["batch"] == "batch2").to_numpy())
    return mdata, {"rna": "nb", "protein": "nb", "clinical": "mixed"}, "protein"


def _pbmc() -> tuple[md.MuData, dict, str]:
    mdata = mdlprob.datasets.citeseq_pbmc(include_hto=True, min_cells=50)
    hto = mdata.mod["hto"].X
    hto = np.asarray(hto.toarray() if hasattr(hto, "toarray") else hto, dtype=np.float64)
    clr = np.log1p(hto) - np.log1p(hto).mean(1, keepdims=True)
    top = np.sort(clr, 1)
    keep = top[:, -1] - top[:, -2] >= MIN_HTO_MARGIN
    names = np.asarray(mdata.mod["hto"].var_names)
    sample = pd.Series(names[clr.argmax(1)], index=mdata.mod["hto"].obs_names)
    mdata = md.MuData({m: mdata.mod[m][keep].copy() for m in ("rna", "adt")})
    mdata.obs["batch"] = pd.Categorical(sample[keep].reindex(mdata.obs_names).to_numpy())
    rng = np.random.default_rng(0)
    mdata.uns["truth"] = {"adt": {"values": _dense(mdata.mod["adt"].X)}}
    mdata = hide_modality(mdata, "adt", rng.random(mdata.n_obs) < 0.3)
    return mdata, {"rna": "nb", "adt": "nb"}, "adt"


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float32)


def _hidden(mdata: md.MuData, target: str) -> tuple[np.ndarray, np.ndarray]:
    truth = np.asarray(mdata.uns["truth"][target]["values"])
    rows = np.asarray(mdata.obsmap[target]) == 0
    return truth, rows


def scores(mdata: md.MuData, model, target: str, **impute_kwargs) -> dict:
    import scib_metrics as scib
    from scib_metrics.nearest_neighbors import NeighborsResults
    from sklearn.linear_model import LinearRegression
    from sklearn.neighbors import NearestNeighbors

    z = model.get_latent(mdata)
    batch = pd.Categorical(mdata.obs["batch"]).codes  # hide_modality leaves obs columns as objects
    dist, idx = NearestNeighbors(n_neighbors=90).fit(z).kneighbors(z)
    out = {"ilisi": float(scib.ilisi_knn(NeighborsResults(indices=idx, distances=dist), batch))}
    label = pd.Categorical(mdata.obs["label"]).codes if "label" in mdata.obs else None
    out["silhouette_batch"] = float(scib.silhouette_batch(z, label if label is not None else np.zeros(len(z)), batch))
    if label is not None:
        out["silhouette_label"] = float(scib.silhouette_label(z, label))
        out["r2_z_true"] = float(LinearRegression().fit(z, mdata.obsm["z_true"]).score(z, mdata.obsm["z_true"]))
    truth, rows = _hidden(mdata, target)
    imp = model.impute(mdata, target, n_samples=100, **impute_kwargs)
    mean, lo, hi = (imp.layers[k][rows] for k in ("mean", "q05", "q95"))
    out["impute_r"] = float(np.corrcoef(np.log1p(mean).ravel(), np.log1p(truth[rows]).ravel())[0, 1])
    out["coverage90"] = float(((truth[rows] >= lo) & (truth[rows] <= hi)).mean())
    return out


def _imputation(model, mdata: md.MuData, truth: np.ndarray) -> dict:
    imp = model.impute(mdata, "protein", n_samples=100)
    mean, lo, hi = (imp.layers[k] for k in ("mean", "q05", "q95"))
    return {"impute_r": float(np.corrcoef(np.log1p(mean).ravel(), np.log1p(truth).ravel())[0, 1]),
            "coverage90": float(((truth >= lo) & (truth <= hi)).mean())}


def run_query(args: argparse.Namespace) -> list[dict]:
    likelihoods = {"rna": "nb", "protein": "nb", "clinical": "mixed"}
    full = mdlprob.datasets.synthetic(args.n_obs, n_vars={"rna": 100, "protein": 20}, batches=3)
    is_query = (full.obs["batch"] == "batch2").to_numpy()
    hide = np.zeros(full.n_obs, dtype=bool)
    hide[np.flatnonzero(is_query)[np.random.default_rng(0).random(int(is_query.sum())) < 0.5]] = True
    truth = np.asarray(full.uns["truth"]["protein"]["values"])[hide]
    ref = full[~is_query].copy()
    ref.obs["batch"] = ref.obs["batch"].cat.remove_unused_categories()
    setup_mudata(ref, likelihoods=likelihoods, batch_key="batch")
    query = hide_modality(full, "protein", hide)[is_query].copy()
    scored = query[hide[is_query]].copy()
    mdlprob.settings.seed = 0
    start = time.perf_counter()
    reference = mdlprob.models.PoEVAE(ref, n_latent=10)
    reference.train(max_epochs=args.epochs, progress_bar=False)
    ref_s = time.perf_counter() - start
    mapped = mdlprob.models.PoEVAE.load_query_data(query, reference)
    base = {"scenario": "synthetic-query", "n_obs": query.n_obs}
    rows = [{**base, "model": "mapped, no fine-tuning", **_imputation(mapped, scored, truth), "train_s": 0.0}]
    for name, first in (("mapped, fine-tuned", False), ("mapped, fine-tuned with encoders' first layers", True)):
        mapped = mdlprob.models.PoEVAE.load_query_data(query, reference, train_first_layers=first)
        mdlprob.settings.seed = 0
        start = time.perf_counter()
        mapped.train(max_epochs=args.epochs, progress_bar=False)
        rows.append({**base, "model": name, **_imputation(mapped, scored, truth),
                     "train_s": round(time.perf_counter() - start, 1)})
    both = hide_modality(full, "protein", hide)
    setup_mudata(both, likelihoods=likelihoods, batch_key="batch")
    mdlprob.settings.seed = 0
    start = time.perf_counter()
    retrained = mdlprob.models.PoEVAE(both, n_latent=10)
    retrained.train(max_epochs=args.epochs, progress_bar=False)
    rows.append({**base, "model": "retrained on reference + query", **_imputation(retrained, both[hide].copy(), truth),
                 "train_s": round(time.perf_counter() - start, 1)})
    rows.append({**base, "model": "(reference training)", "n_obs": ref.n_obs, "train_s": round(ref_s, 1)})
    for row in rows:
        print(row, flush=True)
    return rows


TCGA_LIKELIHOODS = {"rna": "gaussian", "cnv": "gaussian", "clinical": "mixed"}
TCGA_CFG = {"n_latent": 16, "n_hidden": 64, "epochs": 50, "batch_size": 128, "lr": 2e-3, "head_epochs": 300,
            "latent_samples": 10}


def _tcga_sites(cancer: str) -> md.MuData:
    """TCGA (MCAT features), RNA z-scores as ``sign(x) log(1 + |x|)``; batch = tissue-source site."""
    mdata = mdlprob.datasets.tcga_survival(cancer, source="mcat")
    rna = mdata.mod["rna"]
    rna.X = (np.sign(rna.X) * np.log1p(np.abs(rna.X))).astype(np.float32)
    mdata.obs["batch"] = pd.Categorical([name[5:7] for name in mdata.obs_names])  # TCGA-XX-...: the site
    return mdata


def _held_out_sites(batch: pd.Series, fraction: float, seed: int) -> np.ndarray:
    """Whole sites, in a seeded order, until they hold ``fraction`` of the patients."""
    sites = np.random.default_rng(seed).permutation(sorted(batch.unique()))
    counts = batch.value_counts()
    chosen, total = [], 0
    for site in sites:
        if total >= fraction * len(batch):
            break
        chosen.append(site)
        total += counts[site]
    return batch.isin(chosen).to_numpy()


def _cindex(model, ref, query, cfg: dict, seed: int) -> tuple[float, float]:
    """Harrell's C (and its bootstrap sd) on the query of a CoxPH head fitted on the reference patients' latent draws."""
    from sksurv.util import Surv

    def y(m):
        return Surv.from_arrays(m.obs["event"].to_numpy() == 1, m.obs["time"].to_numpy(), name_event="event",
                                name_time="time")

    head = mdlprob.heads.CoxPHHead(max_epochs=cfg["head_epochs"], random_state=seed)
    head.fit(model.get_latent(ref, n_samples=cfg["latent_samples"]), y(ref))
    risk = head.predict_risk(model.get_latent(query, n_samples=cfg["latent_samples"]))
    yq = y(query)
    c = float(mdlprob.metrics.harrell_c(yq["event"], yq["time"], risk))
    rng = np.random.default_rng(seed)  # bootstrap over query patients: the sd of C from so few of them
    boot = []
    for _ in range(200):
        i = rng.integers(0, len(risk), len(risk))
        if yq["event"][i].any():
            boot.append(mdlprob.metrics.harrell_c(yq["event"][i], yq["time"][i], risk[i]))
    return c, float(np.std(boot))


def run_tcga_query(args: argparse.Namespace, cancer: str = "blca") -> list[dict]:
    """Held-out tissue-source sites of one TCGA cancer mapped onto a reference of the other sites."""
    cfg, seed = TCGA_CFG, 0
    full = _tcga_sites(cancer)
    is_query = _held_out_sites(full.obs["batch"], 0.25, seed)
    hide = np.zeros(full.n_obs, dtype=bool)
    hide[np.flatnonzero(is_query)[np.random.default_rng(seed).random(int(is_query.sum())) < 0.5]] = True
    truth = _dense(full.mod["rna"][full.obs_names[hide]].X)
    ref = full[~is_query].copy()
    ref.obs["batch"] = ref.obs["batch"].cat.remove_unused_categories()
    setup_mudata(ref, likelihoods=TCGA_LIKELIHOODS, batch_key="batch")
    masked = hide_modality(full, "rna", hide)
    query = masked[is_query].copy()
    scored = masked[hide].copy()
    train = {"max_epochs": cfg["epochs"], "batch_size": cfg["batch_size"], "lr": cfg["lr"], "progress_bar": False}
    mdlprob.settings.seed = seed
    start = time.perf_counter()
    reference = mdlprob.models.PoEVAE(ref, n_latent=cfg["n_latent"], n_hidden=cfg["n_hidden"])
    reference.train(**train)
    ref_s = time.perf_counter() - start
    base = {"scenario": f"tcga-{cancer}-sites-query", "n_obs": query.n_obs}

    def scored_row(name, model, reference_rows, seconds):
        imp = _tcga_imputation(model, scored, truth)
        c, c_sd = _cindex(model, reference_rows, query, cfg, seed)
        return {**base, "model": name, **imp, "c_index": c, "c_index_sd": c_sd, "train_s": round(seconds, 1)}

    mapped = mdlprob.models.PoEVAE.load_query_data(query, reference)
    rows = [scored_row("mapped, no fine-tuning", mapped, ref, 0.0)]
    for name, first in (("mapped, fine-tuned", False), ("mapped, fine-tuned with encoders' first layers", True)):
        mapped = mdlprob.models.PoEVAE.load_query_data(query, reference, train_first_layers=first)
        mdlprob.settings.seed = seed
        start = time.perf_counter()
        mapped.train(**train)
        rows.append(scored_row(name, mapped, ref, time.perf_counter() - start))
        print(rows[-1], flush=True)
    setup_mudata(masked, likelihoods=TCGA_LIKELIHOODS, batch_key="batch")
    mdlprob.settings.seed = seed
    start = time.perf_counter()
    retrained = mdlprob.models.PoEVAE(masked, n_latent=cfg["n_latent"], n_hidden=cfg["n_hidden"])
    retrained.train(**train)
    rows.append(scored_row("retrained on reference + query", retrained, masked[~is_query].copy(),
                           time.perf_counter() - start))
    rows.append({**base, "model": "(reference training)", "n_obs": ref.n_obs, "train_s": round(ref_s, 1)})
    for row in rows:
        print(row, flush=True)
    return rows


def _tcga_imputation(model, mdata: md.MuData, truth: np.ndarray) -> dict:
    imp = model.impute(mdata, "rna", n_samples=100)
    mean, lo, hi = (imp.layers[k] for k in ("mean", "q05", "q95"))
    per_gene = mdlprob.metrics.pearson_per_feature(truth, mean)
    return {"impute_r": float(np.corrcoef(mean.ravel(), truth.ravel())[0, 1]),
            "impute_r_gene": float(np.nanmean(per_gene)),
            "coverage90": float(((truth >= lo) & (truth <= hi)).mean())}


def run(scenario: str, args: argparse.Namespace) -> list[dict]:
    if scenario == "synthetic-query":
        return run_query(args)
    if scenario == "tcga-query":
        try:
            return [row for cancer in ("blca", "luad") for row in run_tcga_query(args, cancer)]
        except FileNotFoundError as err:
            print(f"skipping {scenario}: {err}", flush=True)
            return []
    if scenario == "pbmc-hto":
        try:
            base, likelihoods, target = _pbmc()
        except FileNotFoundError as err:
            print(f"skipping {scenario}: {err}", flush=True)
            return []
    else:
        base, likelihoods, target = _synthetic(args.n_obs, block=scenario == "synthetic-block")
    rows = []
    for name, setup in (("batch-blind", {}), ("batch-aware", {"batch_key": "batch"})):
        mdata = base.copy()
        setup_mudata(mdata, likelihoods=likelihoods, **setup)
        mdlprob.settings.seed = 0
        start = time.perf_counter()
        model = mdlprob.models.PoEVAE(mdata, n_latent=10)
        model.train(max_epochs=args.epochs, progress_bar=False)
        wall = time.perf_counter() - start
        variants = [("", {})]
        if scenario == "synthetic-block" and setup:
            variants.append((" (as if batch0)", {"transform_batch": "batch0"}))
        for suffix, kwargs in variants:
            rows.append({"scenario": scenario, "model": name + suffix, "n_obs": mdata.n_obs,
                         **scores(mdata, model, target, **kwargs), "train_s": round(wall, 1)})
            print(rows[-1], flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> pd.DataFrame:
    args = parse_args(argv)
    torch.set_num_threads(1)
    rows = [r for s in args.scenarios.split(",") for r in run(s, args)]
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"command": f"python benchmarks/batches.py {' '.join(sys.argv[1:])}".strip(), "epochs": args.epochs,
            "n_obs": args.n_obs, "torch": torch.__version__}
    with atomic_path(args.out / f"{args.name}.json") as tmp:
        tmp.write_text(json.dumps({"meta": meta, "rows": table.to_dict(orient="records")}, indent=1))
    lines = ["# Batches modelled or not", "",
             f"Command: `{meta['command']}`; PoEVAE (n_latent 10), {args.epochs} epochs, seed 0; torch {torch.__version__}.",
             "iLISI and silhouette_batch: batch mixing of the latent (scib-metrics; 1 = mixed); silhouette_label: "
             "biology kept (synthetic label); r2_z_true: R² of the true latent on the learned one; impute_r and "
             "coverage90: the hidden modality (log1p Pearson r; 90% interval). See the module docstring.",
             "tcga-query rows: PoEVAE n_latent 16, n_hidden 64, 50 epochs (benchmarks/survival_tcga.py's settings); "
             "impute_r over all hidden RNA entries (sign-log z-scores), impute_r_gene its mean per gene; c_index: "
             "Harrell's C on the query of a CoxPH head fitted on the reference patients' latent draws "
             "(c_index_sd: its sd over 200 bootstrap resamples of the query patients).", "",
             markdown_table(table), ""]
    with atomic_path(args.out / f"{args.name}.md") as tmp:
        tmp.write_text("\n".join(lines))
    return table


if __name__ == "__main__":
    main()

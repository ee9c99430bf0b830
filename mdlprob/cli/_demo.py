"""``mdlprob demo``: impute hidden expression of breast-cancer patients from their clinical data."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import mudata as md
import numpy as np

logger = logging.getLogger(__name__)


def run_demo(out: Path, *, max_epochs: int = 400, hide: float = 0.4, seed: int = 0) -> dict:
    """Train on the embedded breast-cancer cohort with expression hidden for ``hide`` of patients.

    Writes ``demo.png``, ``metrics.json`` and the model (``model/``) into ``out`` and returns
    the metrics.
    """
    import mdlprob
    from mdlprob import metrics

    start = time.perf_counter()
    mdlprob.settings.seed = seed
    full = mdlprob.datasets.breast_cancer()
    truth = np.asarray(full.mod["expression"].X)
    hidden = np.zeros(full.n_obs, dtype=bool)
    hidden[np.random.default_rng(seed).permutation(full.n_obs)[: round(hide * full.n_obs)]] = True
    mdata = mdlprob.data.hide_modality(full, "expression", hidden)
    mdlprob.data.setup_mudata(mdata, likelihoods={"expression": "gaussian", "clinical": "mixed"})
    logger.info("Breast cancer (sksurv): %d patients, expression hidden for %d.", mdata.n_obs, hidden.sum())
    model = mdlprob.PoEVAE(mdata, n_latent=4, n_hidden=32)
    model.train(max_epochs=max_epochs, batch_size=64, lr=2e-3, early_stopping=True, patience=30)
    imp = model.impute(mdata, "expression", n_samples=300, quantiles=(0.05, 0.25, 0.5, 0.75, 0.95))
    observed = truth[~hidden]
    mask = np.zeros_like(truth, dtype=bool)
    mask[hidden] = True
    feat_mean, feat_sd = observed.mean(0), observed.std(0, ddof=1)
    base = np.broadcast_to(feat_mean, truth.shape)
    ridge, ridge_sd = _ridge_from_clinical(full, hidden, truth)
    z90, z50 = 1.6448536269514722, 0.6744897501960817
    result = {
        "n_patients": int(mdata.n_obs), "n_hidden": int(hidden.sum()), "n_features": int(truth.shape[1]),
        "poe_vae": {
            "pearson_r": float(np.nanmean(metrics.pearson_per_feature(truth, imp.layers["mean"], mask=mask))),
            "rmse": metrics.rmse(truth, imp.layers["mean"], mask=mask),
            "coverage_90": metrics.interval_coverage(truth, imp.layers["q05"], imp.layers["q95"], mask=mask),
            "coverage_50": metrics.interval_coverage(truth, imp.layers["q25"], imp.layers["q75"], mask=mask),
        },
        "feature_mean": {
            "pearson_r": 0.0,
            "rmse": metrics.rmse(truth, base, mask=mask),
            "coverage_90": metrics.interval_coverage(truth, base - z90 * feat_sd, base + z90 * feat_sd, mask=mask),
            "coverage_50": metrics.interval_coverage(truth, base - z50 * feat_sd, base + z50 * feat_sd, mask=mask),
        },
        "ridge_clinical": {
            "pearson_r": float(np.nanmean(metrics.pearson_per_feature(truth, ridge, mask=mask))),
            "rmse": metrics.rmse(truth, ridge, mask=mask),
            "coverage_90": metrics.interval_coverage(truth, ridge - z90 * ridge_sd, ridge + z90 * ridge_sd, mask=mask),
            "coverage_50": metrics.interval_coverage(truth, ridge - z50 * ridge_sd, ridge + z50 * ridge_sd, mask=mask),
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    _figure(out / "demo.png", truth, imp, hidden, model.history_, result)
    model.save(out / "model", overwrite=True)
    result["seconds"] = round(time.perf_counter() - start, 1)
    from .._utils import atomic_path

    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(result, indent=1))
    _print_table(result, out)
    return result


def _ridge_from_clinical(full: md.MuData, hidden: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Supervised reference: ridge regression from one-hot clinical covariates to each probe."""
    import pandas as pd
    from sklearn.linear_model import RidgeCV

    clin = full.mod["clinical"]
    table = pd.DataFrame(np.asarray(clin.X), columns=clin.var_names)
    cats = [c for c, t in zip(clin.var_names, clin.var["mdlprob_type"], strict=True) if t == "categorical"]
    X = pd.get_dummies(table.fillna(table.median()), columns=cats).to_numpy(dtype=float)
    X = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
    fit = RidgeCV(alphas=np.logspace(-2, 4, 25)).fit(X[~hidden], truth[~hidden])
    resid_sd = (truth[~hidden] - fit.predict(X[~hidden])).std(0, ddof=1)
    return fit.predict(X), np.broadcast_to(resid_sd, truth.shape)


def _print_table(result: dict, out: Path) -> None:
    import typer

    typer.echo(f"\nImputation of {result['n_features']} expression probes for {result['n_hidden']} of "
               f"{result['n_patients']} patients, from their clinical data only (hidden entries):")
    typer.echo(f"{'method':<14}{'Pearson r':>10}{'RMSE':>8}{'90% cover':>11}{'50% cover':>11}")
    rows = (("poe_vae", "PoEVAE"), ("feature_mean", "feature mean"), ("ridge_clinical", "ridge (sup.)"))
    for name, label in rows:
        r = result[name]
        rr = "-" if name == "feature_mean" else f"{r['pearson_r']:.3f}"
        typer.echo(f"{label:<14}{rr:>10}{r['rmse']:>8.3f}{r['coverage_90']:>11.3f}{r['coverage_50']:>11.3f}")
    typer.echo("(per-feature Pearson r averaged over probes; the feature mean is constant, so its r is undefined;\n"
               " ridge: a supervised regression clinical -> each probe, Gaussian intervals from its residual sd)\n"
               f"Wrote {out / 'demo.png'}, {out / 'metrics.json'} and {out / 'model'} in {result['seconds']} s.")


def _figure(path: Path, truth, imp, hidden, losses, result) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .._utils import atomic_path

    r = np.array([np.corrcoef(truth[hidden, g], imp.layers["mean"][hidden, g])[0, 1] for g in range(truth.shape[1])])
    g = int(np.nanargmax(r))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    t, m = truth[hidden, g], imp.layers["mean"][hidden, g]
    lo, hi = imp.layers["q05"][hidden, g], imp.layers["q95"][hidden, g]
    inside = (t >= lo) & (t <= hi)
    ax.errorbar(t, m, yerr=[m - lo, hi - m], fmt="none", ecolor="0.75", lw=0.8, zorder=1)
    ax.scatter(t[inside], m[inside], s=12, c="tab:blue", label="truth inside 90% interval", zorder=2)
    ax.scatter(t[~inside], m[~inside], s=12, c="tab:red", label="truth outside", zorder=2)
    lims = [min(t.min(), lo.min()), max(t.max(), hi.max())]
    ax.plot(lims, lims, "k--", lw=0.8)
    ax.set(xlabel="true expression (hidden)", ylabel="imputed mean, 90% interval",
           title=f"{imp.var_names[g]} (best probe, r={r[g]:.2f})")
    ax.legend(fontsize=8, loc="upper left")
    axes[1].hist(r[np.isfinite(r)], bins=20, color="tab:blue")
    axes[1].axvline(np.nanmean(r), color="k", ls="--", lw=1)
    axes[1].set(xlabel="Pearson r on hidden patients", ylabel="probes",
                title=f"Per-probe imputation r (mean {np.nanmean(r):.2f})")
    axes[2].plot(np.arange(1, len(losses["train_loss"]) + 1), losses["train_loss"], color="tab:blue", label="train")
    if losses["val_loss"]:
        axes[2].plot(np.arange(1, len(losses["val_loss"]) + 1), losses["val_loss"], color="tab:orange", label="validation")
    axes[2].legend(fontsize=8)
    axes[2].set(xlabel="epoch", ylabel="negative ELBO per patient", title="Training curve")
    fig.suptitle(f"mdlprob demo: 90% coverage {result['poe_vae']['coverage_90']:.2f} "
                 f"(feature-mean baseline {result['feature_mean']['coverage_90']:.2f}); "
                 f"RMSE {result['poe_vae']['rmse']:.3f} vs {result['feature_mean']['rmse']:.3f}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)

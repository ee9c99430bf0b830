"""Report of a suite run: a markdown summary (mean ± sd over seeds) and PNG figures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .._utils import atomic_path, progress
from ._runner import read_results

#: Metric to direction: 1 higher is better, -1 lower is better; coverages are scored by their
#: distance to the nominal level.
DIRECTION = {"pearson": 1, "spearman": 1, "rmse": -1, "crps": -1, "knn_accuracy": 1, "silhouette": 1,
             "accuracy": 1, "macro_f1": 1, "auroc": 1, "ece": -1, "harrell_c": 1, "uno_c": 1, "ibs": -1}
NOMINAL = {"coverage_50": 0.5, "coverage_90": 0.9}
TABLE_METRICS = ["pearson", "rmse", "coverage_90", "crps", "knn_accuracy", "accuracy", "auroc", "harrell_c", "ibs",
                 "fit_s"]
PLOT_METRICS = ["pearson", "rmse", "coverage_90", "crps"]


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, sd and count over seeds of every (dataset, scenario, rate, method, metric)."""
    ok = table[(table["status"] == "ok") & (table["metric"] != "")]
    keys = ["dataset", "scenario", "rate", "method", "metric"]
    return ok.groupby(keys, sort=True)["value"].agg(["mean", "std", "count"]).reset_index()


def ranks(summary: pd.DataFrame) -> pd.DataFrame:
    """Mean rank (1 = best) of each method per dataset, over scenarios, rates and ranked metrics."""
    parts = []
    for metric, grp in summary.groupby("metric"):
        if metric in NOMINAL:
            score = -(grp["mean"] - NOMINAL[metric]).abs()
        elif metric in DIRECTION:
            score = DIRECTION[metric] * grp["mean"]
        else:
            continue
        grp = grp.assign(score=score)
        grp["rank"] = grp.groupby(["dataset", "scenario", "rate"])["score"].rank(ascending=False, method="average")
        parts.append(grp)
    if not parts:
        return pd.DataFrame(columns=["dataset", "method", "rank"])
    return pd.concat(parts).groupby(["dataset", "method"])["rank"].mean().reset_index()


def _cell_text(mean: float, sd: float, n: int) -> str:
    if np.isnan(mean):
        return ""
    return f"{mean:.3f}" if n < 2 or np.isnan(sd) else f"{mean:.3f} ± {sd:.3f}"


def markdown_table(df: pd.DataFrame) -> str:
    """``df`` as a markdown table: floats with 3 decimals, NaN as an empty cell, the rest as ``str``."""

    def fmt(v) -> str:
        if isinstance(v, float | np.floating):
            return "" if np.isnan(v) else f"{v:.3f}"
        return str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _dataset_section(summary: pd.DataFrame, dataset: str) -> list[str]:
    sub = summary[summary["dataset"] == dataset]
    metrics = [m for m in TABLE_METRICS if m in set(sub["metric"])]
    rows = []
    for (scenario, rate, method), grp in sub.groupby(["scenario", "rate", "method"], sort=True):
        by = grp.set_index("metric")
        rows.append([scenario, f"{rate:g}", method, *(
            _cell_text(by.at[m, "mean"], by.at[m, "std"], by.at[m, "count"]) if m in by.index else ""
            for m in metrics)])
    return [f"## {dataset}", "", markdown_table(pd.DataFrame(rows, columns=["scenario", "rate", "method", *metrics])),
            ""]


def _failures(table: pd.DataFrame) -> list[str]:
    bad = table[table["status"].isin(["error", "skipped"])].drop_duplicates("cell")
    if bad.empty:
        return []
    df = bad[["dataset", "scenario", "rate", "method", "seed", "status", "error"]].copy()
    df["error"] = df["error"].str.replace("|", "/", regex=False).str.slice(0, 200)
    return ["## Failed and skipped cells", "", markdown_table(df), ""]


def _savefig(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)


def _rate_figure(summary: pd.DataFrame, dataset: str, path: Path) -> bool:
    import matplotlib.pyplot as plt

    sub = summary[(summary["dataset"] == dataset) & summary["metric"].isin(PLOT_METRICS)]
    scenarios = sorted(sub["scenario"].unique())
    metrics = [m for m in PLOT_METRICS if m in set(sub["metric"])]
    if not scenarios or not metrics:
        return False
    from ..plotting import method_colors

    methods = sorted(sub["method"].unique())
    colors = method_colors(methods)
    fig, axes = plt.subplots(len(metrics), len(scenarios), figsize=(3.6 * len(scenarios), 2.8 * len(metrics)),
                             squeeze=False)
    for i, metric in enumerate(metrics):
        for j, scenario in enumerate(scenarios):
            ax = axes[i, j]
            for method, grp in sub[(sub["metric"] == metric) & (sub["scenario"] == scenario)].groupby("method"):
                grp = grp.sort_values("rate")
                ax.errorbar(grp["rate"], grp["mean"], yerr=grp["std"].fillna(0.0), marker="o", ms=3, capsize=2,
                            color=colors[method], label=method)
            if metric in NOMINAL:
                ax.axhline(NOMINAL[metric], color="k", ls="--", lw=0.8)
            ax.set(xlabel="missing rate", ylabel=metric if j == 0 else "", title=f"{scenario}" if i == 0 else "")
    handles = [plt.Line2D([], [], color=c, marker="o", label=m) for m, c in colors.items()]
    fig.legend(handles=handles, loc="upper center", ncol=min(len(methods), 6), fontsize=8, frameon=False)
    fig.suptitle(dataset, y=0.995, fontsize=10, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    _savefig(fig, path)
    plt.close(fig)
    return True


def _rank_figure(rank: pd.DataFrame, path: Path) -> bool:
    import matplotlib.pyplot as plt

    if rank.empty:
        return False
    grid = rank.pivot(index="method", columns="dataset", values="rank")
    grid = grid.loc[grid.mean(axis=1).sort_values().index]
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * grid.shape[1], 0.9 + 0.4 * grid.shape[0]))
    im = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis_r", aspect="auto")
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=30, ha="right")
    ax.set_yticks(range(grid.shape[0]), grid.index)
    for (i, j), v in np.ndenumerate(grid.to_numpy(dtype=float)):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.1f}", ha="center", va="center", color="w", fontsize=8)
    fig.colorbar(im, ax=ax, label="mean rank (1 = best)")
    ax.set_title("Mean rank over scenarios, rates and metrics", fontsize=9)
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)
    return True


def write_report(out: str | os.PathLike) -> list[Path]:
    """Write ``report.md``, ``rate_<dataset>.png`` and ``ranks.png`` into the suite folder ``out``.

    Returns
    -------
    The paths written.

    Raises
    ------
    FileNotFoundError
        When ``out`` holds no ``results.csv``.
    """
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out)
    if not (out / "results.csv").exists():
        msg = f"No results.csv in {out}; run `mdlprob bench --out {out}` first."
        raise FileNotFoundError(msg)
    table = read_results(out)
    summary = summarise(table)
    rank = ranks(summary)
    written = []
    datasets = sorted(summary["dataset"].unique())
    bar = progress(len(datasets) + 2, "bench-report: figures and report")
    for dataset in datasets:
        path = out / f"rate_{dataset}.png"
        if _rate_figure(summary, dataset, path):
            written.append(path)
        bar.update()
    if _rank_figure(rank, out / "ranks.png"):
        written.append(out / "ranks.png")
    bar.update()
    n_cells = table["cell"].nunique()
    status = table.drop_duplicates("cell")["status"].value_counts().to_dict()
    lines = ["# Benchmark report", "", f"{n_cells} cells: " + ", ".join(f"{v} {k}" for k, v in sorted(status.items())) +
             ". Values are mean ± sd over seeds. Imputation metrics are computed on the entries each scenario "
             "hid (log1p scale for counts); `coverage_90` is the fraction of hidden entries inside the 90% "
             "predictive interval; downstream metrics on a held-out 30% split.", ""]
    if not rank.empty:
        lines += ["## Mean rank (1 = best)", "", markdown_table(
            rank.pivot(index="method", columns="dataset", values="rank").round(2).reset_index()), ""]
    for dataset in sorted(summary["dataset"].unique()):
        lines += _dataset_section(summary, dataset)
    lines += _failures(table)
    lines += [f"![{p.stem}]({p.name})" for p in written]
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    bar.update()
    bar.close()
    return [out / "report.md", *written]

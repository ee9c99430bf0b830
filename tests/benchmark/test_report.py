"""Report: mean ± sd over seeds, ranks, failures, figures; scoring of known predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mdlprob
from mdlprob.benchmark import (
    COLUMNS,
    LEVELS,
    CellContext,
    Prediction,
    load_dataset,
    missingness,
    score,
    summarise,
    write_report,
)
from mdlprob.benchmark._report import ranks

PNG = b"\x89PNG\r\n\x1a\n"


def _row(method, seed, rate, metric, value, status="ok", error=""):
    row = dict.fromkeys(COLUMNS, "")
    row.update(cell=f"{method}-{seed}-{rate}", dataset="synthetic", scenario="mcar", rate=rate, method=method,
               seed=seed, metric=metric, value=value, status=status, error=error, wall_s=1.0)
    return row


@pytest.fixture
def results(tmp_path):
    rows = []
    for rate in (0.2, 0.5):
        for seed, (good, bad) in enumerate([(0.5, 0.1), (0.7, 0.3)]):
            rows += [_row("good", seed, rate, "pearson", good), _row("bad", seed, rate, "pearson", bad),
                     _row("good", seed, rate, "coverage_90", 0.88), _row("bad", seed, rate, "coverage_90", 0.6)]
    rows.append(_row("broken", 0, 0.2, "", np.nan, status="error", error="RuntimeError: x | y"))
    pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp_path / "results.csv", index=False)
    return tmp_path


def test_summary_is_mean_and_sd_over_seeds(results):
    table = pd.read_csv(results / "results.csv")
    summary = summarise(table).set_index(["method", "rate", "metric"])
    assert summary.loc[("good", 0.2, "pearson"), "mean"] == pytest.approx(0.6)
    assert summary.loc[("good", 0.2, "pearson"), "std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert summary.loc[("good", 0.2, "pearson"), "count"] == 2
    assert "broken" not in summary.index.get_level_values("method")
    rank = ranks(summarise(table)).set_index("method")["rank"]
    assert rank["good"] == 1.0 and rank["bad"] == 2.0  # higher r and coverage closer to 0.9


def test_report_writes_markdown_and_pngs(results):
    paths = write_report(results)
    md = (results / "report.md").read_text()
    assert "| mcar | 0.2 | good | 0.600 ± 0.141 |" in md
    assert "## Failed and skipped cells" in md and "RuntimeError: x / y" in md
    for name in ("rate_synthetic.png", "ranks.png"):
        assert (results / name).read_bytes()[:8] == PNG
        assert results / name in paths
    assert not list(results.glob(".*"))


def test_report_needs_results(tmp_path):
    with pytest.raises(FileNotFoundError, match="No results.csv"):
        write_report(tmp_path)


def _context(prediction_from_truth):
    data = load_dataset("synthetic", seed=0, n_obs=150, n_rna=10, n_protein=5)
    hidden, truth = missingness.mcar(data.mdata, modality="protein", rate=0.4, seed=0)
    ctx = CellContext(data, hidden, truth, 0, {"head_epochs": 30})
    return ctx, prediction_from_truth(truth.values)


def test_perfect_imputation_scores_perfectly():
    ctx, pred = _context(lambda v: Prediction(mean=v, quantiles=dict.fromkeys(LEVELS, v)))
    metrics, notes = score(ctx, pred)
    assert metrics["pearson"] == pytest.approx(1.0) and metrics["spearman"] == pytest.approx(1.0)
    assert metrics["rmse"] == pytest.approx(0.0) and metrics["crps"] == pytest.approx(0.0)
    assert metrics["coverage_90"] == pytest.approx(0.0)  # a zero-width interval covers none of a count's unit bin
    assert notes == []
    _, wide = _context(lambda v: Prediction(mean=v, quantiles={q: v + (q > 0.5) - 0.5 * (q != 0.5) for q in LEVELS}))
    wide_metrics, _ = score(ctx, wide)
    assert wide_metrics["coverage_50"] == pytest.approx(1.0) and wide_metrics["coverage_90"] == pytest.approx(1.0)


def test_latent_equal_to_true_z_beats_noise():
    mdlprob.settings.seed = 0
    ctx, _ = _context(lambda v: None)
    z = np.asarray(ctx.mdata.obsm["z_true"], dtype=np.float64)
    true_scores, _ = score(ctx, Prediction(latent=z))
    noise, _ = score(ctx, Prediction(latent=np.random.default_rng(123).normal(size=z.shape)))  # not synthetic()'s stream
    assert true_scores["harrell_c"] > noise["harrell_c"] + 0.05
    assert true_scores["accuracy"] > noise["accuracy"]
    assert "pearson" not in true_scores  # no imputation returned, none scored

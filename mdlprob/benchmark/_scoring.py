"""Scoring of one cell: imputation, latent, classification and survival metrics.

Every metric is computed with :mod:`mdlprob.metrics` (latent kNN accuracy and silhouette
with scikit-learn). Imputation is scored on the entries the scenario hid (counts on log1p
values; categorical table columns are not scored); the downstream tasks on a held-out split.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import metrics
from ._frame import continuous_columns
from ._methods import LEVELS, CellContext, Prediction

_TEST_FRACTION = 0.3
_MIN_PER_CLASS = 2


def downstream_split(ctx: CellContext) -> tuple[np.ndarray, np.ndarray]:
    """Bool ``(train, test)`` masks over observations for the supervised tasks.

    The dataset's fixed split when it has one, else a seeded 30% test split, stratified by
    the label when there is one (by ``event`` for survival data).
    """
    n = ctx.mdata.n_obs
    if ctx.data.test is not None:
        test = np.asarray(ctx.data.test, dtype=bool)
        return ~test, test
    rng = np.random.default_rng(ctx.seed + 7919)
    obs = ctx.mdata.obs
    if ctx.data.label_key is not None:
        strata = obs[ctx.data.label_key].astype(str).to_numpy()
    elif ctx.data.survival:
        strata = obs["event"].astype(str).to_numpy()
    else:
        strata = np.zeros(n, dtype=str)
    test = np.zeros(n, dtype=bool)
    for level in np.unique(strata):
        idx = rng.permutation(np.flatnonzero(strata == level))
        test[idx[: round(_TEST_FRACTION * idx.size)]] = True
    return ~test, test


def _finite_mean(values: np.ndarray) -> float:
    finite = np.isfinite(values)
    return float(values[finite].mean()) if finite.any() else float("nan")


def imputation_scores(ctx: CellContext, pred: Prediction) -> dict[str, float]:
    """Pearson/Spearman per feature (mean over features), RMSE, 50/90% coverage and CRPS."""
    truth = ctx.truth
    mask = truth.entries & continuous_columns(ctx.data.mdata, truth.modality)[None, :]
    if pred.mean is None or not mask.any():
        return {}
    count = ctx.data.is_count(truth.modality)
    tf = np.log1p if count else (lambda a: a)
    y = np.where(mask, truth.values, np.nan)
    mean = np.where(mask, pred.mean, 0.0)
    out = {
        "pearson": _finite_mean(metrics.pearson_per_feature(tf(y), tf(mean), mask=mask)),
        "spearman": _finite_mean(metrics.spearman_per_feature(tf(y), tf(mean), mask=mask)),
        "rmse": metrics.rmse(tf(y), tf(mean), mask=mask),
    }
    q = pred.quantiles or {}
    for level, lo, hi in ((50, 0.25, 0.75), (90, 0.05, 0.95)):
        if lo in q and hi in q:
            out[f"coverage_{level}"] = metrics.interval_coverage(
                y, np.where(mask, q[lo], 0.0), np.where(mask, q[hi], 0.0), mask=mask, discrete=count)
    if all(level in q for level in LEVELS):
        samples = np.stack([np.where(mask, q[level], 0.0) for level in LEVELS])
        out["crps"] = metrics.crps(tf(y), tf(samples), mask=mask)
    return out


def latent_scores(ctx: CellContext, pred: Prediction, train: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """15-NN label accuracy (train to test latents) and the label silhouette of the latent."""
    from sklearn.metrics import silhouette_score
    from sklearn.neighbors import KNeighborsClassifier

    key = ctx.data.label_key
    if pred.latent is None or key is None:
        return {}
    labels = ctx.mdata.obs[key].astype(str).to_numpy()
    known = ctx.mdata.obs[key].notna().to_numpy()
    tr, te = train & known, test & known
    knn = KNeighborsClassifier(n_neighbors=min(15, int(tr.sum()))).fit(pred.latent[tr], labels[tr])
    out = {"knn_accuracy": float((knn.predict(pred.latent[te]) == labels[te]).mean())}
    if np.unique(labels[known]).size > 1:
        out["silhouette"] = float(silhouette_score(pred.latent[known], labels[known]))
    return out


def classification_scores(ctx: CellContext, pred: Prediction, train: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1, AUROC and ECE of a :class:`~mdlprob.heads.ClassifierHead` on the latent."""
    from ..heads import ClassifierHead

    key = ctx.data.label_key
    X = pred.latent_samples if pred.latent_samples is not None else pred.latent
    if X is None or key is None:
        return {}
    col = ctx.mdata.obs[key]
    known = col.notna().to_numpy()
    classes, codes = np.unique(col[known].astype(str).to_numpy(), return_inverse=True)
    y = np.full(ctx.mdata.n_obs, -1)
    y[known] = codes
    tr, te = train & known, test & known
    if np.bincount(y[tr], minlength=classes.size).min() < _MIN_PER_CLASS:
        return {}
    head = ClassifierHead(max_epochs=ctx.train["head_epochs"], random_state=ctx.seed)
    head.fit(X[..., tr, :], y[tr])
    proba = np.zeros((int(te.sum()), classes.size))
    proba[:, head.classes_] = head.predict_proba(X[..., te, :])
    return {
        "accuracy": metrics.accuracy(y[te], proba),
        "macro_f1": metrics.macro_f1(y[te], proba),
        "auroc": metrics.auroc(y[te], proba),
        "ece": metrics.expected_calibration_error(y[te], proba),
    }


def bootstrap_classification(y: np.ndarray, proba: np.ndarray, rng: np.random.Generator, *,
                             n_boot: int = 2000) -> dict[str, float]:
    """Accuracy and macro-F1 with 90% bootstrap intervals over observations, and ECE.

    Keys ``accuracy``, ``accuracy_lo``, ``accuracy_hi``, ``macro_f1`` (and its ``_lo``/``_hi``),
    ``ece``; the intervals are the 5% and 95% quantiles over ``n_boot`` resamples of rows.
    """
    out: dict[str, float] = {}
    for name, fn in (("accuracy", metrics.accuracy), ("macro_f1", metrics.macro_f1)):
        boot = [fn(y[idx], proba[idx]) for idx in rng.integers(y.size, size=(n_boot, y.size))]
        out[name] = fn(y, proba)
        out[f"{name}_lo"], out[f"{name}_hi"] = (float(q) for q in np.quantile(boot, [0.05, 0.95]))
    out["ece"] = metrics.expected_calibration_error(y, proba)
    return out


def _eval_times(t_train: np.ndarray, t_test: np.ndarray, e_train: np.ndarray) -> np.ndarray:
    """Ten times inside the follow-up of both splits, between their 10% and 80% quantiles."""
    lo = max(np.quantile(t_test, 0.1), t_test.min())
    hi = min(np.quantile(t_test, 0.8), t_train[e_train.astype(bool)].max(), t_test.max())
    return np.unique(np.linspace(lo, hi, 10)) if hi > lo else np.array([lo])


def survival_scores(ctx: CellContext, pred: Prediction, train: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """Harrell's and Uno's C and the integrated Brier score on the test split."""
    from sksurv.util import Surv

    from ..heads import CoxPHHead

    if not ctx.data.survival:
        return {}
    obs = ctx.mdata.obs
    event, time_ = obs["event"].to_numpy().astype(bool), obs["time"].to_numpy(dtype=np.float64)
    y_train = Surv.from_arrays(event[train], time_[train])
    y_test = Surv.from_arrays(event[test], time_[test])
    times = _eval_times(time_[train], time_[test], event[train])
    risk, surv = _risk_and_survival(ctx, pred, train, test, y_train, times, CoxPHHead)
    if risk is None:
        return {}
    out = {"harrell_c": metrics.harrell_c(event[test], time_[test], risk),
           "uno_c": metrics.uno_c(y_train, y_test, risk)}
    if surv is not None and times.size >= 2:
        out["ibs"] = metrics.integrated_brier_score(y_train, y_test, surv, times)
    return out


def _risk_and_survival(ctx: CellContext, pred: Prediction, train: np.ndarray, test: np.ndarray, y_train: Any,
                       times: np.ndarray, head_cls: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    if pred.risk is not None:
        surv = pred.survival_function(times)[test] if pred.survival_function is not None else None
        return np.asarray(pred.risk)[test], surv
    X = pred.latent_samples if pred.latent_samples is not None else pred.latent
    if X is None:
        return None, None
    head = head_cls(max_epochs=ctx.train["head_epochs"], random_state=ctx.seed).fit(X[..., train, :], y_train)
    return head.predict_risk(X[..., test, :]), head.predict_survival_function(X[..., test, :], times)


def score(ctx: CellContext, pred: Prediction) -> tuple[dict[str, float], list[str]]:
    """Every metric that applies to ``pred`` in this cell, plus fit time and observations/s.

    Returns the metrics and notes on tasks that could not be scored (e.g. a test split
    without events); such a task is left out rather than failing the cell.
    """
    train, test = downstream_split(ctx)
    out: dict[str, float] = {}
    notes: list[str] = []
    tasks = {"imputation": lambda: imputation_scores(ctx, pred),
             "latent": lambda: latent_scores(ctx, pred, train, test),
             "classification": lambda: classification_scores(ctx, pred, train, test),
             "survival": lambda: survival_scores(ctx, pred, train, test)}
    for task, run in tasks.items():
        try:
            out.update(run())
        except ValueError as err:
            notes.append(f"{task} not scored: {err}")
    out["fit_s"] = float(pred.fit_s)
    if pred.n_processed and pred.fit_s > 0:
        out["obs_per_s"] = pred.n_processed / pred.fit_s
    out.update(pred.extra)
    return out, notes

"""What each modality contributes at cohort level: the metric of every subset, Shapley values, the cost curve."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import mudata as md
import numpy as np
import pandas as pd

from ..base._validate import check_int, check_subset
from ..heads import LatentHead
from ..metrics import harrell_c, pearson_per_feature
from ._acquisition import _check_costs
from ._targets import check_model, check_target

Metric = Callable[[Any, np.ndarray], float]
METRICS = ("accuracy", "c_index", "imputation_r")


@dataclass
class Contributions:
    """Result of :func:`modality_contributions`.

    Attributes
    ----------
    subsets
        One row per evaluated subset of modalities (index: names joined by ``+``, ``"none"``
        for the empty set): ``n_modalities``, ``cost``, ``value`` (the metric on all
        observations) and its bootstrap ``lower``/``upper`` bounds.
    shapley
        One row per modality: its Shapley value ``value`` and bootstrap ``lower``/``upper``;
        the values add up to the full set's metric minus the empty set's.
    metric
        Name of the metric.
    level
        Coverage of the bootstrap intervals.
    """

    subsets: pd.DataFrame
    shapley: pd.DataFrame
    metric: str
    level: float

    def cost_curve(self) -> pd.DataFrame:
        """The best subset of each size: ``subset``, ``value``, ``lower``, ``upper``, ``cost``, indexed by ``n_modalities``.

        The review's "cost against number of modalities": how much the metric still gains
        from each further modality, and what the best such set costs.
        """
        best = self.subsets.sort_values("value", ascending=False, kind="stable").groupby("n_modalities").head(1)
        out = best.rename_axis("subset").reset_index().set_index("n_modalities").sort_index()
        return out[["subset", "value", "lower", "upper", "cost"]]


def _metric(metric: str | Metric | None, kind: str) -> tuple[str, Metric]:
    default = {"classifier": "accuracy", "survival": "c_index", "impute": "imputation_r"}[kind]
    if metric is None:
        metric = default
    if callable(metric):
        return getattr(metric, "__name__", "metric"), metric
    if metric != default:
        msg = f"Expected metric to be {default!r} for this target, or a callable (y_true, prediction) -> float, got {metric!r}."
        raise ValueError(msg)
    return metric, {"accuracy": _accuracy, "c_index": _c_index, "imputation_r": _imputation_r}[metric]


def _accuracy(y: np.ndarray, proba_and_classes: tuple[np.ndarray, np.ndarray]) -> float:
    proba, classes = proba_and_classes
    return float(np.mean(classes[proba.argmax(1)] == y))


def _c_index(y: np.ndarray, risk: np.ndarray) -> float:
    event, time = y[y.dtype.names[0]], y[y.dtype.names[1]]
    return harrell_c(event.astype(bool), time, risk)


def _imputation_r(truth: np.ndarray, pred: np.ndarray) -> float:
    """Mean Pearson r over features; a constant prediction (the empty set) correlates 0."""
    with np.errstate(all="ignore"):
        r = pearson_per_feature(truth, pred)
    return float(np.nan_to_num(np.nanmean(r)) if np.isfinite(r).any() else 0.0)


class _Predictor:
    """Predictions given a subset of modalities, for the metric, with ``take(pred, rows)`` to resample them."""

    def __init__(self, model: Any, mdata: md.MuData, target: Any, impute: str | None, n_samples: int) -> None:
        self.model, self.mdata, self.target, self.impute, self.n_samples = model, mdata, target, impute, n_samples
        if impute is not None:
            self.kind = "impute"
            j = model.modalities.index(impute)
            self.rows = np.flatnonzero(model.tensors(mdata).presence[:, j].cpu().numpy())
            from ..data import dense_values

            self.truth = dense_values(mdata, impute)[self.rows]
            return
        head = target.head_ if isinstance(target, LatentHead) else target
        self.kind = "classifier" if hasattr(head, "predict_proba") else "survival"
        self.classes = getattr(head, "classes_", None)
        self.rows = np.arange(mdata.n_obs)

    def __call__(self, given: list[str]) -> np.ndarray:
        model, mdata = self.model, self.mdata
        if self.kind == "impute":
            if not given:  # nothing known: every feature's mean
                return np.broadcast_to(np.nanmean(self.truth, 0), self.truth.shape)
            pred = model.impute(mdata, self.impute, given=given, n_samples=self.n_samples).layers["mean"]
            return np.asarray(pred, dtype=np.float64)[self.rows]
        name = "predict_proba" if self.kind == "classifier" else "predict_risk"
        if isinstance(self.target, LatentHead):
            return np.asarray(getattr(self.target, name)(mdata, given=given), dtype=np.float64)
        if given:
            X = model.sample_latent(mdata, given=given, n_samples=self.n_samples)
        else:
            X = model.sample_latent(mdata, mask=np.zeros((mdata.n_obs, len(model.modalities)), dtype=bool),
                                    n_samples=self.n_samples)
        return np.asarray(getattr(self.target, name)(X), dtype=np.float64)

    def score(self, metric: Metric, y: Any, pred: np.ndarray, rows: np.ndarray) -> float:
        if self.kind == "impute":
            return float(metric(self.truth[rows], pred[rows]))
        if self.kind == "classifier" and metric is _accuracy:
            return metric(y[rows], (pred[rows], self.classes))
        return float(metric(y[rows], pred[rows]))


def _coalitions(players: list[str], max_exact: int, n_permutations: int,
                rng: np.random.Generator) -> tuple[list[frozenset], list[list[str]] | None]:
    """Every subset (``len(players) <= max_exact``), else the prefixes of random permutations, and those permutations."""
    if len(players) <= max_exact:
        subsets = [frozenset(c) for k in range(len(players) + 1) for c in itertools.combinations(players, k)]
        return subsets, None
    perms = [list(rng.permutation(players)) for _ in range(n_permutations)]
    seen = dict.fromkeys(frozenset(p[:k]) for p in perms for k in range(len(players) + 1))
    return list(seen), perms


def _shapley(values: Mapping[frozenset, np.ndarray], players: list[str], perms: list[list[str]] | None) -> np.ndarray:
    """Shapley values ``(n_players, n_replicates)`` from coalition values ``(n_replicates,)``."""
    n = len(players)
    out = np.zeros((n, len(next(iter(values.values())))))
    if perms is None:
        for j, m in enumerate(players):
            others = [p for p in players if p != m]
            for k in range(n):
                weight = math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
                for c in itertools.combinations(others, k):
                    out[j] += weight * (values[frozenset(c) | {m}] - values[frozenset(c)])
        return out
    for perm in perms:
        for k, m in enumerate(perm):
            out[players.index(m)] += (values[frozenset(perm[: k + 1])] - values[frozenset(perm[:k])]) / len(perms)
    return out


def modality_contributions(model: Any, mdata: md.MuData, *, target: Any = None, y: Any = None,
                           impute: str | None = None, metric: str | Metric | None = None,
                           modalities: Sequence[str] | None = None, costs: Mapping[str, float] | None = None,
                           max_exact: int = 5, n_permutations: int = 64, n_bootstrap: int = 200, level: float = 0.9,
                           n_samples: int = 20, random_state: int | None = 0) -> Contributions:
    r"""The metric of each subset of modalities, their Shapley values with bootstrap intervals, and the cost curve.

    For each subset :math:`S` of the modalities, the prediction conditions on :math:`S`
    only (``given=S``; each observation uses the part of :math:`S` it has, the empty set
    gives the prior), and :math:`v(S)` is the metric over the observations. The Shapley
    value of modality :math:`m` is

    .. math::
        \phi_m = \sum_{S \subseteq M \setminus \{m\}} \frac{|S|!\,(|M|-|S|-1)!}{|M|!}
        \big(v(S \cup \{m\}) - v(S)\big),

    exact over all :math:`2^{|M|}` subsets when :math:`|M| \le` ``max_exact``, else
    estimated from ``n_permutations`` random orders. Intervals: ``n_bootstrap``
    resamples of the observations, each scoring every subset's (fixed) predictions on the
    same resample, so the model and head are not refitted: they cover the uncertainty of
    the cohort-level metric, not of the training.

    Parameters
    ----------
    target, y
        A fitted :class:`~mdlprob.heads.LatentHead` on ``model`` (or a head fitted on its
        latent draws) and the truth of ``mdata``: class labels, or a survival structured
        array (``sksurv.util.Surv``).
    impute
        Instead of a head: score the imputation of this modality (over the observations
        that have it) from subsets of the others; the empty set predicts each feature's mean.
    metric
        ``None``: accuracy (classifiers), Harrell's C (survival heads) or the mean
        per-feature Pearson r (``impute``). Or a callable ``metric(y_true, prediction)``,
        higher is better, on the rows of a resample: ``prediction`` is the class
        probabilities, the risks, or the imputed means.
    modalities
        The players (default every registered modality but ``impute``).
    costs
        Modality to cost (default 1 each); a subset costs the sum.
    level
        Coverage of the bootstrap intervals.
    n_samples
        Latent (or predictive) draws per prediction.
    random_state
        Seed of the resamples and permutations.
    """
    check_model(model)
    check_int("max_exact", max_exact, minimum=0)
    check_int("n_permutations", n_permutations, minimum=1)
    check_int("n_bootstrap", n_bootstrap, minimum=0)
    check_int("n_samples", n_samples, minimum=2)
    if not 0 < level < 1:
        msg = f"Expected level in (0, 1), got {level!r}."
        raise ValueError(msg)
    if impute is None:
        if target is None or isinstance(target, str) or y is None:
            msg = "Pass target (a fitted head) with y (its truth for mdata), or impute=<modality> to score imputation."
            raise ValueError(msg)
        check_target(model, target)
        y = np.asarray(y)
        if len(y) != mdata.n_obs:
            msg = f"Expected y to hold one value per observation of mdata ({mdata.n_obs}), got {len(y)}."
            raise ValueError(msg)
    elif impute not in model.modalities:
        msg = f"Expected impute to be one of the model's modalities {model.modalities}, got {impute!r}."
        raise ValueError(msg)
    default_players = [m for m in model.modalities if m != impute]
    players = check_subset("modalities", modalities, default_players)
    price = _check_costs(costs, players)
    predictor = _Predictor(model, mdata, target, impute, n_samples)
    name, fn = _metric(metric, predictor.kind)
    rng = np.random.default_rng(random_state)
    subsets, perms = _coalitions(players, max_exact, n_permutations, rng)
    n_rows = len(predictor.rows)
    resamples = [np.arange(n_rows)] + [rng.integers(0, n_rows, n_rows) for _ in range(n_bootstrap)]
    values = {}
    for s in subsets:
        pred = predictor([m for m in players if m in s])
        values[s] = np.array([predictor.score(fn, y, pred, r) for r in resamples])
    return _collect(values, players, perms, price, name, level)


def _collect(values: Mapping[frozenset, np.ndarray], players: list[str], perms: list[list[str]] | None,
             price: Mapping[str, float], name: str, level: float) -> Contributions:
    lo_q, hi_q = (1 - level) / 2, (1 + level) / 2

    def bounds(v: np.ndarray) -> tuple[float, float]:
        return (float(np.nanquantile(v[1:], lo_q)), float(np.nanquantile(v[1:], hi_q))) if len(v) > 1 else (np.nan,) * 2

    rows = {}
    for s, v in values.items():
        label = "+".join(m for m in players if m in s) or "none"
        rows[label] = {"n_modalities": len(s), "cost": sum(price[m] for m in s), "value": float(v[0]),
                       **dict(zip(("lower", "upper"), bounds(v), strict=True))}
    subsets = pd.DataFrame.from_dict(rows, orient="index")
    phi = _shapley(values, players, perms)
    shapley = pd.DataFrame([{"value": float(p[0]), **dict(zip(("lower", "upper"), bounds(p), strict=True))}
                            for p in phi], index=pd.Index(players, name="modality"))
    return Contributions(subsets=subsets, shapley=shapley, metric=name, level=level)

"""Model selection by cross-validation on Optuna: architecture, regularisation and optimiser settings."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import mudata as md
import numpy as np
import pandas as pd
import torch

from .._settings import settings
from ..base import BaseModel
from ..base._validate import check_int
from ..data import get_registry, hide_modality, subset
from ..data._mudata import dense_values, presence

#: Default search space: name -> ("int" | "int_log" | "float" | "float_log", low, high) or ("categorical", choices).
DEFAULT_SPACE: dict[str, tuple] = {
    "n_latent": ("int_log", 4, 64),
    "n_hidden": ("categorical", [32, 64, 128, 256]),
    "n_layers": ("int", 0, 2),
    "dropout": ("float", 0.0, 0.3),
    "lr": ("float_log", 3e-4, 1e-2),
    "weight_decay": ("float_log", 1e-6, 10.0),
}
_TRAIN_DEFAULTS = {"max_epochs": 300, "early_stopping": True, "patience": 20, "batch_size": 128}


@dataclass
class TuneResult:
    """Outcome of :func:`tune`.

    Attributes
    ----------
    best_params
        The chosen class (``model_cls``, its name) and values, split into ``model``
        (constructor) and ``train`` keyword arguments.
    best_value
        Mean cross-validated score of the chosen configuration (higher is better).
    trials
        One row per trial: parameters, per-fold scores, mean score and state.
    model
        The chosen configuration refitted on all of ``mdata`` (``None`` with ``refit=False``);
        its ``tuning_`` attribute (saved with the model) records this search.
    """

    best_params: dict[str, dict[str, Any]]
    best_value: float
    trials: pd.DataFrame
    model: BaseModel | None = None
    study: Any = field(default=None, repr=False)


def tune(
    model_cls: type[BaseModel] | str | Sequence[type[BaseModel] | str],
    mdata: md.MuData,
    *,
    objective: Literal["loglik", "imputation"] = "loglik",
    target: str | None = None,
    given: Sequence[str] | None = None,
    scoring: Literal["loglik", "pearson"] = "loglik",
    search_space: Mapping[str, tuple] | None = None,
    fixed: Mapping[str, Any] | None = None,
    n_trials: int = 20,
    n_folds: int = 3,
    timeout: float | None = None,
    refit: bool = True,
    progress_bar: bool | None = None,
    start_from: Sequence[Mapping[str, Any]] | None = None,
) -> TuneResult:
    r"""Choose a model's hyper-parameters by K-fold cross-validation, searched with Optuna's TPE.

    Each trial draws a configuration from ``search_space`` and scores it on ``n_folds`` folds
    of the observations (the same folds for every trial); a trial whose first folds score
    below the median of earlier trials is pruned. Training inside a fold uses early stopping
    on a 10% validation split, so the number of epochs is chosen too.

    Objectives (higher is better):

    * ``"loglik"``: inductive. Train on the other folds; score the held-out fold's
      importance-weighted :math:`\log p(x_{\text{observed}})` per observation
      (:meth:`~mdlprob.models.PoEVAE.log_likelihood`, 20 samples).
    * ``"imputation"``: transductive, as imputation is used. Hide ``target`` for the held-out
      fold's observations that have it, train on everything else, and score its prediction
      from ``given``: with ``scoring="loglik"`` the predictive log-density per hidden entry,
      :math:`\log \frac1S \sum_s p(x_t \mid z_s)`, :math:`z_s \sim q(z \mid x_{\text{given}})`
      (a proper score: it rewards calibrated spread as well as accuracy); with
      ``"pearson"`` the mean per-feature Pearson r of the predictive mean (log1p scale for
      count likelihoods).

    Parameters
    ----------
    model_cls
        A model class of :mod:`mdlprob.models` or its name; several make the class a
        categorical choice of the search (``best_params["model_cls"]`` names the winner).
    mdata
        Registered data (:func:`mdlprob.data.setup_mudata`).
    target, given
        For ``objective="imputation"``: the modality to predict and the ones to predict it
        from (default: all others).
    search_space
        Name to ``("int" | "int_log" | "float" | "float_log", low, high)`` or
        ``("categorical", [choices])``. Names of the model's constructor go to it, the others
        to ``train`` (``lr``, ``weight_decay``, ``beta``, ``batch_size``, ...). Default
        :data:`DEFAULT_SPACE`.
    fixed
        Values used in every trial (constructor or ``train`` arguments), e.g.
        ``{"decoder": "linear"}``.
    n_trials, timeout
        Budget: number of trials and/or seconds.
    n_folds
        Cross-validation folds (at least 2).
    refit
        Refit the best configuration on all of ``mdata`` and return it in ``model``.
    progress_bar
        Optuna's progress bar over trials (default: ``mdlprob.settings.show_progress``).
    start_from
        Configurations tried first (Optuna's ``enqueue_trial``), each a dict of search-space
        values (and ``model_cls`` when several classes compete); unnamed parameters are
        sampled. They count towards ``n_trials``. Use known-good settings so that a small
        budget on little data starts from them instead of from random points.

    Returns
    -------
    :class:`TuneResult`. The seed in force (``mdlprob.settings.seed``) seeds the folds, the
    sampler and every fit, so a search is reproducible.

    Examples
    --------
    >>> import mdlprob
    >>> from mdlprob.tune import tune
    >>> mdata = mdlprob.datasets.synthetic(150, missing={"protein": 0.3})
    >>> mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb", "clinical": "mixed"})
    >>> result = tune("PoEVAE", mdata, n_trials=2, n_folds=2, progress_bar=False,
    ...               search_space={"n_latent": ("int", 2, 4)}, fixed={"max_epochs": 2})
    >>> sorted(result.best_params)
    ['model', 'model_cls', 'train']
    """
    import optuna

    classes = [_model_class(c) for c in (model_cls if isinstance(model_cls, list | tuple) else [model_cls])]
    by_name = {c.__name__: c for c in classes}
    get_registry(mdata)
    check_int("n_trials", n_trials, minimum=1)
    check_int("n_folds", n_folds, minimum=2)
    if objective not in ("loglik", "imputation"):
        msg = f"Expected objective in ('loglik', 'imputation'), got {objective!r}."
        raise ValueError(msg)
    if scoring not in ("loglik", "pearson"):
        msg = f"Expected scoring in ('loglik', 'pearson'), got {scoring!r}."
        raise ValueError(msg)
    space = dict(DEFAULT_SPACE if search_space is None else search_space)
    for name, spec in space.items():
        _check_spec(name, spec)
    arguments = {name: _argument_names(c) for name, c in by_name.items()}
    known = set().union(*(m | t for m, t in arguments.values()))
    unknown = [k for k in [*space, *(fixed or {})] if k not in known]
    if unknown:
        msg = (f"{unknown} are arguments neither of the constructors nor of train() of {sorted(by_name)}; "
               f"known: {sorted(known)}.")
        raise ValueError(msg)
    folds = _folds(mdata, objective, target, given, n_folds)
    seed = settings.seed or 0

    def split(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        model_args, train_args = arguments[name]
        values = {**(fixed or {}), **params}
        return {"model_cls": name, "model": {k: v for k, v in values.items() if k in model_args},
                "train": {**_TRAIN_DEFAULTS, **{k: v for k, v in values.items() if k in train_args}}}

    def run(trial: optuna.Trial) -> float:
        name = trial.suggest_categorical("model_cls", list(by_name)) if len(by_name) > 1 else classes[0].__name__
        config = split(name, {key: _suggest(trial, key, spec) for key, spec in space.items()})
        scores = []
        for k, fold in enumerate(folds):
            settings.seed = seed + k
            scores.append(fold.score(by_name[name], config, scoring))
            trial.report(float(np.mean(scores)), k)
            if trial.should_prune():
                raise optuna.TrialPruned
        trial.set_user_attr("fold_scores", scores)
        return float(np.mean(scores))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0))
    for start in start_from or []:
        if not isinstance(start, Mapping):
            msg = f"Expected start_from to be a list of dicts of search-space values, got {start!r}."
            raise TypeError(msg)
        bad = [k for k in start if k not in space and k != "model_cls"]
        if bad or ("model_cls" in start and _class_name(start["model_cls"]) not in by_name):
            msg = (f"start_from entry {dict(start)!r} names {bad or [start['model_cls']]}, which are not in the "
                   f"search space {sorted(space)} (or the classes {sorted(by_name)}).")
            raise ValueError(msg)
        values = dict(start)
        if "model_cls" in values:
            values["model_cls"] = _class_name(values["model_cls"])
        study.enqueue_trial(values)
    show = settings.show_progress if progress_bar is None else progress_bar
    try:
        study.optimize(run, n_trials=n_trials, timeout=timeout, show_progress_bar=bool(show), catch=(FloatingPointError,))
    finally:
        settings.seed = seed
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        msg = "No trial of the search completed (all pruned or failed); widen the budget or the search space."
        raise RuntimeError(msg)
    chosen = dict(study.best_trial.params)
    best = split(chosen.pop("model_cls", classes[0].__name__), chosen)
    trials = study.trials_dataframe(attrs=("number", "value", "params", "user_attrs", "state"))
    model = None
    if refit:
        model = by_name[best["model_cls"]](mdata, **best["model"])
        model.train(progress_bar=False, **best["train"])
        model.tuning_ = {"objective": objective, "scoring": scoring, "target": target, "n_folds": n_folds,
                         "n_trials": len(study.trials), "best_value": float(study.best_value),
                         "best_params": best}
    return TuneResult(best_params=best, best_value=float(study.best_value), trials=trials, model=model, study=study)


# ------------------------------------------------------------------------------------ pieces
def _model_class(model_cls: type[BaseModel] | str) -> type[BaseModel]:
    from .. import models

    if isinstance(model_cls, str):
        registered = models.all_models()
        if model_cls not in registered:
            msg = f"Expected model_cls to name a model of mdlprob.models {list(registered)}, got {model_cls!r}."
            raise ValueError(msg)
        return registered[model_cls].cls
    if not (isinstance(model_cls, type) and issubclass(model_cls, BaseModel)):
        msg = f"Expected model_cls to be an mdlprob model class, got {model_cls!r}."
        raise TypeError(msg)
    return model_cls


def _argument_names(model_cls: type[BaseModel]) -> tuple[set[str], set[str]]:
    def names(fn) -> set[str]:
        return {p.name for p in inspect.signature(fn).parameters.values()
                if p.kind is p.KEYWORD_ONLY and p.name not in ("progress_bar",)}

    return names(model_cls.__init__), names(model_cls.train)


def _check_spec(name: str, spec: tuple) -> None:
    kinds = ("int", "int_log", "float", "float_log", "categorical")
    ok = isinstance(spec, tuple | list) and len(spec) >= 2 and spec[0] in kinds
    if ok and spec[0] == "categorical":
        ok = len(spec) == 2 and len(spec[1]) > 0
    elif ok:
        ok = len(spec) == 3 and spec[1] <= spec[2] and (not spec[0].endswith("log") or spec[1] > 0)
    if not ok:
        msg = (f"Search space entry {name!r} must be (kind, low, high) with kind in {kinds[:4]} and low <= high "
               f"(low > 0 for *_log), or ('categorical', [choices]); got {spec!r}.")
        raise ValueError(msg)


def _class_name(cls: Any) -> str:
    return cls if isinstance(cls, str) else getattr(cls, "__name__", str(cls))


def _suggest(trial, name: str, spec: tuple) -> Any:
    kind = spec[0]
    if kind == "categorical":
        return trial.suggest_categorical(name, list(spec[1]))
    if kind.startswith("int"):
        return trial.suggest_int(name, int(spec[1]), int(spec[2]), log=kind.endswith("log"))
    return trial.suggest_float(name, float(spec[1]), float(spec[2]), log=kind.endswith("log"))


@dataclass
class _Fold:
    """One cross-validation fold: training data and how to score the held-out part."""

    train: md.MuData
    heldout: md.MuData | None
    rows: np.ndarray
    target: str | None
    given: list[str] | None
    truth: np.ndarray | None

    def score(self, model_cls: type[BaseModel], config: dict[str, dict[str, Any]], scoring: str) -> float:
        model = model_cls(self.train, **config["model"])
        model.train(progress_bar=False, **config["train"])
        if self.target is None:
            return float(np.mean(model.log_likelihood(self.heldout, n_samples=20)))
        if scoring == "pearson":
            lik = model.module.likelihoods[self.target]
            mean = model.impute(self.train, self.target, given=self.given, n_samples=50).layers["mean"][self.rows]
            tf = np.log1p if lik.is_count else (lambda a: a)
            from ..metrics import pearson_per_feature

            r = pearson_per_feature(tf(self.truth), tf(mean), mask=~np.isnan(self.truth))
            return float(np.nanmean(r))
        return _predictive_log_density(model, self.train, self.target, self.given, self.rows, self.truth)


@torch.no_grad()
def _predictive_log_density(model: BaseModel, mdata: md.MuData, target: str, given: list[str] | None,
                            rows: np.ndarray, truth: np.ndarray, n_samples: int = 50) -> float:
    """Mean over hidden entries of :math:`\\log \\frac1S \\sum_s p(x_t \\mid z_s)`, :math:`z_s \\sim q(z \\mid x_{given})`."""
    module = model.module
    tensors = model.tensors(mdata)
    j = model.modalities.index(target)
    use = torch.tensor([m in (given or model.modalities) for m in model.modalities], device=model.device)
    idx = torch.as_tensor(np.flatnonzero(rows))
    batch = tensors.batch(idx, model.device)
    batch["x"][target] = torch.as_tensor(np.nan_to_num(truth), dtype=torch.float32, device=model.device)
    observed = torch.as_tensor(~np.isnan(truth), device=model.device)
    batch["observed"][target] = observed
    batch_use = use.expand_as(batch["presence"]) & batch["presence"]
    module.eval()
    z = module.sample_posterior(batch, batch_use, n_samples)
    batch["presence"] = batch["presence"].clone()
    batch["presence"][:, j] = True
    lp = module.likelihoods[target].log_prob(module.decode(target, z, batch), batch["x"][target])
    lp = torch.where(observed, lp, lp.new_zeros(()))
    per_entry = torch.logsumexp(lp, 0) - math.log(n_samples)
    return float(per_entry[observed].mean())


def _folds(mdata: md.MuData, objective: str, target: str | None, given: Sequence[str] | None,
           n_folds: int) -> list[_Fold]:
    rng = np.random.default_rng(settings.seed or 0)
    registry = get_registry(mdata)
    modalities = list(registry["modalities"])
    if objective == "loglik":
        order = rng.permutation(mdata.n_obs)
        out = []
        for k in range(n_folds):
            held = np.zeros(mdata.n_obs, dtype=bool)
            held[order[k::n_folds]] = True
            train, heldout = subset(mdata, ~held), subset(mdata, held)
            out.append(_Fold(train, heldout, held, None, None, None))
        return out
    if target not in modalities:
        msg = f"objective='imputation' needs target, one of the registered modalities {modalities}; got {target!r}."
        raise ValueError(msg)
    given = [m for m in modalities if m != target] if given is None else list(given)
    if target in given or any(m not in modalities for m in given) or not given:
        msg = f"Expected given to be a non-empty list of registered modalities other than {target!r}, got {given!r}."
        raise ValueError(msg)
    values = dense_values(mdata, target)
    has = np.flatnonzero(presence(mdata, target))
    if has.size < n_folds:
        msg = f"Only {has.size} observations have {target!r}; cross-validation needs at least n_folds={n_folds}."
        raise ValueError(msg)
    order = rng.permutation(has)
    out = []
    for k in range(n_folds):
        hide = np.zeros(mdata.n_obs, dtype=bool)
        hide[order[k::n_folds]] = True
        train = hide_modality(mdata, target, hide)
        out.append(_Fold(train, None, hide, target, given, values[hide]))
    return out

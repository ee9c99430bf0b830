"""mdlprob's recommended configuration per task kind, as ``benchmarks/real.py`` runs it.

Kept in one place so that the scoreboard states exactly what it measured.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import mdlprob
from mdlprob.heads import ClassifierHead, CoxPHHead, LatentHead
from mdlprob.models import Ensemble
from mdlprob.tune import tune

RECOMMENDED: dict[str, dict[str, Any]] = {
    "survival": {"model": "PoEVAE", "model_kwargs": {"n_latent": 16, "n_hidden": 64},
                 "train": {"max_epochs": 100, "batch_size": 128, "lr": 2e-3},
                 "head": "CoxPHHead(prior_scale='auto', max_epochs=500)", "covariates": ["age", "is_female"],
                 "modality_latents": "auto", "modality_dropout": 0.5, "n_samples": 20},
    "classification": {"model": "PoEVAE", "model_kwargs": {"n_latent": 32, "n_layers": 0},
                       "train": {"max_epochs": 300, "batch_size": 64, "lr": 2e-3},
                       "head": "ClassifierHead(prior_scale='auto', max_epochs=500)", "covariates": [],
                       "modality_latents": "auto", "modality_dropout": 0.5, "n_samples": 20},
    "imputation": {"search": "mdlprob.tune.tune([PoEVAE, MoPoEVAE], objective='imputation', scoring='loglik', "
                             "n_trials=20, n_folds=3, search_space=DEFAULT_SPACE)",
                   "then": "Ensemble of 5 seeds of the chosen configuration, intervals calibrated (split "
                           "conformal) on its validation rows"},
}
QUICK_TRAIN = {"max_epochs": 3}


def _model(name: str, mdata, seed: int, quick: bool):
    cfg = RECOMMENDED[name]
    mdlprob.settings.seed = seed
    model = getattr(mdlprob.models, cfg["model"])(mdata, **cfg["model_kwargs"])
    model.train(progress_bar=False, **{**cfg["train"], **(QUICK_TRAIN if quick else {})})
    return model


def latent_head(task: str, train_mdata, y, *, seed: int, quick: bool) -> LatentHead:
    """Fit the model on the training observations alone, then a :class:`LatentHead` on it."""
    cfg = RECOMMENDED[task]
    model = _model(task, train_mdata, seed, quick)
    epochs = 20 if quick else 500
    head = (CoxPHHead if task == "survival" else ClassifierHead)(prior_scale="auto", max_epochs=epochs, random_state=seed)
    est = LatentHead(model, head, covariates=cfg["covariates"] or None, modality_latents=cfg["modality_latents"],
                     modality_dropout=cfg["modality_dropout"], n_samples=3 if quick else cfg["n_samples"],
                     random_state=seed)
    return est.fit(train_mdata, y)


#: Generic starting points of the search (``--impute-start defaults``): each class with the package's
#: default sizes, with a one-layer and with a linear decoder. Not tuned on any shared data set.
DEFAULT_STARTS = [{"model_cls": cls, "n_latent": 16, "n_hidden": 128, "n_layers": layers, "dropout": 0.1, "lr": 1e-3,
                   "weight_decay": 1e-6} for cls in ("PoEVAE", "MoPoEVAE") for layers in (1, 0)]


def impute_recommended(view, target: str, given: list[str], *, seed: int, quick: bool, scoring: str = "loglik",
                       start: str = "none") -> dict:
    """Tune on ``view`` (cross-validated predictive log-density of ``target``), then a calibrated 5-seed ensemble.

    Returns the mean, 90% interval and 100 predictive draws of ``target`` for every row,
    and the chosen configuration.
    """
    mdlprob.settings.seed = seed
    res = tune(["PoEVAE", "MoPoEVAE"], view, objective="imputation", target=target, given=given, scoring=scoring,
               n_trials=2 if quick else 20, n_folds=3, refit=False, progress_bar=False,
               start_from=DEFAULT_STARTS if start == "defaults" else None,
               fixed=QUICK_TRAIN if quick else None)
    best = res.best_params
    ens = Ensemble(best["model_cls"], view, n_models=2 if quick else 5, **best["model"])
    ens.train(progress_bar=False, **best["train"])
    ens.calibrate_intervals(modalities=[target])  # split conformal on the members' shared validation rows
    imp = ens.impute(view, target, given=given, n_samples=200)
    draws = ens.sample_predictive(view, target, given=given, n_samples=100)
    return {"mean": imp.layers["mean"], "lower": imp.layers["q05"], "upper": imp.layers["q95"],
            "samples": np.asarray(draws), "config": best, "model": ens}

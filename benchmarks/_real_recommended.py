"""mdlprob's recommended configuration per task kind, as ``benchmarks/real.py`` runs it.

Kept in one place so that the scoreboard states exactly what it measured.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import mdlprob
from mdlprob.heads import ClassifierHead, CoxPHHead, LatentHead

RECOMMENDED: dict[str, dict[str, Any]] = {
    "survival": {"model": "PoEVAE", "model_kwargs": {"n_latent": 16, "n_hidden": 64},
                 "train": {"max_epochs": 100, "batch_size": 128, "lr": 2e-3},
                 "head": "CoxPHHead(prior_scale='auto', max_epochs=500)", "covariates": ["age", "is_female"],
                 "modality_dropout": 0.5, "n_samples": 20},
    "classification": {"model": "PoEVAE", "model_kwargs": {"n_latent": 32, "n_layers": 0},
                       "train": {"max_epochs": 300, "batch_size": 64, "lr": 2e-3},
                       "head": "ClassifierHead(prior_scale='auto', max_epochs=500)", "covariates": [],
                       "modality_dropout": 0.5, "n_samples": 20},
    "mixomics": {"model": "MoPoEVAE", "model_kwargs": {"n_latent": 64, "n_layers": 0},
                 "train": {"max_epochs": 200, "batch_size": 128, "lr": 2e-3, "weight_decay": 1.0,
                           "early_stopping": True, "patience": 20}},
    "citeseq": {"model": "PoEVAE", "model_kwargs": {"n_latent": 30},
                "train": {"max_epochs": 400, "batch_size": 128, "lr": 2e-3, "early_stopping": True, "patience": 30}},
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
    est = LatentHead(model, head, covariates=cfg["covariates"] or None, modality_dropout=cfg["modality_dropout"],
                     n_samples=3 if quick else cfg["n_samples"], random_state=seed)
    return est.fit(train_mdata, y)


def impute_recommended(name: str, view, target: str, given: list[str], *, seed: int, quick: bool) -> dict:
    """Mean, 90% interval and 100 predictive draws of ``target`` for every row of ``view``."""
    model = _model(name, view, seed, quick)
    imp = model.impute(view, target, given=given, n_samples=200)
    draws = model.sample_predictive(view, target, given=given, n_samples=100)
    return {"mean": imp.layers["mean"], "lower": imp.layers["q05"], "upper": imp.layers["q95"],
            "samples": np.asarray(draws)}

"""mdlprob: missing-modality-robust probabilistic multimodal models.

Learn one probabilistic latent space from whatever views each sample has, impute the
absent views with calibrated uncertainty, and feed that uncertainty downstream.
"""

from __future__ import annotations

__version__ = "0.1.0"

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load on first use
    from . import data, datasets, distributions, fusion, heads, interpret, metrics, models, plotting, tune
    from . import plotting as pl
    from ._settings import settings
    from .models import FactorModel, GraphPoEVAE, MoEVAE, MoPoEVAE, PoEVAE

_SUBMODULES = ("data", "datasets", "distributions", "fusion", "heads", "interpret", "metrics", "models", "plotting", "tune")
_MODELS = ("FactorModel", "GraphPoEVAE", "MoEVAE", "MoPoEVAE", "PoEVAE")


def __getattr__(name: str):
    """Import submodules, models and settings on first use: ``mdlprob --help`` does not load torch."""
    if name in _SUBMODULES:
        module = importlib.import_module(f".{name}", __name__)
    elif name == "pl":  # the scverse habit: mdlprob.pl.imputation(...)
        module = importlib.import_module(".plotting", __name__)
    elif name in _MODELS:
        module = getattr(importlib.import_module(".models", __name__), name)
    elif name == "settings":
        module = importlib.import_module("._settings", __name__).settings
    else:
        msg = f"module 'mdlprob' has no attribute {name!r}"
        raise AttributeError(msg)
    globals()[name] = module
    return module


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "FactorModel",
    "GraphPoEVAE",
    "MoEVAE",
    "MoPoEVAE",
    "PoEVAE",
    "__version__",
    "data",
    "datasets",
    "distributions",
    "fusion",
    "heads",
    "interpret",
    "metrics",
    "models",
    "pl",
    "plotting",
    "settings",
    "tune",
]

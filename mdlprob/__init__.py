"""mdlprob: missing-modality-robust probabilistic multimodal models.

Learn one probabilistic latent space from whatever views each sample has, impute the
absent views with calibrated uncertainty, and feed that uncertainty downstream.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import data, datasets, distributions, fusion, heads, metrics, models, plotting, tune
from ._settings import settings
from .models import FactorModel, GraphPoEVAE, MoEVAE, MoPoEVAE, PoEVAE

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
    "metrics",
    "models",
    "plotting",
    "settings",
    "tune",
]

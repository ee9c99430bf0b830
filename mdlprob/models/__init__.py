"""Multimodal latent-variable models; :func:`all_models` lists the registered ones."""

from __future__ import annotations

from ._ensemble import Ensemble
from ._factor_model import FactorModel
from ._graph_poe_vae import GraphPoEVAE
from ._moe_vae import MoEVAE
from ._mopoe_vae import MoPoEVAE
from ._poe_vae import PoEVAE
from ._registry import ModelInfo, all_models, get_model, register_model

__all__ = [
    "Ensemble",
    "FactorModel",
    "GraphPoEVAE",
    "MoEVAE",
    "MoPoEVAE",
    "ModelInfo",
    "PoEVAE",
    "all_models",
    "get_model",
    "register_model",
]

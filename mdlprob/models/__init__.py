"""Multimodal latent-variable models."""

from __future__ import annotations

from ._ensemble import Ensemble
from ._factor_model import FactorModel
from ._graph_poe_vae import GraphPoEVAE
from ._moe_vae import MoEVAE
from ._mopoe_vae import MoPoEVAE
from ._poe_vae import PoEVAE

__all__ = ["Ensemble", "FactorModel", "GraphPoEVAE", "MoEVAE", "MoPoEVAE", "PoEVAE"]

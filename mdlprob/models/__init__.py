"""Multimodal latent-variable models."""

from __future__ import annotations

from ._mopoe_vae import MoPoEVAE
from ._poe_vae import PoEVAE

__all__ = ["MoPoEVAE", "PoEVAE"]

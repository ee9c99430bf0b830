"""Multimodal latent-variable models."""

from __future__ import annotations

from ._poe_vae import PoEVAE

__all__ = ["PoEVAE"]

"""Base classes shared by every model."""

from __future__ import annotations

from ._base_model import LATENT_KEY, BaseModel
from ._base_module import MultimodalVAEModule

__all__ = ["LATENT_KEY", "BaseModel", "MultimodalVAEModule"]

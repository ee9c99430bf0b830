"""Torch building blocks: MLPs, Gaussian experts and their aggregation."""

from __future__ import annotations

from ._experts import product_of_experts
from ._mlp import GaussianEncoder, mlp

__all__ = ["GaussianEncoder", "mlp", "product_of_experts"]

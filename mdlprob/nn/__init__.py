"""Torch building blocks: MLPs, convolutional experts for images, Gaussian experts and their aggregation."""

from __future__ import annotations

from ._conv import ConvDecoder, ConvEncoder, ResidualBlock
from ._experts import product_of_experts
from ._graph import GraphGaussianEncoder
from ._mlp import GaussianEncoder, mlp

__all__ = ["ConvDecoder", "ConvEncoder", "GaussianEncoder", "GraphGaussianEncoder", "ResidualBlock", "mlp", "product_of_experts"]

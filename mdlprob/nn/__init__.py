"""Torch building blocks: MLPs, convolutional experts for images, Gaussian experts and their aggregation."""

from __future__ import annotations

from ._conv import ConvDecoder, ConvEncoder, ResidualBlock
from ._experts import product_of_experts
from ._feature_graph import FeatureGraphEmbedding, TiedHead
from ._graph import GraphGaussianEncoder
from ._mlp import GaussianEncoder, mlp

__all__ = ["ConvDecoder", "ConvEncoder", "FeatureGraphEmbedding", "GaussianEncoder", "GraphGaussianEncoder", "ResidualBlock", "TiedHead", "mlp", "product_of_experts"]

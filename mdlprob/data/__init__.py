"""Data layer: register MuData modalities, presence masks, tensors for models."""

from __future__ import annotations

from ._feature_graph import link_features_by_name
from ._graph import GraphTensors, MaskedEmbedding, build_sample_graph
from ._mudata import dense_values, fill_missing, hide_modality, make_mudata, subset, write_imputation
from ._setup import get_registry, presence_mask, presence_pattern, register_outcome, setup_mudata
from ._table import table_to_anndata
from ._tensors import MultimodalTensors, tensors_from_mudata

__all__ = [
    "GraphTensors",
    "MaskedEmbedding",
    "MultimodalTensors",
    "build_sample_graph",
    "dense_values",
    "fill_missing",
    "write_imputation",
    "get_registry",
    "hide_modality",
    "link_features_by_name",
    "make_mudata",
    "presence_mask",
    "presence_pattern",
    "register_outcome",
    "setup_mudata",
    "subset",
    "table_to_anndata",
    "tensors_from_mudata",
]

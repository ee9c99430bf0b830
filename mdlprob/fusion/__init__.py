"""Discriminative multimodal fusion baselines that accept missing modalities.

:class:`EarlyFusion`
    Concatenated, mean-imputed modalities (with presence indicators) into an MLP or neural Cox model.
:class:`LateFusion`
    One head per modality, predictions averaged (or weighted) over the available modalities.
:class:`IntermediateFusion`
    Per-modality encoders fused by a gated Kronecker product (PathomicFusion) or attention
    pooling, trained with multimodal dropout.
:func:`fusion_inputs`
    ``X`` and ``presence`` dicts from a registered MuData.

All take ``X`` as a dict modality → ``(n_obs, p_m)`` array and an explicit ``presence`` dict
modality → bool ``(n_obs,)``, with ``task="classification"`` (``predict_proba``) or
``task="survival"`` (``predict_risk``, ``predict_survival_function``).
"""

from __future__ import annotations

from ._early import EarlyFusion
from ._inputs import fusion_inputs
from ._intermediate import IntermediateFusion
from ._late import LateFusion
from ._nn import modality_dropout

__all__ = ["EarlyFusion", "IntermediateFusion", "LateFusion", "fusion_inputs", "modality_dropout"]

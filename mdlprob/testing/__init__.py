"""Helpers for testing models: the model contract."""

from __future__ import annotations

from ._check_model import check_model
from ._elbo import replayed_mean_field_elbo

__all__ = ["check_model", "replayed_mean_field_elbo"]

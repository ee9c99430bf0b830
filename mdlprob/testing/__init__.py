"""Helpers for testing models and likelihoods: their contracts."""

from __future__ import annotations

from ._check_likelihood import check_likelihood
from ._check_model import check_model
from ._elbo import replayed_mean_field_elbo

__all__ = ["check_likelihood", "check_model", "replayed_mean_field_elbo"]

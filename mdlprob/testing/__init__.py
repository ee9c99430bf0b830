"""Helpers for testing models: the model contract."""

from __future__ import annotations

from ._check_model import check_model

__all__ = ["check_model"]

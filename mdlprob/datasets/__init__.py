"""Datasets: synthetic ground truth, embedded real data and loaders for the shared sets."""

from __future__ import annotations

from ._breast_cancer import breast_cancer
from ._paths import data_root
from ._synthetic import hidden_truth, synthetic

__all__ = ["breast_cancer", "data_root", "hidden_truth", "synthetic"]

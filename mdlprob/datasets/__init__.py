"""Datasets: synthetic ground truth, embedded real data and loaders for the shared sets.

Loaders of shared datasets take ``data_dir`` (default: env ``MDLPROB_DATA``, else
``../shared/data``) and raise a ``FileNotFoundError`` naming the file they expected.
"""

from __future__ import annotations

from ._breast_cancer import breast_cancer
from ._citeseq import citeseq_pbmc
from ._ham10000 import ham10000_metadata
from ._medmnist import medmnist_npz
from ._mixomics import mixomics_breast
from ._paths import data_root
from ._synthetic import hidden_truth, synthetic
from ._synthetic_scans import synthetic_scans
from ._tcga import tcga_survival

__all__ = [
    "breast_cancer",
    "citeseq_pbmc",
    "data_root",
    "ham10000_metadata",
    "hidden_truth",
    "medmnist_npz",
    "mixomics_breast",
    "synthetic",
    "synthetic_scans",
    "tcga_survival",
]

"""Benchmark datasets: each loader returns the MuData with its likelihoods, target and tasks."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mudata as md
import numpy as np

from .. import datasets
from ..data import make_mudata
from ..distributions import LIKELIHOODS


@dataclass
class BenchData:
    """A dataset prepared for the benchmark.

    Attributes
    ----------
    name
        Registry name.
    mdata
        The data (never modified by the benchmark; scenarios copy it).
    likelihoods
        Modality to likelihood, as for :func:`mdlprob.data.setup_mudata`.
    target
        Modality a scenario hides when it names none.
    label_key
        ``obs`` column of a class label (classification and latent tasks), or ``None``.
    survival
        Whether ``obs`` holds ``time`` and ``event`` (survival task).
    test
        Bool ``(n_obs,)`` fixed held-out observations for the downstream tasks, or ``None``
        (a seeded stratified 30% split is drawn per seed).
    """

    name: str
    mdata: md.MuData
    likelihoods: dict[str, str]
    target: str
    label_key: str | None = None
    survival: bool = False
    test: np.ndarray | None = None

    def is_count(self, modality: str) -> bool:
        """Whether ``modality`` holds counts (scored on log1p values)."""
        return LIKELIHOODS[self.likelihoods[modality]].is_count


def _synthetic(*, seed: int, data_dir: Any = None, n_obs: int = 300, n_rna: int = 100,
               n_protein: int = 20) -> BenchData:
    mdata = datasets.synthetic(n_obs, missing={}, n_vars={"rna": n_rna, "protein": n_protein}, seed=seed)
    return BenchData("synthetic", mdata, {"rna": "nb", "protein": "nb", "clinical": "mixed"}, "protein",
                     label_key="label", survival=True)


def _breast_cancer(*, seed: int, data_dir: Any = None) -> BenchData:
    return BenchData("breast_cancer", datasets.breast_cancer(), {"expression": "gaussian", "clinical": "mixed"},
                     "expression", survival=True)


def _mixomics(*, seed: int, data_dir: Any = None) -> BenchData:
    mdata = datasets.mixomics_breast(data_dir=data_dir)
    return BenchData("mixomics_breast", mdata, dict.fromkeys(mdata.mod, "gaussian"), "protein",
                     label_key="subtype", test=(mdata.obs["split"] == "test").to_numpy())


def _top_variance(mdata: md.MuData, modality: str, n_top: int, *, log: bool) -> md.MuData:
    """``mdata`` with ``modality`` reduced to its ``n_top`` most variable features."""
    adata = mdata.mod[modality]
    X = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    X = np.log1p(X) if log else X
    keep = np.sort(np.argsort(-np.nanvar(X, axis=0))[:n_top])
    mods = {name: (a[:, keep].copy() if name == modality else a.copy()) for name, a in mdata.mod.items()}
    out = make_mudata(mods, obs_order=mdata.obs_names)
    for col in mdata.obs.columns:
        out.obs[col] = mdata.obs[col].to_numpy()
    return out


def _citeseq(*, seed: int, data_dir: Any = None, n_top_genes: int = 300) -> BenchData:
    mdata = datasets.citeseq_pbmc(data_dir=data_dir, min_cells=1)
    mdata = _top_variance(mdata, "rna", n_top_genes, log=True)
    return BenchData("citeseq_pbmc", mdata, {"rna": "nb", "adt": "nb"}, "adt")


def _tcga(*, seed: int, data_dir: Any = None, cancer: str = "blca", source: str = "mcat",
          n_top_genes: int = 500) -> BenchData:
    mdata = datasets.tcga_survival(cancer, source=source, data_dir=data_dir)
    mdata = _top_variance(mdata, "rna", n_top_genes, log=False)
    likelihoods = {m: ("mixed" if m == "clinical" else "gaussian") for m in mdata.mod}
    return BenchData("tcga_survival", mdata, likelihoods, "rna", survival=True)


DATASETS: dict[str, Callable[..., BenchData]] = {
    "synthetic": _synthetic,
    "breast_cancer": _breast_cancer,
    "mixomics_breast": _mixomics,
    "citeseq_pbmc": _citeseq,
    "tcga_survival": _tcga,
}


def load_dataset(name: str, *, seed: int = 0, data_dir: str | os.PathLike | None = None,
                 **params: Any) -> BenchData:
    """Load benchmark dataset ``name`` (a key of :data:`DATASETS`) with loader options ``params``.

    ``seed`` only matters for generated data (``synthetic``). Loaders of shared datasets raise
    ``FileNotFoundError`` naming the file they expected when ``data_dir`` lacks it.
    """
    if name not in DATASETS:
        msg = f"Expected dataset to be one of {sorted(DATASETS)}, got {name!r}."
        raise ValueError(msg)
    return DATASETS[name](seed=seed, data_dir=data_dir, **params)

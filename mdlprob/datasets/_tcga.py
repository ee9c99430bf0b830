"""TCGA genomic + clinical survival cohorts published with MCAT and PORPOISE (mahmoodlab)."""

from __future__ import annotations

import os
import zipfile
from typing import Literal

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd

from ..data._mudata import make_mudata
from ..data._table import TYPE_KEY, table_to_anndata
from ._paths import data_root, dataset_file

# source -> (dataset folder, table path, split path pattern, cancers)
_SOURCES: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "mcat": (
        "tcga_mcat_sig",
        "datasets_csv_sig/tcga_{cancer}_all_clean.csv.zip",
        "splits/5foldcv/tcga_{cancer}/splits_{fold}.csv",
        ("blca", "luad"),
    ),
    "porpoise": (
        "tcga_porpoise_mutsig",
        "porpoise/datasets_csv_mutsig/tcga_{cancer}_all_clean.csv.zip",
        "porpoise/splits/5foldcv/tcga_{cancer}/splits_{fold}.csv",
        ("blca", "brca", "luad"),
    ),
}
# modality name -> (column suffix, likelihood hint written to var["mdlprob_type"])
_OMICS = {
    "rna": ("_rnaseq", "gaussian"),
    "cnv": ("_cnv", "gaussian"),
    "mut": ("_mut", "bernoulli"),
}
_CLINICAL_TYPES = {
    "age": "gaussian",
    "is_female": "bernoulli",
    "oncotree_code": "categorical",
    "site": "categorical",
}
N_FOLDS = 5


def tcga_survival(
    cancer: str,
    *,
    source: Literal["mcat", "porpoise"] = "mcat",
    include_site: bool = False,
    data_dir: str | os.PathLike | None = None,
) -> md.MuData:
    """Patient-level TCGA genomics, clinical covariates and overall survival.

    Reads the CSV tables published with MCAT (Chen et al., ICCV 2021; ``source="mcat"``,
    dataset folder ``tcga_mcat_sig``) or PORPOISE (Chen et al., Cancer Cell 2022;
    ``source="porpoise"``, folder ``tcga_porpoise_mutsig``). The tables hold one row per
    diagnostic slide; slides are collapsed to one row per patient (first slide kept).

    Parameters
    ----------
    cancer
        TCGA project, case-insensitive: ``"blca"`` or ``"luad"`` for ``mcat``;
        ``"blca"``, ``"brca"`` or ``"luad"`` for ``porpoise``.
    source
        Which published feature set to load.
    include_site
        Add the tissue-source-site code (``site``, ~35 levels) to the clinical modality. It
        is a batch/institution variable, so it is left out by default.
    data_dir
        Folder holding the shared datasets (default: ``$MDLPROB_DATA`` or ``../shared/data``).

    Returns
    -------
    MuData
        With observations = patients (``obs_names`` = TCGA case ids) and modalities

        - ``rna``: RNA-seq z-scores (cBioPortal; heavy-tailed, a few genes reach values in the
          thousands), dense float32, ``var_names`` gene symbols (``_rnaseq`` suffix stripped).
        - ``cnv``: GISTIC copy-number calls in {-2, -1, 0, 1, 2}, dense float32.
        - ``mut``: (``porpoise`` only) 0/1 mutation status, dense float32.

        ``cnv`` and ``mut`` keep their ``_cnv`` / ``_mut`` suffix in ``var_names`` so that the
        MuData's global ``var_names`` stay unique; every omics modality has ``var["gene"]``,
        the bare gene symbol.
        - ``clinical``: ``age``, ``is_female``, ``oncotree_code`` (and ``site``), encoded by
          :func:`mdlprob.data.table_to_anndata`; columns constant in the cohort (e.g.
          ``oncotree_code`` for BLCA / LUAD) are dropped. No outcome columns.

        Every patient in these tables has every modality. Omics ``var["mdlprob_type"]`` holds a
        likelihood hint. Global ``obs`` columns:

        - ``time``: overall survival or follow-up in months (``survival_months``).
        - ``event``: 1 = death observed, 0 = censored (``1 - censorship`` of the CSV).
        - ``n_slides``: number of diagnostic slides of the patient in the table.
        - ``fold_0`` .. ``fold_4``: the published 5-fold cross-validation, categorical
          ``"train"`` / ``"val"`` (NaN for a patient in neither).

    Raises
    ------
    ValueError
        Unknown ``source`` or ``cancer``.
    FileNotFoundError
        The dataset folder or one of its files is absent.

    Examples
    --------
    >>> mdata = tcga_survival("blca")  # doctest: +SKIP
    >>> mdata.n_obs, mdata["rna"].n_vars, mdata["cnv"].n_vars  # doctest: +SKIP
    (373, 2814, 248)
    """
    if source not in _SOURCES:
        msg = f"source must be one of {sorted(_SOURCES)}, got {source!r}."
        raise ValueError(msg)
    name, table_rel, split_rel, cancers = _SOURCES[source]
    if not isinstance(cancer, str) or cancer.strip().lower() not in cancers:
        msg = f"Unknown cancer {cancer!r} for source={source!r}; valid cancers are {list(cancers)}."
        raise ValueError(msg)
    cancer = cancer.strip().lower()
    if not isinstance(include_site, bool):
        msg = f"include_site must be a bool, got {include_site!r}."
        raise TypeError(msg)

    df = _read_zipped_csv(dataset_file(name, table_rel.format(cancer=cancer), data_dir))
    missing = {
        "case_id",
        "survival_months",
        "censorship",
        "age",
        "is_female",
        "oncotree_code",
    } - set(df.columns)
    if missing:
        msg = f"The {source} table for {cancer} lacks the columns {sorted(missing)}; is the file intact?"
        raise ValueError(msg)
    df["case_id"] = df["case_id"].astype(str)
    n_slides = df.groupby("case_id", sort=False).size()
    df = df.drop_duplicates("case_id", keep="first").set_index("case_id")
    df.index.name = None

    mods: dict[str, ad.AnnData] = {}
    for mod, (suffix, kind) in _OMICS.items():
        cols = [c for c in df.columns if str(c).endswith(suffix)]
        if cols:
            genes = [c[: -len(suffix)] for c in cols]
            # rna keeps bare symbols; cnv / mut keep their suffix so that MuData's global
            # var_names stay unique (the same genes appear in several modalities).
            names = genes if mod == "rna" else [g + suffix for g in genes]
            mods[mod] = _dense_modality(df[cols], names, kind)
            mods[mod].var["gene"] = genes
    clin_cols = ["age", "is_female", "oncotree_code"] + (
        ["site"] if include_site and "site" in df.columns else []
    )
    clin = df[clin_cols].copy()
    clin = clin.loc[:, clin.nunique(dropna=True) > 1]
    mods["clinical"] = table_to_anndata(
        clin, column_types={c: _CLINICAL_TYPES[c] for c in clin.columns}
    )

    mdata = make_mudata(mods)
    obs = pd.DataFrame(index=df.index)
    obs["time"] = df["survival_months"].astype(np.float64)
    obs["event"] = (1 - df["censorship"].astype(np.int64)).astype(np.int64)
    obs["n_slides"] = n_slides.reindex(df.index).astype(np.int64)
    for k, fold in _read_folds(name, split_rel, cancer, df.index, data_dir).items():
        obs[k] = fold
    obs = obs.reindex(mdata.obs_names)
    for col in obs.columns:
        mdata.obs[col] = obs[col]
    mdata.uns["dataset"] = {"name": name, "source": source, "cancer": cancer}
    return mdata


def _read_zipped_csv(path: os.PathLike) -> pd.DataFrame:
    """Read the single CSV inside ``path`` without extracting (member names contain ``../``)."""
    with zipfile.ZipFile(path) as z:
        members = [n for n in z.namelist() if not n.endswith("/")]
        if len(members) != 1:
            msg = f"Expected exactly one file inside {path}, found {members}."
            raise ValueError(msg)
        with z.open(members[0]) as fh:
            df = pd.read_csv(fh)
    return df.drop(columns=[c for c in df.columns if str(c).startswith("Unnamed:")])


def _dense_modality(
    values: pd.DataFrame, var_names: list[str], kind: str
) -> ad.AnnData:
    X = values.to_numpy(dtype=np.float32, copy=True)
    var = pd.DataFrame({TYPE_KEY: kind}, index=pd.Index(var_names, dtype=str))
    return ad.AnnData(X, obs=pd.DataFrame(index=values.index.astype(str)), var=var)


def _read_folds(
    name: str,
    split_rel: str,
    cancer: str,
    patients: pd.Index,
    data_dir: str | os.PathLike | None,
) -> dict[str, pd.Categorical]:
    """Fold membership per patient; {} when the split folder is absent altogether."""
    first = data_root(data_dir) / name / split_rel.format(cancer=cancer, fold=0)
    if not first.parent.exists():
        return {}
    folds = {}
    for k in range(N_FOLDS):
        path = dataset_file(name, split_rel.format(cancer=cancer, fold=k), data_dir)
        split = pd.read_csv(path, index_col=0)
        lab = pd.Series(np.nan, index=patients, dtype=object)
        for part in ("train", "val"):
            if part not in split.columns:
                msg = f"Split file {path} lacks the column {part!r}; columns are {list(split.columns)}."
                raise ValueError(msg)
            ids = split[part].dropna().astype(str)
            lab[lab.index.isin(ids)] = part
        folds[f"fold_{k}"] = pd.Categorical(lab, categories=["train", "val"])
    return folds

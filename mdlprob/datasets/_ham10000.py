"""HAM10000 dermatoscopy metadata: clinical covariates and diagnosis (no images)."""

from __future__ import annotations

import os
from pathlib import Path

import mudata as md
import numpy as np
import pandas as pd

from ..data._mudata import make_mudata
from ..data._table import table_to_anndata
from ._paths import dataset_file

NAME = "ham10000_metadata"
RELATIVE = "HAM10000_metadata.csv"
COLUMNS = ("lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization")
UNKNOWN = "unknown"


def ham10000_metadata(
    path: str | os.PathLike | None = None, *, data_dir: str | os.PathLike | None = None
) -> md.MuData:
    """HAM10000 metadata (Tschandl et al., 2018) as a clinical modality plus diagnosis labels.

    Parameters
    ----------
    path
        ``HAM10000_metadata.csv``. Default: the shared copy
        ``ham10000_metadata/HAM10000_metadata.csv``.
    data_dir
        Folder holding the shared datasets, used only when ``path`` is None (default:
        ``$MDLPROB_DATA`` or ``../shared/data``).

    Returns
    -------
    MuData
        With observations = images (``obs_names`` = ``image_id``, 10,015 rows) and one
        modality

        - ``clinical``: ``age`` (gaussian; 57 missing), ``sex`` (bernoulli, codes follow
          ``uns["categories"]["sex"]``; ``"unknown"`` becomes NaN) and ``localization``
          (categorical; ``"unknown"`` becomes NaN), encoded by
          :func:`mdlprob.data.table_to_anndata`. All 10,015 images are kept: 47 source rows
          (all ``dx_type == "consensus"``) lack age, sex and localization alike and are
          entirely NaN.

        Global ``obs`` columns: ``dx`` (categorical diagnosis: akiec, bcc, bkl, df, mel, nv,
        vasc), ``dx_type`` (categorical: how the diagnosis was confirmed) and ``lesion_id``
        (several images share a lesion: split by lesion to avoid leakage).

    Raises
    ------
    FileNotFoundError
        The file is absent.
    ValueError
        Required columns missing or repeated ``image_id``.
    """
    if path is None:
        file = dataset_file(NAME, RELATIVE, data_dir)
    else:
        if not isinstance(path, (str, os.PathLike)):
            msg = f"path must be a str or os.PathLike, got {type(path).__name__}."
            raise TypeError(msg)
        file = Path(path)
        if not file.exists():
            msg = f"HAM10000 metadata not found: expected the file {file.resolve()}."
            raise FileNotFoundError(msg)
    df = pd.read_csv(file, dtype={"lesion_id": str, "image_id": str})
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        msg = f"{file} lacks the columns {missing}; expected {list(COLUMNS)}."
        raise ValueError(msg)
    if not df["image_id"].is_unique or df["image_id"].isna().any():
        dup = df["image_id"][df["image_id"].duplicated()].head(5).tolist()
        msg = f"{file}: image_id must be unique and non-empty (repeated e.g. {dup})."
        raise ValueError(msg)
    df = df.set_index("image_id")
    df.index.name = None

    clin = pd.DataFrame(index=df.index)
    clin["age"] = pd.to_numeric(df["age"], errors="coerce").astype(np.float64)
    for col in ("sex", "localization"):
        s = df[col].astype(object)
        known = s.notna() & (s.astype(str).str.strip().str.lower() != UNKNOWN)
        clin[col] = s.where(known, np.nan)
    clinical = table_to_anndata(
        clin,
        column_types={
            "age": "gaussian",
            "sex": "bernoulli",
            "localization": "categorical",
        },
    )

    mdata = make_mudata({"clinical": clinical})
    obs = df.reindex(mdata.obs_names)
    mdata.obs["dx"] = pd.Categorical(obs["dx"].astype(str))
    mdata.obs["dx_type"] = pd.Categorical(obs["dx_type"].astype(str))
    mdata.obs["lesion_id"] = obs["lesion_id"].astype(str).to_numpy()
    mdata.uns["dataset"] = {"name": NAME}
    return mdata

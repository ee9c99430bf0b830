"""mixOmics ``breast.TCGA``: mRNA + miRNA + protein with a natural missing protein block."""

from __future__ import annotations

import os

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd

from ..data._mudata import make_mudata
from ..data._table import TYPE_KEY
from ._paths import dataset_file

NAME = "mixomics_breast_tcga"
RELATIVE = "data/breast.TCGA.rda"
SUBTYPES = ("Basal", "Her2", "LumA")
_MODALITIES = ("mrna", "mirna", "protein")


def mixomics_breast(*, data_dir: str | os.PathLike | None = None) -> md.MuData:
    """TCGA breast cancer multi-omics from the mixOmics R package (DIABLO case study).

    Parameters
    ----------
    data_dir
        Folder holding the shared datasets (default: ``$MDLPROB_DATA`` or ``../shared/data``).

    Returns
    -------
    MuData
        With 220 observations = patients (``obs_names``: the 4-character TCGA
        participant codes, unique across splits) and modalities, all dense float32 values
        pre-normalised by the mixOmics authors:

        - ``mrna``: 200 genes, all 220 patients.
        - ``mirna``: 184 miRNAs, all 220 patients.
        - ``protein``: 142 RPPA antibodies, only the 150 training patients. The 70 test
          patients have no protein data in the source, so they are absent from this
          modality (a natural missing-modality setting).

        Global ``obs`` columns:

        - ``subtype``: categorical ``Basal`` / ``Her2`` / ``LumA``.
        - ``split``: categorical ``"train"`` (150) / ``"test"`` (70), the package's split.

    Raises
    ------
    FileNotFoundError
        The dataset file is absent.
    ValueError
        The file does not hold the expected ``breast.TCGA`` object.
    """
    import rdata

    path = dataset_file(NAME, RELATIVE, data_dir)
    parsed = rdata.read_rda(path)
    if "breast.TCGA" not in parsed:
        msg = f"{path} does not hold an R object named 'breast.TCGA' (found {list(parsed)})."
        raise ValueError(msg)
    obj = parsed["breast.TCGA"]
    blocks: dict[str, list[pd.DataFrame]] = {m: [] for m in _MODALITIES}
    labels, splits = [], []
    for split, key in (("train", "data.train"), ("test", "data.test")):
        if key not in obj:
            msg = f"{path}: breast.TCGA lacks the element {key!r} (found {list(obj)})."
            raise ValueError(msg)
        part = obj[key]
        names = None
        for mod in _MODALITIES:
            if mod not in part:
                continue
            arr = part[mod]
            rows, cols = (
                np.asarray(arr.coords[d].values).astype(str) for d in arr.dims
            )
            if names is not None and not np.array_equal(rows, names):
                msg = f"{path}: {key}/{mod} lists patients in a different order than the other blocks."
                raise ValueError(msg)
            names = rows
            blocks[mod].append(
                pd.DataFrame(
                    np.asarray(arr.values, dtype=np.float32), index=rows, columns=cols
                )
            )
        if names is None:
            msg = f"{path}: {key} holds none of the blocks {_MODALITIES}."
            raise ValueError(msg)
        sub = np.asarray(part["subtype"]).astype(str)
        if len(sub) != len(names):
            msg = f"{path}: {key} has {len(sub)} subtype labels for {len(names)} patients."
            raise ValueError(msg)
        labels.append(pd.Series(sub, index=names))
        splits.append(pd.Series(split, index=names))

    mods = {}
    for mod in _MODALITIES:
        if not blocks[mod]:
            continue
        table = pd.concat(blocks[mod], axis=0)
        var = pd.DataFrame({TYPE_KEY: "gaussian"}, index=table.columns.astype(str))
        mods[mod] = ad.AnnData(
            table.to_numpy(dtype=np.float32),
            obs=pd.DataFrame(index=table.index),
            var=var,
        )
    mdata = make_mudata(mods)
    subtype = pd.concat(labels)
    if not subtype.index.is_unique:
        msg = f"{path}: patient codes repeat across the train and test splits."
        raise ValueError(msg)
    mdata.obs["subtype"] = pd.Categorical(
        subtype.reindex(mdata.obs_names), categories=list(SUBTYPES)
    )
    mdata.obs["split"] = pd.Categorical(
        pd.concat(splits).reindex(mdata.obs_names), categories=["train", "test"]
    )
    mdata.uns["dataset"] = {"name": NAME}
    return mdata

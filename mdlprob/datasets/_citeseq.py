"""ECCITE-seq PBMC example from CiteFuse: paired RNA, surface-protein (ADT) and hashtag counts."""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data._mudata import make_mudata
from ._paths import dataset_file

NAME = "citefuse_eccite_pbmc"
RELATIVE = "data/CITEseq_example.rda"
GENE_PREFIX = "hg19_"
ISOTYPE_CONTROLS = ("IgG1", "IgG2a")
ADT_SUFFIX = "_adt"


def citeseq_pbmc(
    *,
    data_dir: str | os.PathLike | None = None,
    include_hto: bool = False,
    min_cells: int = 0,
) -> md.MuData:
    """500 PBMCs profiled by ECCITE-seq (Mimitou et al., 2019), as shipped with CiteFuse.

    Parameters
    ----------
    data_dir
        Folder holding the shared datasets (default: ``$MDLPROB_DATA`` or ``../shared/data``).
    include_hto
        Also return the hashtag-oligo counts (sample of origin / doublet signal) as ``hto``.
    min_cells
        Keep only genes detected (count > 0) in at least this many cells. The default 0
        keeps all 19,521 genes, many of which are never detected in these 500 cells.

    Returns
    -------
    MuData
        With observations = cells (``obs_names`` = cell barcodes) and modalities of raw
        UMI counts, cells x features, ``scipy.sparse.csr_matrix`` float32:

        - ``rna``: genes, ``var_names`` without the ``hg19_`` prefix, ``var["gene_id"]`` the
          original name.
        - ``adt``: 49 antibody-derived tags, ``var_names`` ``"<antibody>_adt"`` (e.g. ``CD4_adt``:
          15 antibodies share their name with a gene, and MuData needs unique global
          ``var_names``), ``var["protein"]`` the antibody name, ``var["isotype_control"]``
          marking the IgG1 / IgG2a controls.
        - ``hto``: (only with ``include_hto``) 4 hashtags.

        All cells have all modalities. ``obs`` carries no labels: the data come without
        curated cell types.

    Raises
    ------
    FileNotFoundError
        The dataset file is absent.
    ValueError
        Bad ``min_cells``, or the file does not hold the expected matrices.
    """
    import rdata
    from rdata.conversion import DEFAULT_CLASS_MAP

    if not isinstance(include_hto, bool):
        msg = f"include_hto must be a bool, got {include_hto!r}."
        raise TypeError(msg)
    if (
        isinstance(min_cells, bool)
        or not isinstance(min_cells, (int, np.integer))
        or min_cells < 0
    ):
        msg = f"min_cells must be a non-negative integer, got {min_cells!r}."
        raise ValueError(msg)
    path = dataset_file(NAME, RELATIVE, data_dir)
    parsed = rdata.read_rda(
        path, constructor_dict={**DEFAULT_CLASS_MAP, "dgCMatrix": _dgc_matrix}
    )
    if "CITEseq_example" not in parsed:
        msg = f"{path} does not hold an R object named 'CITEseq_example' (found {list(parsed)})."
        raise ValueError(msg)
    obj = parsed["CITEseq_example"]
    wanted = {"rna": "RNA", "adt": "ADT"} | ({"hto": "HTO"} if include_hto else {})
    mods: dict[str, ad.AnnData] = {}
    barcodes = None
    for mod, key in wanted.items():
        if key not in obj:
            msg = (
                f"{path}: CITEseq_example lacks the matrix {key!r} (found {list(obj)})."
            )
            raise ValueError(msg)
        matrix, features, cells = obj[key]
        if barcodes is not None and not np.array_equal(cells, barcodes):
            msg = f"{path}: the {key} matrix lists different cells than RNA."
            raise ValueError(msg)
        barcodes = cells
        X = sp.csr_matrix(matrix.T, dtype=np.float32)
        var = pd.DataFrame(index=pd.Index(features, dtype=str))
        if mod == "rna":
            var["gene_id"] = features
            var.index = pd.Index([f.removeprefix(GENE_PREFIX) for f in features])
            if not var.index.is_unique:
                var.index = pd.Index(features)
        elif mod == "adt":
            var["protein"] = features
            var["isotype_control"] = var.index.isin(ISOTYPE_CONTROLS)
            var.index = pd.Index([f + ADT_SUFFIX for f in features])
        adata = ad.AnnData(
            X, obs=pd.DataFrame(index=pd.Index(cells, dtype=str)), var=var
        )
        if mod == "rna" and min_cells > 0:
            detected = np.asarray((X > 0).sum(axis=0)).ravel()
            adata = adata[:, detected >= min_cells].copy()
        mods[mod] = adata
    mdata = make_mudata(mods)
    mdata.uns["dataset"] = {"name": NAME}
    return mdata


def _dgc_matrix(obj: Any, attrs: Any) -> tuple[sp.csc_matrix, np.ndarray, np.ndarray]:
    """rdata constructor for the Matrix package's ``dgCMatrix``: (matrix, row names, column names)."""
    ns = obj if isinstance(obj, SimpleNamespace) else SimpleNamespace(**dict(attrs))
    shape = tuple(int(d) for d in ns.Dim)
    matrix = sp.csc_matrix(
        (np.asarray(ns.x, dtype=np.float64), np.asarray(ns.i), np.asarray(ns.p)),
        shape=shape,
    )
    rows, cols = (np.asarray(n).astype(str) for n in ns.Dimnames)
    return matrix, rows, cols

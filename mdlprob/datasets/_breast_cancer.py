"""Embedded real data: the breast-cancer cohort shipped inside scikit-survival."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd

from ..data._mudata import make_mudata
from ..data._table import table_to_anndata

CLINICAL = ("age", "er", "grade", "size")


def breast_cancer() -> md.MuData:
    """198 breast-cancer patients: 76-probe expression, clinical covariates and survival.

    Built offline from :func:`sksurv.datasets.load_breast_cancer` (Desmedt et al., 2007;
    GEO GSE7390), so it needs no download.

    Returns
    -------
    MuData with modalities ``expression`` (76 log2 microarray probes, continuous: use the
    ``gaussian`` likelihood) and ``clinical`` (``age``, ``size`` gaussian; ``er``
    bernoulli; ``grade`` categorical, encoded by :func:`mdlprob.data.table_to_anndata`).
    ``obs`` holds ``time`` (days to distant metastasis or censoring) and ``event``
    (1 = distant metastasis observed).
    """
    from sksurv.datasets import load_breast_cancer

    X, y = load_breast_cancer()
    X.index = pd.Index([f"patient{i}" for i in range(X.shape[0])])
    probes = [c for c in X.columns if c not in CLINICAL]
    expr = ad.AnnData(X[probes].to_numpy(dtype=np.float32), obs=pd.DataFrame(index=X.index),
                      var=pd.DataFrame(index=pd.Index(probes)))
    clinical = table_to_anndata(X[list(CLINICAL)])
    mdata = make_mudata({"expression": expr, "clinical": clinical})
    fields = y.dtype.names
    mdata.obs["time"] = y[fields[1]].astype(np.float64)
    mdata.obs["event"] = y[fields[0]].astype(np.int64)
    return mdata

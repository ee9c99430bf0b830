"""Turn a pandas table with mixed column types into an AnnData for the ``mixed`` likelihood."""

from __future__ import annotations

from collections.abc import Mapping

import anndata as ad
import numpy as np
import pandas as pd

COLUMN_TYPES = ("gaussian", "bernoulli", "categorical")
TYPE_KEY = "mdlprob_type"


def table_to_anndata(df: pd.DataFrame, *, column_types: Mapping[str, str] | None = None) -> ad.AnnData:
    """Encode a clinical-style table as an AnnData with one numeric column per variable.

    Parameters
    ----------
    df
        One row per observation. Numeric columns become ``gaussian`` (or ``bernoulli`` when
        they only hold 0/1), ``bool`` columns ``bernoulli``, ``category``/``object`` columns
        ``categorical`` (two-level string columns too). Missing entries stay ``NaN``.
    column_types
        Override the inferred type of some columns: ``{"grade": "categorical"}``.

    Returns
    -------
    AnnData with ``X`` float32 ``(n_obs, n_columns)`` (categories as integer codes
    ``0..K-1``), ``var["mdlprob_type"]`` and ``uns["categories"][column]`` giving the
    labels of each categorical column in code order.

    Raises
    ------
    TypeError
        If ``df`` is not a DataFrame.
    ValueError
        If ``column_types`` names an unknown column or type, or a column marked
        ``bernoulli`` holds values other than 0/1.
    """
    if not isinstance(df, pd.DataFrame):
        msg = f"Expected df to be a pandas DataFrame, got {type(df).__name__}."
        raise TypeError(msg)
    column_types = dict(column_types or {})
    unknown = set(column_types) - set(df.columns)
    if unknown:
        msg = f"column_types names columns not in df: {sorted(unknown)}. Columns are {list(df.columns)}."
        raise ValueError(msg)
    X = np.full(df.shape, np.nan, dtype=np.float32)
    types, categories = [], {}
    for j, col in enumerate(df.columns):
        s = df[col]
        kind = column_types.get(col) or _infer_type(s)
        if kind not in COLUMN_TYPES:
            msg = f"column_types[{col!r}] must be one of {COLUMN_TYPES}, got {kind!r}."
            raise ValueError(msg)
        if kind == "categorical":
            cat = s.astype("category")
            X[:, j] = np.where(cat.cat.codes.to_numpy() < 0, np.nan, cat.cat.codes.to_numpy())
            categories[str(col)] = [str(c) for c in cat.cat.categories]
        elif kind == "bernoulli" and not pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            cat = s.astype("category")
            if len(cat.cat.categories) != 2:
                msg = f"Column {col!r} was marked bernoulli but has {len(cat.cat.categories)} levels; expected 2."
                raise ValueError(msg)
            X[:, j] = np.where(cat.cat.codes.to_numpy() < 0, np.nan, cat.cat.codes.to_numpy())
            categories[str(col)] = [str(c) for c in cat.cat.categories]
        else:
            X[:, j] = pd.to_numeric(s, errors="raise").astype("float64").to_numpy()
            if kind == "bernoulli":
                vals = X[:, j][~np.isnan(X[:, j])]
                if not np.isin(vals, (0.0, 1.0)).all():
                    msg = f"Column {col!r} was marked bernoulli but holds values other than 0/1."
                    raise ValueError(msg)
        types.append(kind)
    var = pd.DataFrame({TYPE_KEY: types}, index=pd.Index([str(c) for c in df.columns]))
    return ad.AnnData(X, obs=pd.DataFrame(index=df.index.astype(str)), var=var, uns={"categories": categories})


def _infer_type(s: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(s):
        return "bernoulli"
    if isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s):
        return "bernoulli" if s.dropna().nunique() == 2 and not isinstance(s.dtype, pd.CategoricalDtype) else "categorical"
    vals = s.dropna().to_numpy(dtype=float)
    if vals.size and np.isin(vals, (0.0, 1.0)).all():
        return "bernoulli"
    return "gaussian"

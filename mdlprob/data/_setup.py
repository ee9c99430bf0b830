"""Register which modalities of a MuData a model uses and how each one is distributed."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import mudata as md
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..distributions import LIKELIHOODS
from ..exceptions import DataWarning, RegistrationError
from ._covariates import check_covariates
from ._feature_graph import check_feature_graph
from ._outcome import check_outcome
from ._table import COLUMN_TYPES, TYPE_KEY

REGISTRY_KEY = "mdlprob"
#: Key of a modality's ``uns`` holding ``(C, H, W)`` when its features are flattened image pixels.
IMAGE_SHAPE_KEY = "image_shape"
_MIN_IMAGE_SIDE = 8
_MAX_AUTO_CATEGORIES = 10


def setup_mudata(
    mdata: md.MuData,
    *,
    likelihoods: Mapping[str, str],
    layer: Mapping[str, str] | None = None,
    mask_key: str | None = None,
    column_types: Mapping[str, Mapping[str, str]] | None = None,
    outcome: Mapping[str, Any] | None = None,
    feature_graph: Any = None,
    feature_graph_strength: float = 1.0,
    library_size: bool = True,
    batch_key: str | None = None,
    categorical_covariate_keys: Sequence[str] | None = None,
    continuous_covariate_keys: Sequence[str] | None = None,
) -> None:
    """Register modalities, their likelihoods and where presence comes from.

    Writes a JSON-serialisable registry to ``mdata.uns["mdlprob"]`` and touches nothing else.

    Parameters
    ----------
    mdata
        The data. A modality's presence per observation comes from MuData's observation
        maps: an observation absent from ``mdata.mod[m]`` (outer join) lacks modality ``m``.
    likelihoods
        Modality name to likelihood: ``nb``, ``zinb``, ``poisson`` (counts), ``gaussian``
        (continuous, per-feature scale), ``gaussian_global`` (one scale for all features,
        e.g. pixels), ``bernoulli`` (binary), ``mixed`` (a table of gaussian / bernoulli /
        categorical columns), ``laplace`` (continuous, heavy-tailed), ``beta`` (intensities
        in (0, 1)). Only these modalities are used by a model. A modality whose ``uns`` has
        ``"image_shape": (C, H, W)`` holds images flattened channel-first in ``X``
        (``n_vars = C * H * W``); models give it convolutional experts.
    layer
        Modality name to the layer holding its values (default ``X``).
    mask_key
        Key of ``mdata.obsm`` holding an explicit boolean presence mask, a DataFrame with one
        column per modality (or an array with columns in the order of ``likelihoods``). It is
        combined (logical and) with the observation maps.
    column_types
        For ``mixed`` modalities: ``{modality: {column: type}}`` overriding the column
        types, which are otherwise read from ``var["mdlprob_type"]`` (written by
        :func:`table_to_anndata`) or inferred from the values: only 0/1 → ``bernoulli``;
        non-negative integers with 3 to 10 distinct values → ``categorical``; else ``gaussian``.
    outcome
        An outcome to train jointly with the modalities (semi-supervised): a label
        ``{"key": "subtype", "type": "categorical"}`` or a right-censored survival time
        ``{"time_key": "time", "event_key": "event", "type": "coxph" | "logistic_hazard"}``
        (``n_bins`` for ``logistic_hazard``, default 10), read from ``mdata.obs``, optional
        ``"weight"`` multiplying its log-likelihood (default 1). Observations whose outcome
        is NaN / None are unlabelled and still train the rest of the model. The outcome is
        decoded from the latent but never encoded, so predictions involve no leak.
    feature_graph
        Links between features of different modalities (gene ↔ protein, gene ↔ CNV),
        as a networkx graph or an edge list (DataFrame with ``source``, ``target`` and
        optional ``sign`` (±1), ``weight``; or ``(source, target[, sign[, weight]])``
        tuples); nodes are ``(modality, feature)`` pairs or feature names unique across
        modalities. :func:`link_features_by_name` builds one from matching names. Models
        then tie the decoders of the linked modalities through variational feature
        embeddings (:class:`~mdlprob.nn.FeatureGraphEmbedding`).
    feature_graph_strength
        How much the links count against the data: the graph's negative ELBO enters the
        training loss multiplied by ``feature_graph_strength / n_obs``. At 1 the graph
        counts as one more observation, and with enough data for the linked features the
        links barely move the decoders. Larger values (10-100) make them matter where a
        linked modality is scarce, and make a wrong graph hurt: on ``synthetic(400,
        feature_links=True)`` with protein absent for 95% of cells, imputation r was 0.567
        without a graph, 0.629 / 0.627 with true / shuffled links at strength 1, and 0.712
        / 0.293 at strength 100 (see ``docs/graphs.md``).
    library_size
        Whether count modalities (``nb``, ``zinb``, ``poisson``; not images) model sequencing
        depth explicitly, as scVI does: the log of each observation's total count of the
        modality is an observed offset of the decoded mean, the decoder gives normalised
        expression (a softmax over features), and encoders see depth-normalised
        :math:`\\log(1 + 10^4 x / \\ell)`. The latent then describes composition, not depth.
        ``False`` keeps the earlier model (decoded means on the count scale, encoders on
        :math:`\\log(1 + x)`), so results from before this option reproduce.

    Raises
    ------
    TypeError
        ``mdata`` is not a MuData, or a modality holds non-numeric values.
    KeyError
        A modality, layer or mask key is absent.
    ValueError
        Unknown likelihood; negative, non-integer or infinite values where they are not
        allowed; an observation with no registered modality at all.

    Warns
    -----
    DataWarning
        A feature is constant or entirely NaN over the observations that have the modality.

    Examples
    --------
    >>> import mdlprob
    >>> mdata = mdlprob.datasets.synthetic(100, missing={"protein": 0.3})
    >>> mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb", "clinical": "mixed"})
    >>> sorted(mdata.uns["mdlprob"]["modalities"])
    ['clinical', 'protein', 'rna']
    """
    if not isinstance(mdata, md.MuData):
        msg = f"Expected mdata to be a mudata.MuData, got {type(mdata).__name__}. Wrap AnnData objects with mudata.MuData({{'rna': adata}})."
        raise TypeError(msg)
    if not isinstance(likelihoods, Mapping) or not likelihoods:
        msg = f"Expected likelihoods to be a non-empty dict modality -> likelihood name, got {likelihoods!r}."
        raise ValueError(msg)
    layer = dict(layer or {})
    column_types = {k: dict(v) for k, v in (column_types or {}).items()}
    for name, dct in (("layer", layer), ("column_types", column_types)):
        extra = set(dct) - set(likelihoods)
        if extra:
            msg = f"{name} names modalities that are not in likelihoods: {sorted(extra)}. Registered: {list(likelihoods)}."
            raise KeyError(msg)
    if mdata.n_obs == 0:
        msg = "mdata has no observations; a model needs at least one observation with a registered modality."
        raise ValueError(msg)
    registry: dict[str, Any] = {"modalities": {}, "mask_key": mask_key or "", "order": [str(m) for m in likelihoods]}
    for mod, lik in likelihoods.items():
        if not isinstance(mod, str) or not mod or "." in mod:
            msg = (f"Modality name {mod!r} cannot name a model part (it must be a non-empty string without '.'); "
                   f"rename it, e.g. mdata.mod[{str(mod).replace('.', '_') or 'rna'!r}] = mdata.mod.pop({mod!r}); mdata.update().")
            raise RegistrationError(msg)
        if lik not in LIKELIHOODS:
            msg = f"Unknown likelihood {lik!r} for modality {mod!r}; expected one of {sorted(LIKELIHOODS)}."
            raise ValueError(msg)
        lik_cls = LIKELIHOODS[lik]
        if mod not in mdata.mod:
            msg = f"Modality {mod!r} is not in the MuData; it has {list(mdata.mod)}."
            raise KeyError(msg)
        if not lik_cls.is_table and mod in column_types:
            tables = [n for n, c in LIKELIHOODS.items() if c.is_table]
            msg = f"column_types is only for table modalities ({tables}), but {mod!r} has likelihood {lik!r}."
            raise ValueError(msg)
        adata = mdata.mod[mod]
        check_unique_names(adata, mod)
        X = get_matrix(adata, layer.get(mod), mod)
        entry: dict[str, Any] = {"likelihood": lik, "layer": layer.get(mod, ""), "n_vars": int(adata.n_vars)}
        check_values(X, mod, lik)
        if lik_cls.is_table:
            types, n_cat = _column_types(adata, X, column_types.get(mod, {}), mod)
            entry["column_types"], entry["n_categories"] = types, n_cat
            labels = adata.uns.get("categories", {})
            entry["categories"] = {str(c): [str(v) for v in labels[c]] for c, kind in zip(adata.var_names, types, strict=True)
                                   if kind == "categorical" and c in labels}
        if lik_cls.is_count and IMAGE_SHAPE_KEY not in adata.uns:
            entry["library"] = _check_bool("library_size", library_size)
        if IMAGE_SHAPE_KEY in adata.uns:
            if not lik_cls.allows_images:
                allowed = ", ".join(n for n, c in LIKELIHOODS.items() if c.allows_images)
                msg = f"Modality {mod!r} is an image (uns['{IMAGE_SHAPE_KEY}']) but has likelihood {lik!r}; use one of {allowed}."
                raise ValueError(msg)
            entry[IMAGE_SHAPE_KEY] = _image_shape(adata.uns[IMAGE_SHAPE_KEY], adata.n_vars, mod)
        else:  # constant pixels (background) are normal in images, constant genes are not
            _warn_degenerate(X, adata.var_names, mod)
        registry["modalities"][mod] = entry
    presence = presence_mask(mdata, registry)
    empty = ~presence.any(axis=1)
    if empty.any():
        names = list(mdata.obs_names[empty][:5])
        msg = (
            f"{int(empty.sum())} observation(s) have none of the registered modalities {list(likelihoods)} "
            f"(e.g. {names}). Remove them, e.g. mdata = mdata[mdata_mask].copy(), or register more modalities."
        )
        raise ValueError(msg)
    if outcome is not None:
        registry["outcome"] = check_outcome(mdata, outcome)
    covariates = check_covariates(mdata, batch_key=batch_key, categorical_covariate_keys=categorical_covariate_keys,
                                  continuous_covariate_keys=continuous_covariate_keys)
    if covariates is not None:
        registry["covariates"] = covariates
    if feature_graph is not None:
        if isinstance(feature_graph_strength, bool) or not isinstance(feature_graph_strength, (int, float)) \
                or not (np.isfinite(feature_graph_strength) and feature_graph_strength > 0):
            msg = (f"Expected feature_graph_strength to be a finite number > 0, got {feature_graph_strength!r}; "
                   "1 counts the graph as one observation, larger values trust the links more.")
            raise ValueError(msg)
        registry["feature_graph"] = {**check_feature_graph(mdata, feature_graph, list(likelihoods)),
                                     "strength": float(feature_graph_strength)}
        for mod in {e[0] for e in registry["feature_graph"]["edges"]} | {e[2] for e in registry["feature_graph"]["edges"]}:
            entry = registry["modalities"][mod]
            if LIKELIHOODS[entry["likelihood"]].is_table or IMAGE_SHAPE_KEY in entry:
                msg = f"feature_graph links modality {mod!r}, but only vector modalities with a single-family likelihood can be linked (not mixed tables or images)."
                raise ValueError(msg)
    mdata.uns[REGISTRY_KEY] = registry


def register_outcome(mdata: md.MuData, outcome: Mapping[str, Any] | None) -> None:
    """Add, replace or (with ``None``) remove the outcome of data already registered.

    The same as passing ``outcome`` to :func:`setup_mudata`, without registering the
    modalities again: for a file written after ``setup_mudata`` (as ``mdlprob fit --outcome``
    uses it).

    Parameters
    ----------
    outcome
        As :func:`setup_mudata`'s ``outcome``: ``{"key": "subtype", "type": "categorical"}``
        or ``{"time_key": "time", "event_key": "event", "type": "coxph" | "logistic_hazard"}``.

    Raises
    ------
    RegistrationError
        ``mdata`` was not registered with :func:`setup_mudata`.
    KeyError, ValueError
        As :func:`setup_mudata` for a bad ``outcome``.
    """
    registry = get_registry(mdata)
    registry.pop("outcome", None)
    if outcome is not None:
        registry["outcome"] = check_outcome(mdata, outcome)
    mdata.uns[REGISTRY_KEY] = registry


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        msg = f"Expected {name} to be True or False, got {value!r}."
        raise TypeError(msg)
    return bool(value)


def get_registry(mdata: md.MuData) -> dict[str, Any]:
    """The registry written by :func:`setup_mudata`, as plain Python types.

    Raises
    ------
    RegistrationError
        If ``setup_mudata`` was not called on ``mdata``.
    """
    reg = mdata.uns.get(REGISTRY_KEY) if isinstance(mdata, md.MuData) else None
    if reg is None:
        msg = "These data are not registered: call mdlprob.data.setup_mudata(mdata, likelihoods={...}) first."
        raise RegistrationError(msg)
    reg = _to_builtin(reg)
    order = reg.get("order")
    if order:  # an h5mu round trip sorts dict keys; the registry keeps the user's modality order
        reg["modalities"] = {m: reg["modalities"][m] for m in order}
    return reg


def get_matrix(adata, layer: str | None, mod: str):
    """The value matrix of a modality (``X`` or a layer), dense or sparse, unmodified."""
    if layer:
        if layer not in adata.layers:
            msg = f"Layer {layer!r} not found in modality {mod!r}; available layers: {list(adata.layers)}."
            raise KeyError(msg)
        X = adata.layers[layer]
    else:
        X = adata.X
    if X is None:
        msg = f"Modality {mod!r} has no values in X; pass layer={{'{mod}': '<layer>'}}."
        raise ValueError(msg)
    if hasattr(X, "to_memory"):
        X = X.to_memory()
    if not (sp.issparse(X) or isinstance(X, np.ndarray)):
        X = np.asarray(X)
    dtype = X.dtype
    if not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):
        msg = f"Modality {mod!r} holds values of dtype {dtype}; expected numbers. Encode tables with mdlprob.data.table_to_anndata."
        raise TypeError(msg)
    return X


def presence_mask(mdata: md.MuData, registry: Mapping[str, Any]) -> np.ndarray:
    """Boolean ``(n_obs, n_modalities)``: which registered modality each observation has.

    Modalities absent from ``mdata.mod`` are absent for every observation.
    """
    mods = list(registry["modalities"])
    out = np.zeros((mdata.n_obs, len(mods)), dtype=bool)
    for j, mod in enumerate(mods):
        if mod in mdata.mod:
            out[:, j] = np.asarray(mdata.obsmap[mod]) > 0
    key = registry.get("mask_key") or ""
    if key:
        if key not in mdata.obsm:
            msg = f"mask_key {key!r} not found in mdata.obsm; available keys: {list(mdata.obsm)}."
            raise KeyError(msg)
        given = mdata.obsm[key]
        if isinstance(given, pd.DataFrame):
            missing = [m for m in mods if m not in given.columns]
            if missing:
                msg = f"mdata.obsm[{key!r}] lacks columns for modalities {missing}."
                raise KeyError(msg)
            given = given[mods].to_numpy()
        given = np.asarray(given)
        if given.shape != out.shape or given.dtype != bool:
            msg = f"mdata.obsm[{key!r}] must be a boolean mask of shape {out.shape}, got {given.dtype} {given.shape}."
            raise ValueError(msg)
        out &= given
    return out


#: ``obs`` column :func:`presence_pattern` writes.
PRESENCE_KEY = "mdlprob_presence"


def presence_pattern(mdata: md.MuData, *, key: str = PRESENCE_KEY) -> pd.Series:
    """Each observation's presence pattern as a categorical ``obs`` column, e.g. ``"rna+clinical"``.

    The modalities an observation has, joined by ``+`` in registry order (every modality of
    ``mdata.mod`` when ``mdata`` is not registered), ``"none"`` when it has none; written to
    ``mdata.obs[key]`` (colour a latent embedding by it: ``mdlprob.pl.embedding``).
    """
    if "mdlprob" in mdata.uns:
        registry = get_registry(mdata)
        mask, mods = presence_mask(mdata, registry), list(registry["modalities"])
    else:
        mods = list(mdata.mod)
        mask = np.stack([np.asarray(mdata.obsmap[m]) > 0 for m in mods], axis=1)
    labels = ["+".join(m for m, has in zip(mods, row, strict=True) if has) or "none" for row in mask]
    counts = Counter(labels)
    order = sorted(counts, key=lambda lab: (-counts[lab], lab))  # most frequent first
    pattern = pd.Series(pd.Categorical(labels, categories=order), index=mdata.obs_names, name=key)
    mdata.obs[key] = pattern
    return pattern


def check_unique_names(adata, mod: str) -> None:
    """Observation and feature names of a modality must be unique: observations are paired across modalities by name."""
    for axis, names in (("obs_names", adata.obs_names), ("var_names", adata.var_names)):
        dup = names.duplicated()
        if dup.any():
            examples = list(dict.fromkeys(str(v) for v in names[dup]))[:5]
            fix = ("observations are paired across modalities by name" if axis == "obs_names"
                   else "each feature is one column of the model")
            msg = (f"Modality {mod!r} has {int(dup.sum())} duplicate {axis} (e.g. {examples}); {fix}, so they must be "
                   f"unique. Rename them (e.g. mdata.mod[{mod!r}].{axis[:3]}_names_make_unique()) or drop the duplicates.")
            raise RegistrationError(msg)


def check_categories(adata, entry: Mapping[str, Any], mod: str, X) -> None:
    """Categorical codes of new data must mean what they meant at training (same labels, known values).

    A code is an index into the column's labels (``uns["categories"]``); codes beyond the
    categories the model knows, labels it never saw, or another label order would be read
    silently as other categories.
    """
    if not LIKELIHOODS[entry["likelihood"]].is_table:
        return
    X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    known_labels = entry.get("categories", {})
    new_labels = adata.uns.get("categories", {})
    for j, (col, kind) in enumerate(zip(adata.var_names, entry["column_types"], strict=True)):
        if kind != "categorical":
            continue
        codes = np.unique(X[:, j][~np.isnan(X[:, j])]).astype(np.int64)
        col = str(col)
        if col in known_labels and col in new_labels:
            labels = [str(v) for v in new_labels[col]]
            used = [labels[c] for c in codes if 0 <= c < len(labels)]
            unseen = [v for v in used if v not in known_labels[col]]
            if unseen:
                msg = (f"Column {col!r} of modality {mod!r} has categories the model never saw at training: {unseen} "
                       f"(it knows {known_labels[col]}). Map them to known categories or set them to NaN (missing).")
                raise RegistrationError(msg)
            if any(known_labels[col].index(labels[c]) != c for c in codes if 0 <= c < len(labels)):
                msg = (f"Column {col!r} of modality {mod!r} codes its categories in another order than at training "
                       f"({labels} vs {known_labels[col]}). Re-encode it: pd.Categorical(values, categories={known_labels[col]}).")
                raise RegistrationError(msg)
        n_cat = int(entry["n_categories"][j])
        if codes.size and (codes.min() < 0 or codes.max() >= n_cat):
            bad = [int(c) for c in codes if c < 0 or c >= n_cat][:5]
            msg = (f"Column {col!r} of modality {mod!r} has category codes {bad} the model never saw at training "
                   f"(it knows codes 0..{n_cat - 1}). Map them to known categories or set them to NaN (missing).")
            raise RegistrationError(msg)


def check_values(X, mod: str, lik: str) -> None:
    vals = X.data if sp.issparse(X) else np.asarray(X)
    if vals.dtype == bool or np.issubdtype(vals.dtype, np.integer):
        finite = vals
    else:
        if np.isinf(vals).any():
            msg = f"Modality {mod!r} contains inf values; replace them (NaN marks a missing entry)."
            raise ValueError(msg)
        finite = vals[~np.isnan(vals)]
    LIKELIHOODS[lik].check_values(finite, mod)  # the likelihood owns its support


def _column_types(adata, X, override: Mapping[str, str], mod: str) -> tuple[list[str], list[int]]:
    X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    unknown = set(override) - set(adata.var_names)
    if unknown:
        msg = f"column_types[{mod!r}] names columns not in the modality: {sorted(unknown)}."
        raise KeyError(msg)
    given = adata.var[TYPE_KEY] if TYPE_KEY in adata.var else None
    types, n_cat = [], []
    for j, col in enumerate(adata.var_names):
        col_vals = X[:, j][~np.isnan(X[:, j])]
        kind = override.get(col) or (str(given.iloc[j]) if given is not None else _infer(col_vals))
        if kind not in COLUMN_TYPES:
            msg = f"Column {col!r} of modality {mod!r} has type {kind!r}; expected one of {COLUMN_TYPES}."
            raise ValueError(msg)
        k = 0
        if kind == "categorical":
            if col_vals.size and (col_vals.min() < 0 or not np.array_equal(col_vals, np.round(col_vals))):
                msg = f"Categorical column {col!r} of modality {mod!r} must hold integer codes 0..K-1; encode it with table_to_anndata."
                raise ValueError(msg)
            labels = adata.uns.get("categories", {}).get(col)
            k = max(int(col_vals.max()) + 1 if col_vals.size else 1, len(labels) if labels is not None else 0, 2)
        elif kind == "bernoulli" and col_vals.size and not np.isin(col_vals, (0, 1)).all():
            msg = f"Column {col!r} of modality {mod!r} is bernoulli but holds values other than 0/1."
            raise ValueError(msg)
        types.append(kind)
        n_cat.append(k)
    return types, n_cat


def _image_shape(value: Any, n_vars: int, mod: str) -> list[int]:
    shape = np.asarray(value).ravel()
    ok = shape.size == 3 and np.issubdtype(shape.dtype, np.integer) and (shape > 0).all()
    if not ok:
        msg = f"Modality {mod!r}: expected uns['{IMAGE_SHAPE_KEY}'] to be three positive ints (C, H, W), got {value!r}."
        raise ValueError(msg)
    c, h, w = (int(v) for v in shape)
    if c * h * w != n_vars:
        msg = (f"Modality {mod!r}: uns['{IMAGE_SHAPE_KEY}'] = {(c, h, w)} has C*H*W = {c * h * w} pixels but the "
               f"modality has {n_vars} features; flatten images channel-first, as X = images.reshape(n_obs, -1).")
        raise ValueError(msg)
    if min(h, w) < _MIN_IMAGE_SIDE:
        msg = f"Modality {mod!r}: images must be at least {_MIN_IMAGE_SIDE} pixels a side, got {(h, w)}."
        raise ValueError(msg)
    return [c, h, w]


def _infer(vals: np.ndarray) -> str:
    if vals.size and np.isin(vals, (0, 1)).all():
        return "bernoulli"
    uniq = np.unique(vals)
    if 3 <= uniq.size <= _MAX_AUTO_CATEGORIES and uniq.min() >= 0 and np.array_equal(uniq, np.round(uniq)):
        return "categorical"
    return "gaussian"


def _warn_degenerate(X, var_names, mod: str) -> None:
    if X.shape[0] == 0:
        msg = (f"Modality {mod!r} has no observations: a model learns nothing about it, and imputing it raises "
               "unless allow_unobserved=True.")
        warnings.warn(msg, DataWarning, stacklevel=3)
        return
    if sp.issparse(X):
        X = X.tocsc()
        nnz = np.diff(X.indptr)
        mx, mn = X.max(axis=0).toarray().ravel(), X.min(axis=0).toarray().ravel()
        const = (mx == mn) & ((nnz == 0) | (nnz == X.shape[0]))
        all_nan = np.zeros(X.shape[1], dtype=bool)
    else:
        X = np.asarray(X, dtype=np.float64)
        all_nan = np.isnan(X).all(axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            const = (np.nanmax(X, axis=0) == np.nanmin(X, axis=0)) & ~all_nan
    for flag, what in ((all_nan, "entirely NaN"), (const, "constant")):
        if flag.any():
            names = list(np.asarray(var_names)[flag][:5])
            msg = f"Modality {mod!r}: {int(flag.sum())} feature(s) are {what} (e.g. {names}); they carry no information."
            warnings.warn(msg, DataWarning, stacklevel=3)


def _to_builtin(obj):
    """Undo what an h5 round trip does to the registry (arrays for lists, numpy scalars)."""
    if isinstance(obj, Mapping):
        return {str(k): _to_builtin(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return [_to_builtin(v) for v in obj.tolist()]
    if isinstance(obj, (list, tuple)):
        return [_to_builtin(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj

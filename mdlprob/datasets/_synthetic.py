"""Synthetic multimodal data with a known latent space: the ground truth of tests and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data._mudata import make_mudata
from ..data._table import TYPE_KEY

DEFAULT_N_VARS = {"rna": 200, "protein": 30}
CLINICAL_COLUMNS = {
    "age": "gaussian", "bmi": "gaussian", "marker": "gaussian",
    "smoker": "bernoulli", "high_stage": "bernoulli", "site": "categorical",
}
_N_SITES = 4
KNOWN = ("rna", "protein", "clinical")
GRAPHS = ("grid", "ring", "clusters")
_SMOOTHING_ROUNDS = 3


def synthetic(
    n_obs: int,
    *,
    modalities: Sequence[str] = KNOWN,
    missing: Mapping[str, float] | None = None,
    n_vars: Mapping[str, int] | None = None,
    n_latent: int = 6,
    nan_rate: float = 0.05,
    seed: int = 0,
    graph: Literal["grid", "ring", "clusters"] | None = None,
    feature_links: bool = False,
    batches: int | None = None,
    batch_effect: float = 0.5,
) -> md.MuData:
    r"""Counts, proteins and a clinical table generated from one known latent variable.

    .. math::
        z_i \sim \mathcal{N}(0, I_{d}), \quad
        x^{\text{rna}}_{ig} \sim \mathrm{NB}(e^{z_i W_g + b_g + \ell_i}, \theta_g), \quad
        x^{\text{protein}}_{ip} \sim \mathrm{NB}(e^{z_i V_p + c_p}, \phi_p),

    clinical columns are linear-Gaussian (``age``, ``bmi``, ``marker``), logistic
    (``smoker``, ``high_stage``) and softmax (``site``, 4 levels) in :math:`z`, with a
    fraction ``nan_rate`` of entries set to NaN. ``obs`` holds ``label`` (3 classes,
    softmax in :math:`z`), and Weibull survival ``time``/``event`` with risk linear in
    :math:`z` and uniform censoring.

    Parameters
    ----------
    n_obs
        Number of observations (scales to :math:`10^6`).
    modalities
        Subset of ``("rna", "protein", "clinical")``.
    missing
        Modality to the fraction of observations that lack it (MCAR). An observation never
        loses all its modalities: one of them is given back at random.
    n_vars
        Feature counts for ``rna`` (default 200) and ``protein`` (default 30).
    n_latent
        Dimension of the true latent.
    nan_rate
        Fraction of clinical entries set to NaN inside present observations.
    seed
        Seed of the generator; the same seed gives the same data.
    graph
        Make the latent smooth over a known graph of observations: ``grid`` (8-neighbour
        spatial lattice, coordinates in ``obsm["spatial"]``), ``ring`` (each observation
        linked to the 3 nearest on either side) or ``clusters`` (random links within
        ``n_obs // 30`` groups, ``obs["cluster"]``). The iid latent is averaged over
        neighbours (:math:`z \leftarrow (z + Az) / (1 + \deg)`, 3 rounds) and standardised.
        Writes the true adjacency to ``obsp["graph_true"]`` and a copy with randomly
        relabelled nodes (same degrees, no signal) to ``obsp["graph_shuffled"]``. Without a
        graph, the outputs are exactly those of earlier versions.
    feature_links
        Make protein ``prot{p}`` the product of gene ``gene{p}``: its loadings are the
        gene's (scaled by 0.8, plus noise of sd 0.05), so a feature guidance graph carries
        signal. Writes the links as ``uns["feature_links"]``, pairs ``[gene, protein]``
        (pass them as ``setup_mudata(..., feature_graph=mdata.uns["feature_links"])``),
        and a shuffled copy with no signal as ``uns["feature_links_shuffled"]``. Needs
        ``rna`` and ``protein`` with at least as many genes as proteins. Without it, the
        outputs are exactly those of earlier versions.
    batches
        Number :math:`K` of batches: each observation is put in one at random (uniformly,
        independently of :math:`z`), written as the categorical ``obs["batch"]``
        (``batch0``...), and the count modalities (``rna``, ``protein``) get a known batch
        effect on their log-mean,

        .. math::
            \log \mu_{ig} = s_{k_i g}\, z_i W_g + b_g + a_{k_i g} + \ell_i, \qquad
            a_{kg} \sim \mathcal{N}(0, \sigma^2), \quad \log s_{kg} \sim \mathcal{N}(0, (\sigma/2)^2),

        an additive shift :math:`a` (a per-feature capture efficiency) and a multiplicative
        change :math:`s` of the biological signal, with :math:`\sigma` = ``batch_effect``.
        The clinical table is unaffected. ``uns["batch_effect"][modality]`` holds ``shift``
        and ``scale`` ``(K, n_vars)``, ``uns["truth"][modality]["mean_batch_free"]`` the mean
        without the batch effect. ``batches=1`` writes one batch and no effect. Without it
        (``None``), the outputs are exactly those of earlier versions.
    batch_effect
        :math:`\sigma` above (0 gives batches without effect).

    Returns
    -------
    MuData (outer join: a modality holds only the observations that have it) with
    ``obsm["z_true"]`` and, in ``uns["truth"][modality]``, ``values`` (every entry before
    hiding, ``(n_obs, n_vars)``) and ``mean`` (its conditional mean given ``z``). Use
    :func:`hidden_truth` to get the hidden entries.
    """
    if isinstance(n_obs, bool) or not isinstance(n_obs, (int, np.integer)) or n_obs < 2:
        msg = f"Expected n_obs to be an int >= 2, got {n_obs!r}."
        raise ValueError(msg)
    mods = list(modalities)
    if not mods or any(m not in KNOWN for m in mods) or len(set(mods)) != len(mods):
        msg = f"Expected modalities to be distinct names from {KNOWN}, got {modalities!r}."
        raise ValueError(msg)
    missing = dict(missing or {})
    for m, rate in missing.items():
        if m not in mods or not 0.0 <= rate < 1.0:
            msg = f"missing[{m!r}] must name one of {mods} with a rate in [0, 1), got {rate!r}."
            raise ValueError(msg)
    if feature_links and not ({"rna", "protein"} <= set(mods)):
        msg = f"feature_links=True links rna genes to proteins; modalities must include both, got {mods}."
        raise ValueError(msg)
    if graph is not None and graph not in GRAPHS:
        msg = f"Expected graph to be None or one of {GRAPHS}, got {graph!r}."
        raise ValueError(msg)
    if batches is not None and (isinstance(batches, bool) or not isinstance(batches, (int, np.integer)) or batches < 1):
        msg = f"Expected batches to be None or an int >= 1 (the number of batches), got {batches!r}."
        raise ValueError(msg)
    if not (isinstance(batch_effect, (int, float)) and np.isfinite(batch_effect) and batch_effect >= 0):
        msg = f"Expected batch_effect to be a finite number >= 0 (sd of the log-scale batch shifts), got {batch_effect!r}."
        raise ValueError(msg)
    sizes = {**DEFAULT_N_VARS, **dict(n_vars or {})}
    if feature_links and sizes["rna"] < sizes["protein"]:
        msg = f"feature_links=True needs at least as many genes as proteins, got n_vars={sizes}."
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    n = int(n_obs)
    z = rng.standard_normal((n, n_latent)).astype(np.float32)
    if graph is not None:
        grng = np.random.default_rng([seed, 1])
        adj, extra = _GRAPH_BUILDERS[graph](n, grng)
        z = _smooth(z, adj)
    truth, adatas = {}, {}
    batch, effects = None, {}
    if batches is not None:
        brng = np.random.default_rng([seed, 4])
        batch = brng.integers(0, int(batches), size=n)
        for m in ("rna", "protein"):
            if m in mods:
                effects[m] = _batch_effect(batch, int(batches), sizes[m], batch_effect, brng)
    for m in mods:
        values, mean, var, loadings = _GENERATORS[m](z, sizes.get(m, 0), rng, **({"effect": effects[m]} if m in effects else {}))
        truth[m] = {"values": values, "mean": mean}
        adatas[m] = var
        if m == "rna":
            gene_loadings = loadings
    if feature_links:
        truth["protein"] = _linked_protein(z, gene_loadings, sizes["protein"], np.random.default_rng([seed, 2]),
                                           effects.get("protein"))
    for m, effect in effects.items():
        truth[m]["mean_batch_free"] = effect["mean_batch_free"]
    present = _presence(n, mods, missing, rng)
    obs_names = pd.Index([f"obs{i}" for i in range(n)])
    mod_data = {}
    for j, m in enumerate(mods):
        X = truth[m]["values"][present[:, j]].copy()
        if m == "clinical":
            X[rng.random(X.shape) < nan_rate] = np.nan
        mod_data[m] = ad.AnnData(X, obs=pd.DataFrame(index=obs_names[present[:, j]]), var=adatas[m].var,
                                 uns=dict(adatas[m].uns))
    mdata = make_mudata(mod_data, obs_order=obs_names)
    mdata.obs["label"], mdata.obs["time"], mdata.obs["event"] = _outcomes(z, rng)
    mdata.obsm["z_true"] = z
    mdata.uns["truth"] = truth
    if batch is not None:
        mdata.obs["batch"] = pd.Categorical.from_codes(batch, categories=[f"batch{k}" for k in range(int(batches))])
        mdata.uns["batch_effect"] = {m: {"shift": e["shift"], "scale": e["scale"]} for m, e in effects.items()}
    if feature_links:
        links = [[f"gene{p}", f"prot{p}"] for p in range(sizes["protein"])]
        genes = np.random.default_rng([seed, 3]).permutation(sizes["rna"])[: sizes["protein"]]
        mdata.uns["feature_links"] = links
        mdata.uns["feature_links_shuffled"] = [[f"gene{g}", f"prot{p}"] for p, g in enumerate(genes)]
    if graph is not None:
        perm = grng.permutation(n)
        mdata.obsp["graph_true"] = adj
        mdata.obsp["graph_shuffled"] = adj[perm][:, perm].tocsr()
        for key, value in extra.items():
            (mdata.obsm if key == "spatial" else mdata.obs)[key] = value
    return mdata


def hidden_truth(mdata: md.MuData, modality: str) -> tuple[np.ndarray, np.ndarray]:
    """True values of ``modality`` for every observation, and which entries the data hide.

    Returns
    -------
    values
        ``(n_obs, n_vars)`` true values from ``uns["truth"]``.
    hidden
        Bool ``(n_obs, n_vars)``: the observation lacks the modality, or the entry is NaN.
    """
    if "truth" not in mdata.uns or modality not in mdata.uns["truth"]:
        msg = f"mdata.uns['truth'][{modality!r}] not found; hidden_truth needs data made by mdlprob.datasets.synthetic or synthetic_scans."
        raise KeyError(msg)
    values = np.asarray(mdata.uns["truth"][modality]["values"])
    hidden = np.ones(values.shape, dtype=bool)
    rows = np.asarray(mdata.obsmap[modality]).astype(np.int64) - 1
    present = rows >= 0
    X = mdata.mod[modality].X
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    hidden[present] = np.isnan(X[rows[present]])
    return values, hidden


def _presence(n: int, mods: list[str], missing: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    present = np.ones((n, len(mods)), dtype=bool)
    for j, m in enumerate(mods):
        rate = missing.get(m, 0.0)
        if rate > 0:
            present[rng.permutation(n)[: round(rate * n)], j] = False
    empty = np.flatnonzero(~present.any(1))
    present[empty, rng.integers(0, len(mods), size=empty.size)] = True
    return present


def _batch_effect(batch: np.ndarray, n_batches: int, n_vars: int, sd: float, rng: np.random.Generator) -> dict:
    """Per-batch shift and scale of the log-mean of one count modality; batch 1 of 1 gets none."""
    if n_batches == 1:
        shift, scale = np.zeros((1, n_vars), np.float32), np.ones((1, n_vars), np.float32)
    else:
        shift = (sd * rng.standard_normal((n_batches, n_vars))).astype(np.float32)
        scale = np.exp(0.5 * sd * rng.standard_normal((n_batches, n_vars))).astype(np.float32)
    return {"shift": shift, "scale": scale, "batch": batch}


def _counts(z, n_vars, rng, *, base, spread, log_theta, library_sd, W=None, effect=None):
    k = z.shape[1]
    if W is None:
        W = (rng.standard_normal((k, n_vars)) * spread * (rng.random((k, n_vars)) < 0.5)).astype(np.float32)
    b = (base + 0.5 * rng.standard_normal(n_vars)).astype(np.float32)
    lib = (library_sd * rng.standard_normal((z.shape[0], 1))).astype(np.float32)
    if effect is None:
        mean = np.exp(np.clip(z @ W + b + lib, None, 12.0)).astype(np.float32)
    else:
        batch = effect["batch"]
        effect["mean_batch_free"] = np.exp(np.clip(z @ W + b + lib, None, 12.0)).astype(np.float32)
        eta = (z @ W) * effect["scale"][batch] + b + effect["shift"][batch] + lib
        mean = np.exp(np.clip(eta, None, 12.0)).astype(np.float32)
    theta = np.exp(log_theta + 0.3 * rng.standard_normal(n_vars)).astype(np.float32)
    values = rng.poisson(rng.gamma(theta, mean / theta)).astype(np.float32)
    return values, mean, W


def _rna(z, n_vars, rng, effect=None):
    values, mean, W = _counts(z, n_vars, rng, base=1.0, spread=0.6, log_theta=1.5, library_sd=0.2, effect=effect)
    return values, mean, ad.AnnData(var=pd.DataFrame(index=[f"gene{g}" for g in range(n_vars)])), W


def _protein(z, n_vars, rng, effect=None):
    values, mean, W = _counts(z, n_vars, rng, base=3.5, spread=0.5, log_theta=2.0, library_sd=0.1, effect=effect)
    return values, mean, ad.AnnData(var=pd.DataFrame(index=[f"prot{p}" for p in range(n_vars)])), W


def _linked_protein(z, gene_loadings, n_vars, rng, effect=None) -> dict:
    """Protein p with gene p's loadings (scaled, plus noise): what a feature link asserts."""
    W = (0.8 * gene_loadings[:, :n_vars] + 0.05 * rng.standard_normal((z.shape[1], n_vars))).astype(np.float32)
    values, mean, _ = _counts(z, n_vars, rng, base=3.5, spread=0.5, log_theta=2.0, library_sd=0.1, W=W, effect=effect)
    return {"values": values, "mean": mean}


def _clinical(z, _n_vars, rng):
    n, k = z.shape
    A = rng.standard_normal((k, 3)).astype(np.float32) / np.sqrt(k)
    lin = z @ A
    gauss_mean = np.array([60.0, 25.0, 0.0], dtype=np.float32) + lin * np.array([8.0, 3.0, 1.0], dtype=np.float32)
    gauss = gauss_mean + rng.standard_normal((n, 3)).astype(np.float32) * np.array([5.0, 2.0, 0.5], dtype=np.float32)
    logits = z @ (rng.standard_normal((k, 2)).astype(np.float32) * 1.5 / np.sqrt(k))
    p = 1.0 / (1.0 + np.exp(-logits))
    binary = (rng.random((n, 2)) < p).astype(np.float32)
    site_logits = z @ (rng.standard_normal((k, _N_SITES)).astype(np.float32) * 2.0 / np.sqrt(k))
    site_p = np.exp(site_logits - site_logits.max(1, keepdims=True))
    site_p /= site_p.sum(1, keepdims=True)
    site = (site_p.cumsum(1) > rng.random((n, 1))).argmax(1).astype(np.float32)
    values = np.column_stack([gauss, binary, site]).astype(np.float32)
    mean = np.column_stack([gauss_mean, p, site_p.argmax(1)]).astype(np.float32)
    var = pd.DataFrame({TYPE_KEY: list(CLINICAL_COLUMNS.values())}, index=list(CLINICAL_COLUMNS))
    return values, mean, ad.AnnData(var=var, uns={"categories": {"site": [f"site{i}" for i in range(_N_SITES)]}}), None


def _outcomes(z, rng):
    n, k = z.shape
    logits = z @ (rng.standard_normal((k, 3)) * 2.0 / np.sqrt(k))
    gumbel = -np.log(-np.log(rng.random((n, 3))))
    label = pd.Categorical.from_codes((logits + gumbel).argmax(1), categories=["A", "B", "C"])
    risk = z @ (rng.standard_normal(k) / np.sqrt(k))
    t_event = 10.0 * (-np.log(rng.random(n)) / np.exp(risk)) ** (1.0 / 1.5)
    t_censor = rng.uniform(0.0, np.quantile(t_event, 0.9), n)
    event = (t_event <= t_censor).astype(np.int64)
    return label, np.minimum(t_event, t_censor), event


def _symmetric(rows: np.ndarray, cols: np.ndarray, n: int) -> sp.csr_matrix:
    keep = rows != cols
    adj = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32), (rows[keep], cols[keep])), shape=(n, n))
    adj = adj.maximum(adj.T).tocsr()
    adj.data[:] = 1.0
    return adj


def _grid(n: int, _rng: np.random.Generator):
    side = int(np.ceil(np.sqrt(n)))
    r, c = np.divmod(np.arange(n), side)
    rows, cols = [], []
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            rr, cc = r + dr, c + dc
            j = rr * side + cc
            ok = (rr >= 0) & (cc >= 0) & (cc < side) & (j < n) & ((dr != 0) | (dc != 0))
            rows.append(np.arange(n)[ok])
            cols.append(j[ok])
    spatial = np.column_stack([r, c]).astype(np.float32)
    return _symmetric(np.concatenate(rows), np.concatenate(cols), n), {"spatial": spatial}


def _ring(n: int, _rng: np.random.Generator):
    i = np.arange(n)
    rows = np.concatenate([i for _ in range(3)])
    cols = np.concatenate([(i + s) % n for s in range(1, 4)])
    return _symmetric(rows, cols, n), {}


def _clusters(n: int, rng: np.random.Generator):
    n_clusters = max(2, n // 30)
    label = rng.integers(0, n_clusters, size=n)
    rows, cols = [], []
    for c in range(n_clusters):
        members = np.flatnonzero(label == c)
        if len(members) < 2:
            continue
        for i in members:
            others = members[members != i]
            rows.append(np.full(min(5, len(others)), i))
            cols.append(rng.choice(others, size=min(5, len(others)), replace=False))
    adj = _symmetric(np.concatenate(rows), np.concatenate(cols), n) if rows else sp.csr_matrix((n, n), dtype=np.float32)
    return adj, {"cluster": pd.Categorical(label)}


def _smooth(z: np.ndarray, adj: sp.csr_matrix) -> np.ndarray:
    deg = np.asarray(adj.sum(1)).ravel()[:, None]
    for _ in range(_SMOOTHING_ROUNDS):
        z = (z + adj @ z) / (1.0 + deg)
    z = (z - z.mean(0)) / np.maximum(z.std(0), 1e-8)
    return z.astype(np.float32)


_GRAPH_BUILDERS = {"grid": _grid, "ring": _ring, "clusters": _clusters}
_GENERATORS = {"rna": _rna, "protein": _protein, "clinical": _clinical}

"""Sample graphs: masked kNN over whatever modalities two observations share, and graph batches."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import mudata as md
import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from ..distributions import LIKELIHOODS
from ._setup import get_registry
from ._tensors import MultimodalTensors, tensors_from_mudata

GRAPH_KEY = "mdlprob_graph"
_CHUNK_ELEMENTS = 2**24


class MaskedEmbedding:
    """Per-modality standardised PCA coordinates, fitted on the observations that have each modality.

    Count modalities are scaled to 10^4 counts per observation and ``log1p``-transformed;
    every feature is standardised over the present observations (a NaN entry becomes the
    feature mean), projected on at most ``n_pcs`` principal axes and scaled so that the mean
    squared norm is 1. An absent modality gets zero coordinates and never enters a distance.

    Parameters
    ----------
    params
        Modality to ``{"count", "mean", "sd", "components", "scale"}`` arrays (from :meth:`fit`).
    """

    def __init__(self, params: Mapping[str, Mapping[str, np.ndarray]]) -> None:
        self.params = {m: dict(p) for m, p in params.items()}

    @property
    def modalities(self) -> list[str]:
        return list(self.params)

    @classmethod
    def fit(cls, tensors: MultimodalTensors, likelihoods: Mapping[str, str], *, n_pcs: int = 30,
            seed: int = 0) -> MaskedEmbedding:
        """Fit on ``tensors``; ``likelihoods`` (modality to likelihood, registry order) selects the modalities."""
        from sklearn.utils.extmath import randomized_svd

        order = list(tensors.x)
        params = {}
        for m, lik in likelihoods.items():
            j = order.index(m)
            rows = tensors.presence[:, j].numpy()
            count = np.array(LIKELIHOODS[lik].is_count)
            vals = _prepare(tensors, m, rows, count)
            with warnings.catch_warnings():  # all-NaN features (or no present row) give NaN, set below
                warnings.simplefilter("ignore", RuntimeWarning)
                mean, sd = np.nan_to_num(np.nanmean(vals, 0)), np.nan_to_num(np.nanstd(vals, 0))
            sd[sd == 0] = 1.0
            Z = np.nan_to_num((vals - mean) / sd)
            n_comp = min(n_pcs, Z.shape[1], max(1, Z.shape[0] - 1))
            if n_comp < Z.shape[1] and Z.shape[0] > 1:
                _, _, comps = randomized_svd(Z, n_comp, random_state=seed)
            else:
                comps = np.eye(Z.shape[1])
            proj = Z @ comps.T
            scale = np.sqrt(max(float((proj**2).sum(1).mean()) if len(proj) else 1.0, 1e-12))
            params[m] = {"count": count, "mean": mean.astype(np.float32), "sd": sd.astype(np.float32),
                         "components": comps.astype(np.float32), "scale": np.array(scale, dtype=np.float32)}
        return cls(params)

    def transform(self, tensors: MultimodalTensors) -> tuple[list[Tensor], Tensor]:
        """Coordinates per modality (``(n_obs, n_pcs_m)``, zero where absent) and presence ``(n_obs, n_mod)``."""
        order = list(tensors.x)
        coords, presence = [], []
        for m, p in self.params.items():
            j = order.index(m)
            rows = tensors.presence[:, j].numpy()
            out = np.zeros((tensors.n_obs, p["components"].shape[0]), dtype=np.float32)
            vals = _prepare(tensors, m, rows, p["count"])
            out[rows] = np.nan_to_num((vals - p["mean"]) / p["sd"]) @ p["components"].T / p["scale"]
            coords.append(torch.from_numpy(out))
            presence.append(torch.from_numpy(rows.copy()))
        return coords, torch.stack(presence, 1)

    def state(self) -> dict[str, np.ndarray]:
        """Flat arrays (``"<modality>/<name>"``) for ``numpy.savez``; :meth:`from_state` inverts it."""
        return {f"{m}/{k}": v for m, p in self.params.items() for k, v in p.items()}

    @classmethod
    def from_state(cls, state: Mapping[str, np.ndarray], modalities: Sequence[str]) -> MaskedEmbedding:
        keys = ("count", "mean", "sd", "components", "scale")
        return cls({m: {k: np.asarray(state[f"{m}/{k}"]) for k in keys} for m in modalities})


def _prepare(tensors: MultimodalTensors, m: str, rows: np.ndarray, count: np.ndarray) -> np.ndarray:
    vals = tensors.x[m].numpy()[rows].astype(np.float64)
    if tensors.observed[m] is not None:
        vals[~tensors.observed[m].numpy()[rows]] = np.nan
    if bool(count):
        total = np.nansum(vals, 1, keepdims=True)
        vals = np.log1p(vals / np.maximum(total, 1.0) * 1e4)
    return vals


def masked_knn(query: tuple[list[Tensor], Tensor], ref: tuple[list[Tensor], Tensor], k: int, *,
               exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    r"""The ``k`` nearest reference rows of every query row under the masked distance.

    .. math::
        d(i, j) = \frac{1}{|M_i \cap M_j|} \sum_{m \in M_i \cap M_j} \lVert u_{im} - u_{jm} \rVert^2,

    with :math:`M_i` the modalities row :math:`i` has; pairs sharing no modality are never
    neighbours. ``query``/``ref`` are :meth:`MaskedEmbedding.transform` outputs.

    Returns
    -------
    Query and reference row indices of the edges (fewer than ``k`` per row where fewer
    reference rows share a modality with it).
    """
    (qc, qp), (rc, rp) = query, ref
    n_q, n_r = qp.shape[0], rp.shape[0]
    k_eff = min(k, n_r - int(exclude_self))
    if k_eff <= 0 or n_q == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rp_f = rp.float()
    r_sq = [(c**2).sum(1) for c in rc]
    rows, cols = [], []
    chunk = max(1, _CHUNK_ELEMENTS // max(n_r, 1))
    for start in range(0, n_q, chunk):
        stop = min(n_q, start + chunk)
        qpf = qp[start:stop].float()
        total = torch.zeros(stop - start, n_r)
        for m, (q, r) in enumerate(zip(qc, rc, strict=True)):
            d = ((q[start:stop] ** 2).sum(1, keepdim=True) + r_sq[m] - 2.0 * q[start:stop] @ r.t()).clamp_min(0.0)
            total += d * qpf[:, m : m + 1] * rp_f[:, m]
        shared = qpf @ rp_f.t()
        dist = torch.where(shared > 0, total / shared.clamp_min(1.0), torch.full_like(total, float("inf")))
        if exclude_self:
            local = torch.arange(stop - start)
            dist[local, local + start] = float("inf")
        val, idx = torch.topk(dist, k_eff, dim=1, largest=False)
        ok = torch.isfinite(val)
        rows.append((torch.arange(start, stop).unsqueeze(1).expand_as(idx))[ok])
        cols.append(idx[ok])
    return torch.cat(rows).numpy(), torch.cat(cols).numpy()


def build_sample_graph(mdata: md.MuData, *, k: int = 15, use: Literal["available"] | Sequence[str] = "available",
                       key: str = GRAPH_KEY, n_pcs: int = 30) -> sp.csr_matrix:
    """Symmetric kNN graph over observations from the registered modalities each pair shares.

    Each modality is embedded separately (:class:`MaskedEmbedding`, fitted on the
    observations that have it) and the distance of two observations averages the squared
    distances over the modalities both have (:func:`masked_knn`). An absent modality's
    values (including rows hidden through ``mask_key``) never enter, so the graph leaks
    nothing of a hidden modality. The kNN relation is symmetrised (union).

    Parameters
    ----------
    mdata
        Data registered with :func:`mdlprob.data.setup_mudata`.
    k
        Neighbours per observation (before symmetrisation).
    use
        ``"available"`` (every registered modality) or the registered modalities to use.
    key
        ``mdata.obsp`` key the adjacency is written to.
    n_pcs
        Principal components per modality.

    Returns
    -------
    ``scipy.sparse.csr_matrix`` ``(n_obs, n_obs)`` of 0/1 float32, no self-loops, also
    stored in ``mdata.obsp[key]``.

    Examples
    --------
    >>> import mdlprob
    >>> mdata = mdlprob.datasets.synthetic(100, missing={"protein": 0.5})
    >>> mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb", "clinical": "mixed"})
    >>> graph = mdlprob.data.build_sample_graph(mdata, k=5)
    >>> graph.shape, (graph != graph.T).nnz
    ((100, 100), 0)
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        msg = f"Expected k to be an int >= 1, got {k!r}."
        raise ValueError(msg)
    if isinstance(n_pcs, bool) or not isinstance(n_pcs, (int, np.integer)) or n_pcs < 1:
        msg = f"Expected n_pcs to be an int >= 1, got {n_pcs!r}."
        raise ValueError(msg)
    registry = get_registry(mdata)
    liks = {m: e["likelihood"] for m, e in registry["modalities"].items()}
    if isinstance(use, str):
        if use != "available":
            msg = f"Expected use to be 'available' or a list of registered modalities, got {use!r}."
            raise ValueError(msg)
        chosen = list(liks)
    else:
        chosen = list(use)
        unknown = [m for m in chosen if m not in liks]
        if unknown or not chosen:
            msg = f"Expected use to name registered modalities {list(liks)}, got {list(use)!r}."
            raise ValueError(msg)
    tensors = tensors_from_mudata(mdata, registry)
    emb = MaskedEmbedding.fit(tensors, {m: liks[m] for m in chosen}, n_pcs=int(n_pcs))
    coords = emb.transform(tensors)
    rows, cols = masked_knn(coords, coords, int(k), exclude_self=True)
    n = mdata.n_obs
    adj = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, n))
    adj = adj.maximum(adj.T).tocsr()
    mdata.obsp[key] = adj
    return adj


def in_neighbours(adjacency: Any, n_obs: int) -> tuple[Tensor, Tensor]:
    """CSR ``(indptr, indices)`` of a square adjacency, self-loops dropped: row ``i`` lists ``i``'s neighbours."""
    adj = sp.csr_matrix(adjacency, dtype=np.float32) if not sp.issparse(adjacency) else adjacency.tocsr()
    if adj.shape != (n_obs, n_obs):
        msg = f"Expected a graph of shape ({n_obs}, {n_obs}) over the observations, got {adj.shape}."
        raise ValueError(msg)
    adj = adj.copy()
    adj.setdiag(0)
    adj.eliminate_zeros()
    adj.sort_indices()
    return torch.from_numpy(adj.indptr.astype(np.int64)), torch.from_numpy(adj.indices.astype(np.int64))


def _in_edges(indptr: Tensor, indices: Tensor, nodes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Neighbours of ``nodes``: source ids, the owner's position in ``nodes``, and each owner's degree."""
    start, deg = indptr[nodes], indptr[nodes + 1] - indptr[nodes]
    owner = torch.repeat_interleave(torch.arange(len(nodes), device=nodes.device), deg)
    first = torch.repeat_interleave(torch.cumsum(deg, 0) - deg, deg)
    offset = torch.arange(len(owner), device=nodes.device) - first
    return indices[start[owner] + offset], owner, deg


def sample_subgraph(indptr: Tensor, indices: Tensor, seeds: Tensor, *, n_hops: int,
                    fanout: int | None = None) -> tuple[Tensor, Tensor]:
    """Nodes within ``n_hops`` of ``seeds`` (at most ``fanout`` random neighbours per node and hop).

    Like torch-geometric's ``NeighborLoader`` (which needs ``pyg-lib`` or ``torch-sparse``),
    in plain torch. Returns the node ids, ``seeds`` first, and the ``(2, n_edges)`` local
    ``edge_index`` (source, target) of the subgraph they induce.
    """
    n_nodes = indptr.numel() - 1
    pos = torch.full((n_nodes,), -1, dtype=torch.long, device=seeds.device)
    pos[seeds] = torch.arange(len(seeds), device=seeds.device)
    nodes, frontier = [seeds], seeds
    count = len(seeds)
    for _ in range(n_hops):
        src, owner, deg = _in_edges(indptr, indices, frontier)
        if fanout is not None and len(src):
            perm = torch.randperm(len(src), device=src.device)
            owner_sorted, order = owner[perm].sort(stable=True)
            rank = torch.arange(len(src), device=src.device) - (torch.cumsum(deg, 0) - deg)[owner_sorted]
            src = src[perm[order]][rank < fanout]
        new = src[pos[src] < 0].unique()
        if not len(new):
            break
        pos[new] = torch.arange(count, count + len(new), device=seeds.device)
        nodes.append(new)
        count += len(new)
        frontier = new
    nodes_t = torch.cat(nodes)
    src, owner, _ = _in_edges(indptr, indices, nodes_t)
    keep = pos[src] >= 0
    return nodes_t, torch.stack([pos[src[keep]], owner[keep]])


_BASE_FIELDS = tuple(f.name for f in dataclasses.fields(MultimodalTensors))


def _fields(t: MultimodalTensors) -> dict[str, Any]:
    return {name: getattr(t, name) for name in _BASE_FIELDS}


def _head(value: Any, n: int) -> Any:
    """The first ``n`` rows of every tensor in ``value`` (nested dicts; ``None`` kept)."""
    if isinstance(value, dict):
        return {k: _head(v, n) for k, v in value.items()}
    return None if value is None else value[:n]


@dataclass
class GraphTensors(MultimodalTensors):
    """:class:`MultimodalTensors` of the observations plus the graph their encoders pass messages over.

    ``x``/``observed``/``presence`` hold the observations (``targets`` rows of ``nodes``);
    ``nodes`` holds every graph node (the observations, plus reference observations they are
    attached to for inductive inference). :meth:`batch` returns the usual batch of the
    selected observations plus ``batch["graph"]``: the tensors of their ``n_hops``
    neighbourhood (the observations first), its ``edge_index`` and ``degree``
    ``(n_nodes, n_modalities)``, the number of each node's neighbours (itself included) that
    have each modality in the whole graph, so that normalisations do not depend on the batch.
    """

    nodes: MultimodalTensors | None = None
    targets: Tensor | None = None
    indptr: Tensor | None = None
    indices: Tensor | None = None
    n_hops: int = 1
    fanout: int | None = None

    @classmethod
    def build(cls, nodes: MultimodalTensors, indptr: Tensor, indices: Tensor, *, targets: Tensor | None = None,
              n_hops: int = 1, fanout: int | None = None) -> GraphTensors:
        if targets is None:
            targets = torch.arange(nodes.n_obs)
            own = _fields(nodes)
        else:
            own = {k: v for k, v in nodes.batch(targets).items() if k in _BASE_FIELDS}
        return cls(**own, nodes=nodes, targets=targets, indptr=indptr, indices=indices, n_hops=n_hops,
                   fanout=fanout)

    def _with(self, fn) -> GraphTensors:
        base = fn(MultimodalTensors(**_fields(self)))
        return dataclasses.replace(self, **_fields(base), nodes=fn(self.nodes), targets=self.targets.to(base.device),
                                   indptr=self.indptr.to(base.device), indices=self.indices.to(base.device))

    def to(self, device: torch.device | str) -> GraphTensors:
        return self._with(lambda t: t.to(device))

    def pin_memory(self) -> GraphTensors:
        return self._with(lambda t: t.pin_memory())

    def batch(self, idx: Tensor, device: torch.device | None = None) -> dict[str, Any]:
        seeds = self.targets[idx.to(self.targets.device)]
        ids, edge_index = sample_subgraph(self.indptr, self.indices, seeds, n_hops=self.n_hops, fanout=self.fanout)
        sub = self.nodes.batch(ids, device)
        dev = sub["presence"].device
        out = {k: _head(v, len(seeds)) for k, v in sub.items()}
        out["graph"] = {**sub, "edge_index": edge_index.to(dev), "degree": self._degree(ids).to(dev)}
        return out

    def _degree(self, ids: Tensor) -> Tensor:
        """Per modality, how many of each node's neighbours (and itself) have it, in the whole graph ``(n, n_mod)``."""
        presence = self.nodes.presence
        if presence.device != ids.device:
            presence = presence.to(ids.device)
        src, owner, _ = _in_edges(self.indptr, self.indices, ids)
        deg = presence[ids].float()
        return deg.index_add_(0, owner, presence[src].float())


def attach(reference: GraphTensors, new: MultimodalTensors, embedding: MaskedEmbedding, *, k: int,
           n_hops: int = 1) -> GraphTensors:
    """Graph of ``reference`` plus the ``new`` observations, each receiving edges from its ``k`` masked-nearest
    reference observations (none back, so reference encodings do not change)."""
    ref_nodes = reference.nodes
    rows, cols = masked_knn(embedding.transform(new), embedding.transform(ref_nodes), k)
    n_ref = ref_nodes.n_obs
    ref_adj = sp.csr_matrix((np.ones(len(reference.indices), dtype=np.float32), reference.indices.cpu().numpy(),
                             reference.indptr.cpu().numpy()), shape=(n_ref, n_ref))
    new_adj = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(new.n_obs, n_ref))
    n_all = n_ref + new.n_obs
    adj = sp.vstack([sp.hstack([ref_adj, sp.csr_matrix((n_ref, new.n_obs))]),
                     sp.hstack([new_adj, sp.csr_matrix((new.n_obs, new.n_obs))])]).tocsr()
    observed = {}
    for m in new.x:
        a, b = ref_nodes.observed[m], new.observed[m]
        if a is None and b is None:
            observed[m] = None
        else:
            observed[m] = torch.cat([torch.ones_like(ref_nodes.x[m], dtype=torch.bool) if a is None else a.cpu(),
                                     torch.ones_like(new.x[m], dtype=torch.bool) if b is None else b])
    covariates = None if new.covariates is None else torch.cat([ref_nodes.covariates.cpu(), new.covariates])
    nodes = MultimodalTensors(x={m: torch.cat([ref_nodes.x[m].cpu(), new.x[m]]) for m in new.x}, observed=observed,
                              presence=torch.cat([ref_nodes.presence.cpu(), new.presence]), covariates=covariates)
    indptr, indices = in_neighbours(adj, n_all)
    return GraphTensors.build(nodes, indptr, indices, targets=torch.arange(n_ref, n_all), n_hops=n_hops)

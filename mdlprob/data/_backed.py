"""Out-of-core tensors: a registered ``.h5mu`` read from disk in contiguous chunks, never whole."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import h5py
import mudata as md
import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from ..exceptions import RegistrationError

#: Bytes of dense float32 values one chunk may hold when ``chunk_size`` is not given.
CHUNK_BYTES = 64 * 2**20
#: Rows per chunk are clipped to this range when derived from :data:`CHUNK_BYTES`.
CHUNK_ROWS = (1024, 65536)
#: Bytes (and rows at most) of the uniform sample per modality returned by :meth:`BackedTensors.stats_sample`.
SAMPLE_BYTES, SAMPLE_ROWS = 32 * 2**20, 65536


class OnDisk:
    """Marker in :attr:`BackedTensors.observed`: the modality has NaN entries, read with each chunk."""

    def __repr__(self) -> str:
        return "OnDisk()"


class _H5Matrix:
    """One modality's value matrix in an HDF5 file: a dense dataset or a CSR group, read by row ranges."""

    def __init__(self, node: h5py.Dataset | h5py.Group, mod: str) -> None:
        if isinstance(node, h5py.Dataset):
            self.dense, self.n_rows = node, node.shape[0]
            self.float = np.issubdtype(node.dtype, np.floating)
            return
        kind = node.attrs.get("encoding-type", "")
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        if kind != "csr_matrix":
            msg = (f"Modality {mod!r} is stored as {kind or 'an unknown encoding'}; backed training reads rows and "
                   f"needs a dense array or a CSR matrix. Convert it: adata.X = scipy.sparse.csr_matrix(adata.X), then write again.")
            raise RegistrationError(msg)
        self.dense = None
        self.data, self.indices = node["data"], node["indices"]
        self.indptr = node["indptr"][:].astype(np.int64)
        self.n_cols = int(node.attrs["shape"][1])
        self.n_rows = len(self.indptr) - 1
        self.float = np.issubdtype(self.data.dtype, np.floating)

    def span(self, start: int, stop: int) -> np.ndarray:
        """Dense float32 rows ``start:stop``."""
        if self.dense is not None:
            return np.asarray(self.dense[start:stop], dtype=np.float32)
        lo, hi = self.indptr[start], self.indptr[stop]
        block = sp.csr_matrix((self.data[lo:hi], self.indices[lo:hi], self.indptr[start:stop + 1] - lo),
                              shape=(stop - start, self.n_cols))
        return block.toarray().astype(np.float32, copy=False)

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """Dense float32 values of ``rows`` (any order), read as few contiguous runs as the order allows."""
        order = np.argsort(rows, kind="stable")
        srt = rows[order]
        out = np.empty((len(rows), self.n_cols if self.dense is None else self.dense.shape[1]), dtype=np.float32)
        if not len(rows):
            return out
        if srt[-1] - srt[0] + 1 <= 2 * len(rows) + CHUNK_ROWS[0]:
            out[order] = self.span(int(srt[0]), int(srt[-1]) + 1)[srt - srt[0]]
            return out
        breaks = np.flatnonzero(np.diff(srt) > 1) + 1
        for run_order, run in zip(np.split(order, breaks), np.split(srt, breaks), strict=True):
            out[run_order] = self.span(int(run[0]), int(run[-1]) + 1)[run - run[0]]
        return out


class BackedTensors:
    """The registered modalities of a backed ``.h5mu``, read in contiguous row chunks.

    Same batch interface as :class:`~mdlprob.data.MultimodalTensors` (``batch``,
    ``presence``, ``observed``, ``n_obs``), but values stay on disk: only the presence
    mask and each modality's observation map are in memory. Training reads shuffled
    contiguous chunks with a background thread prefetching the next one.

    Parameters
    ----------
    path
        The ``.h5mu`` file.
    registry
        The registry of :func:`~mdlprob.data.setup_mudata` (layers name where values live).
    presence
        Bool ``(n_obs, n_modalities)`` in registry order.
    rows
        Modality to ``(n_obs,)`` int64 row of each observation in the modality (-1: absent).
    outcome
        Per-observation outcome arrays (small; kept in memory), as in
        :class:`~mdlprob.data.MultimodalTensors`, or ``None``.
    covariates
        Float32 ``(n_obs, n_covariates)`` covariate vectors (small; kept in memory), or ``None``.
    """

    def __init__(self, path: str, registry: Mapping[str, Any], presence: np.ndarray,
                 rows: Mapping[str, np.ndarray], outcome: Mapping[str, np.ndarray] | None = None,
                 covariates: np.ndarray | None = None) -> None:
        self.path = str(path)
        self.keys = {m: f"mod/{m}/layers/{e['layer']}" if e.get("layer") else f"mod/{m}/X"
                     for m, e in registry["modalities"].items()}
        self.n_vars = {m: int(e["n_vars"]) for m, e in registry["modalities"].items()}
        self.presence = torch.from_numpy(np.ascontiguousarray(presence))
        self.rows = {m: np.asarray(r, dtype=np.int64) for m, r in rows.items()}
        self.outcome = None if outcome is None else {k: torch.from_numpy(np.asarray(v)) for k, v in outcome.items()}
        self.covariates = None if covariates is None else torch.from_numpy(np.asarray(covariates, dtype=np.float32))
        self._file: h5py.File | None = None
        self._pid = -1
        self._mats: dict[str, _H5Matrix] = {}
        self._sample: dict[str, np.ndarray] = {}
        self.has_nan = {m: self._scan(m, j) for j, m in enumerate(self.keys)}
        self.stats_streamed = False

    # ------------------------------------------------------------------ plumbing
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_file"], state["_pid"], state["_mats"] = None, -1, {}
        return state

    def _matrix(self, mod: str) -> _H5Matrix:
        if self._file is None or self._pid != os.getpid():
            self._file, self._pid, self._mats = h5py.File(self.path, "r"), os.getpid(), {}
        if mod not in self._mats:
            self._mats[mod] = _H5Matrix(self._file[self.keys[mod]], mod)
        return self._mats[mod]

    @property
    def n_obs(self) -> int:
        return self.presence.shape[0]

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    @property
    def observed(self) -> dict[str, OnDisk | None]:
        """Modality to ``None`` (no NaN entry) or :class:`OnDisk` (masks come with each read)."""
        return {m: OnDisk() if v else None for m, v in self.has_nan.items()}

    def default_chunk_size(self) -> int:
        """Rows whose dense values take about :data:`CHUNK_BYTES`, within :data:`CHUNK_ROWS`."""
        rows = CHUNK_BYTES // (4 * max(1, sum(self.n_vars.values())))
        return int(min(max(rows, CHUNK_ROWS[0]), CHUNK_ROWS[1]))

    # ------------------------------------------------------------------ reading
    def read(self, obs: np.ndarray) -> dict[str, Any]:
        """Values, entry masks and presence of observations ``obs`` (global indices, any order), on the CPU."""
        x, observed = {}, {}
        for mod, rows in self.rows.items():
            r = rows[obs]
            keep = r >= 0
            dense = np.zeros((len(obs), self.n_vars[mod]), dtype=np.float32)
            dense[keep] = self._matrix(mod).rows(r[keep])
            observed[mod] = None
            if self.has_nan[mod]:
                nan = np.isnan(dense)
                observed[mod] = torch.from_numpy(~nan)
                dense[nan] = 0.0
            x[mod] = torch.from_numpy(dense)
        take = torch.from_numpy(obs)
        out = {"x": x, "observed": observed, "presence": self.presence[take]}
        if self.outcome is not None:
            out["outcome"] = {k: v[take] for k, v in self.outcome.items()}
        if self.covariates is not None:
            out["covariates"] = self.covariates[take]
        return out

    def batch(self, idx: Tensor, device: torch.device | None = None) -> dict[str, Any]:
        """Rows ``idx`` read from disk, moved to ``device``."""
        out = self.read(idx.cpu().numpy().astype(np.int64))
        return _to(out, device) if device is not None else out

    def chunks(self, order: Iterable[int], chunk_size: int, keep: np.ndarray, *, seed: int) -> Iterator[dict[str, Any]]:
        """Chunks ``order`` (row ranges of ``chunk_size``) restricted to ``keep`` rows, each shuffled.

        The next chunk is read by a background thread while the current one is consumed.
        Shuffling inside chunk ``c`` uses ``numpy.random.default_rng([seed, c])``.
        """

        def load(c: int) -> dict[str, Any]:
            start = c * chunk_size
            obs = start + np.flatnonzero(keep[start:start + chunk_size])
            return self.read(np.random.default_rng([seed, c]).permutation(obs))

        order = list(order)
        if not order:
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mdlprob-prefetch") as pool:
            pending = pool.submit(load, order[0])
            for c in order[1:]:
                current, pending = pending.result(), pool.submit(load, c)
                yield current
            yield pending.result()

    def modality_values(self, mod: str, j: int, *, chunk_size: int) -> Iterator[np.ndarray]:
        """Values of ``mod`` over its present observations, chunk by chunk, NaN where missing."""
        present = self.presence[:, j].numpy()
        rows = self.rows[mod]
        for start in range(0, self.n_obs, chunk_size):
            r = rows[start:start + chunk_size][present[start:start + chunk_size]]
            if len(r):
                yield self._matrix(mod).rows(r)

    def stats_sample(self, mod: str) -> np.ndarray:
        """A uniform sample of present rows of ``mod`` (all of them when fewer than the bound).

        At most :data:`SAMPLE_ROWS` rows and :data:`SAMPLE_BYTES` bytes of float32 values.
        """
        return self._sample[mod]

    def _scan(self, mod: str, j: int) -> bool:
        """One pass over ``mod``: whether it has NaN entries, and a uniform row sample (bottom-k keys)."""
        rng = np.random.default_rng(j)
        k = int(min(SAMPLE_ROWS, max(1, SAMPLE_BYTES // (4 * self.n_vars[mod]))))
        has_nan, best_keys, best = False, np.empty(0), np.empty((0, self.n_vars[mod]), dtype=np.float32)
        check = self._matrix(mod).float
        for vals in self.modality_values(mod, j, chunk_size=self.default_chunk_size()):
            has_nan = has_nan or (check and bool(np.isnan(vals).any()))
            keys = np.concatenate([best_keys, rng.random(len(vals))])
            top = np.argsort(keys, kind="stable")[:k]
            best_keys, best = keys[top], np.concatenate([best, vals])[top]
        self._sample[mod] = best
        return has_nan


def rebatch(chunks: Iterator[dict[str, Any]], n_rows: int, n_steps: int,
            device: torch.device) -> Iterator[dict[str, Any]]:
    """Cut a stream of chunks holding ``n_rows`` rows into ``n_steps`` near-equal batches on ``device``.

    Batch sizes follow ``torch.tensor_split`` of ``n_rows`` into ``n_steps``; a batch may
    span two chunks.
    """
    sizes = [len(s) for s in torch.tensor_split(torch.arange(n_rows), n_steps)]
    buffer: list[dict[str, Any]] = []
    held = 0
    for size in sizes:
        while held < size:
            nxt = next(chunks)
            buffer.append(nxt)
            held += len(nxt["presence"])
        merged = _cat(buffer) if len(buffer) > 1 else buffer[0]
        yield _to(_slice(merged, 0, size), device)
        held -= size
        buffer = [_slice(merged, size, None)] if held else []


def _slice(b: dict[str, Any], start: int, stop: int | None) -> dict[str, Any]:
    return _map(b, lambda t: t[start:stop])


def _cat(parts: list[dict[str, Any]]) -> dict[str, Any]:
    def cat(get):
        return torch.cat([get(p) for p in parts])

    first = parts[0]
    out = {"x": {k: cat(lambda p, k=k: p["x"][k]) for k in first["x"]},
           "observed": {k: None if first["observed"][k] is None else cat(lambda p, k=k: p["observed"][k])
                        for k in first["observed"]},
           "presence": cat(lambda p: p["presence"])}
    if "outcome" in first:
        out["outcome"] = {k: cat(lambda p, k=k: p["outcome"][k]) for k in first["outcome"]}
    if "covariates" in first:
        out["covariates"] = cat(lambda p: p["covariates"])
    return out


def _to(b: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return _map(b, lambda t: t if t.device == device else t.to(device, non_blocking=True))


def _map(b: dict[str, Any], fn) -> dict[str, Any]:
    """Apply ``fn`` to every tensor of a batch dict (``observed`` entries may be ``None``)."""
    out = {"x": {k: fn(v) for k, v in b["x"].items()},
           "observed": {k: None if v is None else fn(v) for k, v in b["observed"].items()},
           "presence": fn(b["presence"])}
    if "outcome" in b:
        out["outcome"] = {k: fn(v) for k, v in b["outcome"].items()}
    if "covariates" in b:
        out["covariates"] = fn(b["covariates"])
    return out


def backed_tensors(mdata: md.MuData, registry: Mapping[str, Any], presence: np.ndarray,
                   outcome: Mapping[str, np.ndarray] | None = None,
                   covariates: np.ndarray | None = None) -> BackedTensors:
    """:class:`BackedTensors` of a MuData opened with ``mudata.read_h5mu(path, backed="r")``."""
    rows = {}
    for mod in registry["modalities"]:
        if mod not in mdata.mod:
            msg = f"Backed training needs every registered modality in the file; {mod!r} is not in {list(mdata.mod)}."
            raise RegistrationError(msg)
        rows[mod] = np.asarray(mdata.obsmap[mod]).astype(np.int64) - 1
        rows[mod][~presence[:, list(registry["modalities"]).index(mod)]] = -1
    return BackedTensors(mdata.filename, registry, presence, rows, outcome, covariates)


def streamed_loc_scale(likelihood: torch.nn.Module, chunks: Iterable[np.ndarray]) -> tuple[Tensor, Tensor]:
    """Per-feature mean and sd of ``likelihood.input_transform`` over chunks, ignoring NaN.

    The same statistics as ``Likelihood.set_stats`` computes on the whole matrix (population
    sd; sd of constant or empty features set to 1), merged chunk by chunk in float64
    (Chan et al.'s parallel update), so memory stays at one chunk.
    """
    n = mean = m2 = None
    for vals in chunks:
        t = likelihood.input_transform(torch.from_numpy(vals)).double()
        finite = ~torch.isnan(t)
        n_b = finite.sum(0).double()
        t0 = torch.where(finite, t, torch.zeros_like(t))
        mean_b = t0.sum(0) / n_b.clamp_min(1)
        m2_b = (torch.where(finite, t - mean_b, torch.zeros_like(t)) ** 2).sum(0)
        if n is None:
            n, mean, m2 = n_b, mean_b, m2_b
            continue
        total = n + n_b
        delta = mean_b - mean
        mean = mean + delta * n_b / total.clamp_min(1)
        m2 = m2 + m2_b + delta**2 * n * n_b / total.clamp_min(1)
        n = total
    if n is None:
        msg = "No observation has this modality; its statistics cannot be computed."
        raise ValueError(msg)
    scale = (m2 / n.clamp_min(1)).sqrt()
    scale = torch.where(scale > 1e-6, scale, torch.ones_like(scale))
    return mean.float(), scale.float()

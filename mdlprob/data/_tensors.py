"""Dense, device-resident tensors of a registered MuData, aligned to ``mdata.obs_names``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import mudata as md
import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from ..distributions import LIKELIHOODS
from ..exceptions import RegistrationError
from ._backed import BackedTensors, backed_tensors, streamed_loc_scale
from ._covariates import covariate_array
from ._outcome import outcome_arrays
from ._setup import check_categories, check_unique_names, get_matrix, presence_mask

logger = logging.getLogger(__name__)


@dataclass
class MultimodalTensors:
    """Values, entry masks and presence of every registered modality.

    Attributes
    ----------
    x
        Modality to float32 ``(n_obs, n_vars)``; rows of absent observations and missing
        (NaN) entries hold 0 and are never read by a likelihood.
    observed
        Modality to bool ``(n_obs, n_vars)`` marking non-missing entries, or ``None`` when the
        modality has no NaN.
    presence
        Bool ``(n_obs, n_modalities)`` in registry order.
    outcome
        With an outcome registered (``setup_mudata(..., outcome=...)``): ``present`` plus
        ``label`` or ``time``/``event`` (/``bin``), one entry per observation; else ``None``.
    covariates
        With covariates registered (``setup_mudata(..., batch_key=...)``): float32
        ``(n_obs, n_covariates)``, the one-hot batch and categorical covariates then the
        standardised continuous ones (see :mod:`mdlprob.data._covariates`); else ``None``.
    """

    x: dict[str, Tensor]
    observed: dict[str, Tensor | None]
    presence: Tensor
    outcome: dict[str, Tensor] | None = None
    covariates: Tensor | None = None

    @property
    def n_obs(self) -> int:
        return self.presence.shape[0]

    @property
    def device(self) -> torch.device:
        return self.presence.device

    @property
    def nbytes(self) -> int:
        tensors = [self.presence, *self.x.values(), *(v for v in self.observed.values() if v is not None),
                   *(self.outcome or {}).values(), *([] if self.covariates is None else [self.covariates])]
        return sum(t.element_size() * t.numel() for t in tensors)

    def pin_memory(self) -> MultimodalTensors:
        """A copy in page-locked host memory, for fast asynchronous copies to a GPU."""
        return MultimodalTensors(
            {k: v.pin_memory() for k, v in self.x.items()},
            {k: None if v is None else v.pin_memory() for k, v in self.observed.items()},
            self.presence.pin_memory(),
            None if self.outcome is None else {k: v.pin_memory() for k, v in self.outcome.items()},
            None if self.covariates is None else self.covariates.pin_memory(),
        )

    def to(self, device: torch.device | str) -> MultimodalTensors:
        return MultimodalTensors(
            {k: v.to(device) for k, v in self.x.items()},
            {k: None if v is None else v.to(device) for k, v in self.observed.items()},
            self.presence.to(device),
            None if self.outcome is None else {k: v.to(device) for k, v in self.outcome.items()},
            None if self.covariates is None else self.covariates.to(device),
        )

    def subset(self, idx: Tensor) -> MultimodalTensors:
        """The observations ``idx``, as tensors of their own."""
        idx = idx.to(self.device)
        return MultimodalTensors(
            {k: v.index_select(0, idx) for k, v in self.x.items()},
            {k: None if v is None else v.index_select(0, idx) for k, v in self.observed.items()},
            self.presence.index_select(0, idx),
            None if self.outcome is None else {k: v.index_select(0, idx) for k, v in self.outcome.items()},
            None if self.covariates is None else self.covariates.index_select(0, idx),
        )

    def batch(self, idx: Tensor, device: torch.device | None = None) -> dict[str, Any]:
        """Rows ``idx`` gathered where the data live, then moved to ``device`` if that differs."""
        idx = idx.to(self.device)

        def take(t: Tensor) -> Tensor:
            rows = t.index_select(0, idx)
            return rows if device is None or rows.device == device else rows.to(device, non_blocking=True)

        out = {
            "x": {k: take(v) for k, v in self.x.items()},
            "observed": {k: None if v is None else take(v) for k, v in self.observed.items()},
            "presence": take(self.presence),
        }
        if self.outcome is not None:
            out["outcome"] = {k: take(v) for k, v in self.outcome.items()}
        if self.covariates is not None:
            out["covariates"] = take(self.covariates)
        return out


def place(tensors: MultimodalTensors, device: torch.device, *, max_fraction: float = 0.5) -> MultimodalTensors:
    """Move the data to ``device`` when they fit; on a GPU too small, keep them in pinned host memory.

    Data resident on the device avoid a host-to-device copy per batch; they "fit" when they
    take at most ``max_fraction`` of the GPU's free memory. Backed data stay on disk.
    """
    if isinstance(tensors, BackedTensors):
        return tensors
    if device.type != "cuda":
        return tensors.to(device)
    free, _ = torch.cuda.mem_get_info(device)
    if tensors.nbytes <= max_fraction * free:
        return tensors.to(device)
    logger.info("Data (%.2f GB) exceed %.0f%% of free GPU memory; batches are copied from pinned host memory.",
                tensors.nbytes / 1e9, 100 * max_fraction)
    return tensors.pin_memory()


def tensors_from_mudata(
    mdata: md.MuData,
    registry: Mapping[str, Any],
    *,
    var_names: Mapping[str, Sequence[str]] | None = None,
) -> MultimodalTensors | BackedTensors:
    """Build :class:`MultimodalTensors` from ``mdata`` following ``registry``.

    A MuData opened with ``mudata.read_h5mu(path, backed="r")`` gives
    :class:`~mdlprob.data._backed.BackedTensors` instead: values stay on disk and are read
    in chunks (out-of-core training).

    Parameters
    ----------
    var_names
        Expected feature names per modality (a trained model's); a modality whose features
        differ raises :class:`RegistrationError`. A registered modality that is not in
        ``mdata.mod`` at all counts as absent for every observation.
    """
    presence = presence_mask(mdata, registry)
    for mod, entry in registry["modalities"].items():
        adata = mdata.mod[mod] if mod in mdata.mod else None
        if adata is not None:
            check_unique_names(adata, mod)
            if LIKELIHOODS[entry["likelihood"]].is_table and var_names is not None and not mdata.isbacked \
                    and list(adata.var_names) == list(var_names[mod]):
                check_categories(adata, entry, mod, get_matrix(adata, entry.get("layer") or None, mod))
        if adata is not None and var_names is not None and list(adata.var_names) != list(var_names[mod]):
            msg = (
                f"Modality {mod!r} has features that differ from those the model was trained on "
                f"({adata.n_vars} vs {len(var_names[mod])} features, or a different order). "
                f"Subset/reorder it: mdata.mod[{mod!r}] = mdata.mod[{mod!r}][:, model_var_names]."
            )
            raise RegistrationError(msg)
    outcome = outcome_arrays(mdata, registry["outcome"]) if "outcome" in registry else None
    covariates = covariate_array(mdata.obs, registry["covariates"]) if registry.get("covariates") else None
    if mdata.isbacked:
        return backed_tensors(mdata, registry, presence, outcome, covariates)
    x, observed = {}, {}
    for j, (mod, entry) in enumerate(registry["modalities"].items()):
        n_vars = int(entry["n_vars"])
        dense = np.zeros((mdata.n_obs, n_vars), dtype=np.float32)
        if mod in mdata.mod:
            adata = mdata.mod[mod]
            X = get_matrix(adata, entry.get("layer") or None, mod)
            rows = np.asarray(mdata.obsmap[mod]).astype(np.int64) - 1
            keep = presence[:, j]
            src = rows[keep]
            block = X[src]
            dense[keep] = block.toarray() if sp.issparse(block) else np.asarray(block, dtype=np.float32)
        nan = np.isnan(dense)
        if nan.any():
            observed[mod] = torch.from_numpy(~nan)
            dense[nan] = 0.0
        else:
            observed[mod] = None
        x[mod] = torch.from_numpy(dense)
    outcome = None if outcome is None else {k: torch.from_numpy(v) for k, v in outcome.items()}
    return MultimodalTensors(x, observed, torch.from_numpy(presence), outcome,
                             None if covariates is None else torch.from_numpy(covariates))


def training_values(tensors: MultimodalTensors | BackedTensors, mod: str, j: int,
                    rows: np.ndarray | None = None) -> np.ndarray:
    """Values of modality ``mod`` (column ``j`` of presence) over present rows, NaN where missing.

    For backed data (``rows`` must be ``None``): a uniform sample of present rows, bounded
    in memory; :func:`set_training_stats` then makes the normalisation statistics exact.
    """
    if isinstance(tensors, BackedTensors):
        if rows is not None:
            msg = "training_values of backed data takes no rows subset."
            raise ValueError(msg)
        return tensors.stats_sample(mod)
    present = tensors.presence[:, j].numpy()
    if rows is not None:
        sel = np.zeros_like(present)
        sel[rows] = True
        present = present & sel
    vals = tensors.x[mod].numpy()[present].copy()
    obs = tensors.observed[mod]
    if obs is not None:
        vals[~obs.numpy()[present]] = np.nan
    return vals


def set_training_stats(likelihoods: Mapping[str, torch.nn.Module], tensors: MultimodalTensors | BackedTensors) -> None:
    """Call every likelihood's ``set_stats`` on its modality's training values.

    In memory, on all present rows. Backed, in bounded memory: ``set_stats`` on a uniform
    row sample (initial head biases), then the normalisation buffers ``in_loc``/``in_scale``
    replaced by their exact values, streamed over every present row chunk by chunk.
    """
    for j, mod in enumerate(likelihoods):
        lik = likelihoods[mod]
        lik.set_stats(training_values(tensors, mod, j))
        if isinstance(tensors, BackedTensors):
            chunks = tensors.modality_values(mod, j, chunk_size=tensors.default_chunk_size())
            loc, scale = streamed_loc_scale(lik, chunks)
            with torch.no_grad():
                lik.in_loc.copy_(loc)
                lik.in_scale.copy_(scale)
    if isinstance(tensors, BackedTensors):
        tensors.stats_streamed = True

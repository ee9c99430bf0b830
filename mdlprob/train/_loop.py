"""The epoch loop shared by single-process, spawned data-parallel and ``torchrun`` training."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyro
import torch
from torch import Tensor, nn

from .._utils import track
from ..data._backed import BackedTensors, rebatch
from ..data._tensors import MultimodalTensors

#: Observations per forward pass when computing the validation loss.
EVAL_BATCH = 4096


@dataclass(frozen=True)
class FitConfig:
    """Options of :func:`fit`, validated by ``BaseModel.train``."""

    max_epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    early_stopping: bool
    patience: int
    beta: float
    kl_warmup_epochs: int
    inference: str
    chunk_size: int | None
    progress_bar: bool
    description: str


class Local:
    """Single-process communicator: every collective is the identity."""

    rank, world = 0, 1

    def perm(self, n: int, device: torch.device) -> Tensor:
        """A random permutation shared by every rank (here from the global torch generator)."""
        return torch.randperm(n, device=device)

    def reduce_grads(self, module: nn.Module) -> None:
        """Average gradients over ranks (nothing to do in one process)."""

    def all_sum(self, value: Tensor) -> Tensor:
        return value


def fit(module: nn.Module, data: MultimodalTensors | BackedTensors, train_idx: np.ndarray, val_idx: np.ndarray,
        device: torch.device, cfg: FitConfig, history: dict[str, list[float]], *,
        comm: Local | None = None) -> dict[str, Tensor] | None:
    """Train ``module`` in place; append epoch losses to ``history``.

    Returns
    -------
    The best weights under early stopping (to be loaded by the caller), else ``None``.
    """
    comm = comm or Local()
    n_train = len(train_idx)
    n_steps = max(1, round(n_train / (cfg.batch_size * comm.world)))
    warm_steps = cfg.kl_warmup_epochs * n_steps
    step_fn = fast_step(module, cfg, device, comm) if cfg.inference == "fast" else svi_step(module, cfg)
    epoch_batches = _epoch_fn(data, train_idx, n_steps, device, cfg, comm)
    best, best_state, stale, step = math.inf, None, 0, 0
    epochs = track(range(cfg.max_epochs), description=cfg.description, progress_bar=cfg.progress_bar and comm.rank == 0)
    for _ in epochs:
        module.train()
        total = torch.zeros((), device=device)
        for batch in epoch_batches():
            kl_weight = cfg.beta * min(1.0, (step + 1) / warm_steps) if warm_steps else cfg.beta
            total = total + step_fn(batch, kl_weight) * batch["presence"].shape[0]
            step += 1
        history["train_loss"].append(float(comm.all_sum(total)) / n_train)
        if len(val_idx):
            val = evaluate_loss(module, data, val_idx, cfg.beta, device, comm)
            history["val_loss"].append(val)
            if val < best - 1e-4 * abs(best if math.isfinite(best) else 0.0):
                best, stale = val, 0
                if cfg.early_stopping:
                    best_state = copy.deepcopy(module.state_dict())
            else:
                stale += 1
        if hasattr(epochs, "set_postfix"):
            epochs.set_postfix(loss=f"{history['train_loss'][-1]:.4g}")
        if not math.isfinite(history["train_loss"][-1]):
            msg = "Training diverged (non-finite loss); lower lr or check the data for extreme values."
            raise FloatingPointError(msg)
        if cfg.early_stopping and stale >= cfg.patience:
            break
    return best_state


def _epoch_fn(data, train_idx: np.ndarray, n_steps: int, device: torch.device, cfg: FitConfig, comm: Local):
    """A function returning one epoch's batches: this rank's share of each global batch."""
    if isinstance(data, BackedTensors):
        keep = np.zeros(data.n_obs, dtype=bool)
        keep[train_idx] = True
        chunk_size = cfg.chunk_size or data.default_chunk_size()
        counts = np.add.reduceat(keep, np.arange(0, data.n_obs, chunk_size)).astype(np.int64)
        if len(counts) < comm.world:
            msg = (f"The data make {len(counts)} chunk(s) of chunk_size={chunk_size} rows, fewer than the "
                   f"{comm.world} processes; pass a smaller chunk_size.")
            raise ValueError(msg)
        return lambda: _backed_epoch(data, keep, counts, chunk_size, cfg.batch_size, device, comm)
    train_t = torch.as_tensor(train_idx, device=data.device)

    def memory_epoch() -> Iterator[dict[str, Any]]:
        for idx in torch.tensor_split(train_t[comm.perm(len(train_t), data.device)], n_steps):
            yield data.batch(idx if comm.world == 1 else torch.tensor_split(idx, comm.world)[comm.rank], device)

    return memory_epoch


def _backed_epoch(data: BackedTensors, keep: np.ndarray, counts: np.ndarray, chunk_size: int, batch_size: int,
                  device: torch.device, comm: Local) -> Iterator[dict[str, Any]]:
    """Chunks in random order (rank ``r`` takes every ``world``-th), rows shuffled within each chunk."""
    order = comm.perm(len(counts), torch.device("cpu")).numpy()
    rows = [int(counts[order[r::comm.world]].sum()) for r in range(comm.world)]
    n_steps = max(1, round(max(rows) / batch_size))
    if min(rows) < n_steps:
        msg = (f"A process would get {min(rows)} training rows for {n_steps} steps; use fewer devices, "
               f"a smaller chunk_size or a smaller batch_size.")
        raise ValueError(msg)
    seed = int(torch.randint(0, 2**31 - 1, (1,)))
    chunks = data.chunks(order[comm.rank::comm.world], chunk_size, keep, seed=seed)
    return rebatch(chunks, rows[comm.rank], n_steps, device)


@torch.no_grad()
def evaluate_loss(module: nn.Module, data: MultimodalTensors | BackedTensors, val_idx: np.ndarray, beta: float,
                  device: torch.device, comm: Local | None = None) -> float:
    """Mean loss over ``val_idx``; each rank scores a share (backed: every ``world``-th chunk), sums are reduced."""
    comm = comm or Local()
    module.eval()
    total = torch.zeros((), device=device, dtype=torch.float64)
    if isinstance(data, BackedTensors):
        size = data.default_chunk_size()
        mine = val_idx[(val_idx // size) % comm.world == comm.rank]
        keep = np.zeros(data.n_obs, dtype=bool)
        keep[mine] = True
        chunks = data.chunks(range(comm.rank, math.ceil(data.n_obs / size), comm.world), size, keep, seed=0)
        batches = rebatch(chunks, len(mine), max(1, math.ceil(len(mine) / EVAL_BATCH)), device) if len(mine) else []
    else:
        idx = torch.as_tensor(val_idx[comm.rank::comm.world], device=data.device)
        batches = (data.batch(chunk, device) for chunk in torch.split(idx, EVAL_BATCH))
    for batch in batches:
        total += float(module.objective(batch, kl_weight=beta)) * batch["presence"].shape[0]
    return float(comm.all_sum(total)) / len(val_idx)


def fast_step(module: nn.Module, cfg: FitConfig, device: torch.device, comm: Local):
    """One Adam step on the module's fused loss; gradients averaged over ranks."""
    opt = torch.optim.Adam(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=device.type == "cuda")

    def step(batch: dict[str, Any], kl_weight: float) -> Tensor:
        loss = module.objective(batch, kl_weight=kl_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        comm.reduce_grads(module)
        opt.step()
        return loss.detach()

    return step


def svi_step(module: nn.Module, cfg: FitConfig):
    """One Pyro ``SVI`` step with ``TraceMeanField_ELBO`` on the module's ``model``/``guide``."""
    from pyro.infer import SVI, TraceMeanField_ELBO

    extras = [name for name in ("outcome", "feature_graph") if getattr(module, name, None) is not None]
    if extras:
        msg = (f"inference='svi' trains the Pyro model/guide, which do not include the registered {' and '.join(extras)}; "
               "use inference='fast' (the default) for joint training with an outcome or a feature graph.")
        raise ValueError(msg)

    svi = SVI(module.model, module.guide, pyro.optim.Adam({"lr": cfg.lr, "weight_decay": cfg.weight_decay}),
              TraceMeanField_ELBO())

    def step(batch: dict[str, Any], kl_weight: float) -> Tensor:
        return torch.tensor(svi.step(batch, kl_weight) / batch["presence"].shape[0])

    return step

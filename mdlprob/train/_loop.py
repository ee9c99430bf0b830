"""The epoch loop shared by single-process, spawned data-parallel and ``torchrun`` training."""

from __future__ import annotations

import math
import signal
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
from ..exceptions import TrainingDivergedError, TrainingInterrupted
from ._checkpoint import Checkpointer, set_rng_state, stop_on_signals

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
        comm: Local | None = None, checkpoint: Checkpointer | None = None,
        resume: dict[str, Any] | None = None) -> dict[str, Tensor] | None:
    """Train ``module`` in place; append epoch losses to ``history``.

    With ``checkpoint``, the loop state is saved every ``checkpoint.every`` epochs and at the
    last one, and SIGINT/SIGTERM stop it after the current step with a checkpoint (in the
    middle of an epoch for data in memory) before :class:`TrainingInterrupted` is raised.
    ``resume`` (a loaded checkpoint) continues that state. A non-finite loss puts back the
    early-stopping best weights, else those of the last finite epoch, records
    ``history["diverged_epoch"]`` and raises :class:`TrainingDivergedError`.

    Returns
    -------
    The best weights under early stopping (to be loaded by the caller), else ``None``.
    """
    comm = comm or Local()
    n_train = len(train_idx)
    n_steps = max(1, round(n_train / (cfg.batch_size * comm.world)))
    warm_steps = cfg.kl_warmup_epochs * n_steps
    step_fn = fast_step(module, cfg, device, comm) if cfg.inference == "fast" else svi_step(module, cfg)
    plan_fn, batches_fn = _epoch_fn(data, train_idx, n_steps, device, cfg, comm)
    loop = {"epoch": 0, "step": 0, "best": math.inf, "stale": 0, "best_state": None, "best_epoch": 0}
    partial = None  # (batch plan, position, running loss) of an epoch resumed in its middle
    if resume is not None:
        module.load_state_dict(resume["module"])
        step_fn.load_state(resume["optimizer"])
        history.clear()
        history.update({k: list(v) for k, v in resume["history"].items()})
        loop.update(resume["loop"])
        if resume.get("partial") is not None:
            partial = resume["partial"]
        set_rng_state(resume["rng"])
    last_good, last_good_epoch = _snapshot(module), loop["epoch"]

    def save(partial_state: dict[str, Any] | None = None) -> None:
        checkpoint.save({"module": module.state_dict(), "optimizer": step_fn.state(), "history": history,
                         "loop": loop, "partial": partial_state})

    epochs = track(range(loop["epoch"], cfg.max_epochs), description=cfg.description, total=cfg.max_epochs,
                   initial=loop["epoch"], progress_bar=cfg.progress_bar and comm.rank == 0)
    with stop_on_signals(checkpoint is not None and comm.world == 1) as stop:
        for epoch in epochs:
            module.train()
            if partial is not None:
                plan, start, total = partial["plan"], partial["position"], partial["total"].to(device)
                partial = None
            else:
                plan, start, total = plan_fn(), 0, torch.zeros((), device=device)
            for position, batch in enumerate(batches_fn(plan, start), start=start):
                step = loop["step"]
                kl_weight = cfg.beta * min(1.0, (step + 1) / warm_steps) if warm_steps else cfg.beta
                total = total + step_fn(batch, kl_weight) * batch["presence"].shape[0]
                loop["step"] = step + 1
                if stop:
                    if isinstance(plan, Tensor):  # data in memory: the epoch can be replayed from here
                        save({"plan": plan, "position": position + 1, "total": total.detach().cpu()})
                    _interrupt(stop.signal, checkpoint, loop["step"])
            history["train_loss"].append(float(comm.all_sum(total)) / n_train)
            if math.isfinite(history["train_loss"][-1]) and len(val_idx):
                history["val_loss"].append(evaluate_loss(module, data, val_idx, cfg.beta, device, comm))
            losses = [history["train_loss"][-1], *(history["val_loss"][-1:] if len(val_idx) else [])]
            if not all(math.isfinite(v) for v in losses):
                kept = loop["best_state"] if cfg.early_stopping and loop["best_state"] is not None else last_good
                kept_epoch = loop["best_epoch"] if kept is not last_good else last_good_epoch
                module.load_state_dict(kept)
                history["diverged_epoch"] = [epoch + 1]
                where = f"the weights of epoch {kept_epoch}" if kept_epoch else "the weights it started from"
                msg = (f"Training diverged at epoch {epoch + 1} (non-finite loss); the model was put back to {where}. "
                       f"Lower lr (now {cfg.lr:g}), add weight_decay, or check the data for extreme values.")
                raise TrainingDivergedError(msg)
            last_good, last_good_epoch = _snapshot(module), epoch + 1
            if len(val_idx):
                val = history["val_loss"][-1]
                best = loop["best"]
                if improves(val, best):
                    loop.update(best=val, stale=0, best_epoch=epoch + 1)
                    if cfg.early_stopping:
                        loop["best_state"] = last_good
                else:
                    loop["stale"] += 1
            loop["epoch"] = epoch + 1
            if hasattr(epochs, "set_postfix"):
                epochs.set_postfix(_postfix(history, loop, bool(len(val_idx))), refresh=False)
            done = cfg.early_stopping and loop["stale"] >= cfg.patience
            if checkpoint is not None and (done or loop["epoch"] % checkpoint.every == 0 or loop["epoch"] == cfg.max_epochs):
                save()
            if stop:
                save()
                _interrupt(stop.signal, checkpoint, loop["step"])
            if done:
                break
    return loop["best_state"]


#: Relative decrease of the validation loss that counts as an improvement for early stopping.
IMPROVEMENT_TOLERANCE = 1e-4


def improves(val: float, best: float) -> bool:
    """Whether validation loss ``val`` improves on ``best`` by more than :data:`IMPROVEMENT_TOLERANCE` (relative)."""
    return val < best - IMPROVEMENT_TOLERANCE * abs(best if math.isfinite(best) else 0.0)


def kept_epoch(val_losses: list[float]) -> int:
    """The 1-based epoch whose weights early stopping keeps: its last improvement (0 if none)."""
    best, kept = math.inf, 0
    for epoch, val in enumerate(val_losses, start=1):
        if improves(val, best):
            best, kept = val, epoch
    return kept


def _postfix(history: dict[str, list[float]], loop: dict[str, Any], validation: bool) -> dict[str, str]:
    """What the epoch bar shows: the training loss and, with a validation split, its loss and the best epoch so far."""
    shown = {"loss": f"{history['train_loss'][-1]:.4g}"}
    if validation:
        shown["val"] = f"{history['val_loss'][-1]:.4g}"
        shown["best"] = f"{loop['best']:.4g} (epoch {loop['best_epoch']})"
    return shown


def _snapshot(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _interrupt(signum: int, checkpoint: Checkpointer, step: int) -> None:
    """Raise :class:`TrainingInterrupted` naming the checkpoint to resume from."""
    written = str(checkpoint.path) if checkpoint.path.exists() else None
    where = (f"the checkpoint {written} continues it: train(..., checkpoint_dir={str(checkpoint.directory)!r}, "
             "resume=True)" if written else "no checkpoint was written yet (backed data keep only finished epochs)")
    msg = f"Training stopped by {signal.Signals(signum).name} after step {step}; {where}."
    raise TrainingInterrupted(msg, signum, written)


def _epoch_fn(data, train_idx: np.ndarray, n_steps: int, device: torch.device, cfg: FitConfig, comm: Local):
    """Functions making an epoch's plan (data in memory: the permuted rows) and its batches from a position.

    Each batch is this rank's share of a global batch. Backed data have no replayable plan.
    """
    if isinstance(data, BackedTensors):
        keep = np.zeros(data.n_obs, dtype=bool)
        keep[train_idx] = True
        chunk_size = cfg.chunk_size or data.default_chunk_size()
        counts = np.add.reduceat(keep, np.arange(0, data.n_obs, chunk_size)).astype(np.int64)
        if len(counts) < comm.world:
            msg = (f"The data make {len(counts)} chunk(s) of chunk_size={chunk_size} rows, fewer than the "
                   f"{comm.world} processes; pass a smaller chunk_size.")
            raise ValueError(msg)
        return (lambda: "backed"), lambda _plan, _start: _backed_epoch(data, keep, counts, chunk_size, cfg.batch_size, device, comm)
    train_t = torch.as_tensor(train_idx, device=data.device)

    def plan() -> Tensor:
        return train_t[comm.perm(len(train_t), data.device)]

    def memory_epoch(order: Tensor, start: int) -> Iterator[dict[str, Any]]:
        for idx in torch.tensor_split(order, n_steps)[start:]:
            yield data.batch(idx if comm.world == 1 else torch.tensor_split(idx, comm.world)[comm.rank], device)

    return plan, memory_epoch


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

    step.state = opt.state_dict
    step.load_state = opt.load_state_dict
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

    step.state = svi.optim.get_state
    step.load_state = svi.optim.set_state
    return step

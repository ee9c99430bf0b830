"""Data-parallel training with ``torch.distributed``: spawned local processes or a ``torchrun`` launch.

Every process holds the whole model. Per epoch the processes draw the same permutation
(from a generator seeded identically on every rank); each global batch of
``batch_size * world`` observations is split into one part per rank, gradients are
averaged with one ``all_reduce`` per step, so each rank applies the same Adam update and
the weights stay identical without a parameter server.
"""

from __future__ import annotations

import copy
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..data._tensors import place
from ._loop import FitConfig, fit

STRATEGIES = ("auto", "ddp")
_WEIGHTS = "ddp_result.pt"


def rank_seed(seed: int, rank: int) -> int:
    """Seed of rank ``rank``'s global torch generator (reparameterisation noise, dropout, in-chunk shuffles)."""
    return seed + rank


def shared_seed(seed: int, world: int) -> int:
    """Seed of the generator every rank shares for epoch permutations (distinct from all rank seeds)."""
    return seed + world


def draw_seed() -> int:
    """The run's base seed, drawn from the caller's torch generator (so ``mdlprob.settings.seed`` fixes it)."""
    return int(torch.randint(0, 2**31 - 1, (1,)))


class Distributed:
    """Communicator over the default ``torch.distributed`` process group."""

    def __init__(self, seed: int) -> None:
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self._gen = torch.Generator().manual_seed(shared_seed(seed, self.world))

    def perm(self, n: int, device: torch.device) -> Tensor:
        return torch.randperm(n, generator=self._gen).to(device)

    def reduce_grads(self, module: nn.Module) -> None:
        """Average gradients over ranks in one flat ``all_reduce``; a missing gradient counts as zero."""
        params = [p for p in module.parameters() if p.requires_grad]
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p).clone()
            offset += n

    def all_sum(self, value: Tensor) -> Tensor:
        value = value.clone()
        dist.all_reduce(value)
        return value

    def broadcast_module(self, module: nn.Module) -> None:
        """Make every rank start from rank 0's parameters and buffers."""
        for t in [*module.parameters(), *module.buffers()]:
            dist.broadcast(t.data, src=0)


def launched_by_torchrun() -> bool:
    """Whether this process is one rank of an external launch (``torchrun`` sets ``WORLD_SIZE``, ``RANK``)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def check_parallel(devices: int, strategy: str, inference: str, device: torch.device) -> int:
    """Validate ``devices``/``strategy`` and return how many processes to spawn (1: none)."""
    if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
        msg = f"Expected devices to be an int >= 1 (processes, one per device), got {devices!r}."
        raise ValueError(msg)
    if strategy not in STRATEGIES:
        msg = f"Expected strategy in {STRATEGIES}, got {strategy!r}."
        raise ValueError(msg)
    parallel = devices > 1 or (strategy == "ddp" and launched_by_torchrun())
    if parallel and inference != "fast":
        msg = f"Data-parallel training runs the fused loss; got inference={inference!r}. Use inference='fast' or devices=1."
        raise ValueError(msg)
    if device.type == "cuda" and devices > torch.cuda.device_count():
        msg = f"devices={devices} but torch sees {torch.cuda.device_count()} CUDA device(s); pass devices <= that number."
        raise ValueError(msg)
    if device.type == "mps" and devices > 1:
        msg = "Data-parallel training on 'mps' is not supported (no collective backend); use devices=1."
        raise ValueError(msg)
    if devices > 1 and launched_by_torchrun():
        msg = (f"This process was launched by torchrun (WORLD_SIZE={os.environ['WORLD_SIZE']}), which already "
               f"starts one process per device; pass devices=1 with strategy='ddp'.")
        raise ValueError(msg)
    return devices


def fit_torchrun(module: nn.Module, data, train_idx: np.ndarray, val_idx: np.ndarray, device: torch.device,
                 cfg: FitConfig, history: dict[str, list[float]]) -> dict[str, Tensor] | None:
    """Train as one rank of an external launch; every rank ends with the same weights.

    Rank 0's train/validation split is broadcast and written into ``train_idx``/``val_idx``
    in place, so every rank (and the indices the model stores) agree.
    """
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method="env://")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    split = [train_idx, val_idx]
    dist.broadcast_object_list(split, src=0)
    train_idx[:], val_idx[:] = split
    seed = torch.tensor([draw_seed()], dtype=torch.int64, device=device)
    dist.broadcast(seed, src=0)
    torch.manual_seed(rank_seed(int(seed), dist.get_rank()))
    module.to(device)
    comm = Distributed(int(seed))
    comm.broadcast_module(module)
    return fit(module, place(data, device), train_idx, val_idx, device, cfg, history, comm=comm)


def fit_spawned(module: nn.Module, data, train_idx: np.ndarray, val_idx: np.ndarray, device: torch.device,
                cfg: FitConfig, history: dict[str, list[float]], world: int) -> dict[str, Tensor] | None:
    """Train on ``world`` local processes (gloo on CPU, NCCL on CUDA); load rank 0's result into ``module``.

    Returns ``None``: under early stopping rank 0 has already restored the best weights.
    """
    import torch.multiprocessing as mp

    seed = draw_seed()
    with tempfile.TemporaryDirectory(prefix="mdlprob-ddp-") as tmp:
        out = Path(tmp) / _WEIGHTS
        args = (world, _free_port(), module.cpu(), data, train_idx, val_idx, device.type, cfg, seed, str(out),
                torch.get_num_threads())
        mp.spawn(_worker, args=args, nprocs=world, join=True)
        result = torch.load(out, map_location=device, weights_only=True)
    module.load_state_dict(result["state"])
    module.to(device)
    for key in ("train_loss", "val_loss"):
        history[key].extend(float(v) for v in result[key])
    return None


def _worker(rank: int, world: int, port: int, module: nn.Module, data: Any, train_idx: np.ndarray,
            val_idx: np.ndarray, device_type: str, cfg: FitConfig, seed: int, out: str, threads: int) -> None:
    module = copy.deepcopy(module)  # spawn hands every rank the parent's (shared-memory) storage
    backend = "nccl" if device_type == "cuda" else "gloo"
    torch.set_num_threads(max(1, threads // world) if device_type == "cpu" else threads)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        device = torch.device("cuda", rank) if device_type == "cuda" else torch.device("cpu")
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.manual_seed(rank_seed(seed, rank))
        module.to(device)
        comm = Distributed(seed)
        comm.broadcast_module(module)
        history: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
        best = fit(module, place(data, device), train_idx, val_idx, device, cfg, history, comm=comm)
        if best is not None:
            module.load_state_dict(best)
        if rank == 0:
            state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
            torch.save({"state": state, **history}, out)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

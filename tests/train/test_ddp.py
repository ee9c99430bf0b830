"""Data-parallel training: argument checks, sharding, and one step equal to single-process training."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import mdlprob
from mdlprob.train import _ddp
from mdlprob.train._loop import FitConfig, _epoch_fn


def _cfg(**kw) -> FitConfig:
    base = {"max_epochs": 1, "batch_size": 16, "lr": 1e-2, "weight_decay": 0.0, "early_stopping": False, "patience": 1,
            "beta": 1.0, "kl_warmup_epochs": 0, "inference": "fast", "chunk_size": None, "progress_bar": False,
            "description": ""}
    return FitConfig(**{**base, **kw})


class _FakeRank(_ddp.Distributed):
    """Rank ``rank`` of ``world`` without a process group: the shared permutation only."""

    def __init__(self, rank: int, world: int, seed: int) -> None:
        self.rank, self.world = rank, world
        self._gen = torch.Generator().manual_seed(_ddp.shared_seed(seed, world))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"devices": 0}, "devices to be an int >= 1"),
    ({"devices": "2"}, "devices to be an int >= 1"),
    ({"devices": 2.0}, "devices to be an int >= 1"),
    ({"strategy": "dp"}, r"strategy in \('auto', 'ddp'\)"),
    ({"devices": 2, "inference": "svi"}, "inference='fast'"),
    ({"devices": 2, "accelerator": "mps"}, "not supported"),
])
def test_bad_parallel_arguments_are_refused(mdata, kwargs, match):
    model = mdlprob.PoEVAE(mdata, n_latent=3, n_hidden=8)
    with pytest.raises(ValueError, match=match):
        model.train(max_epochs=1, progress_bar=False, **{"accelerator": "cpu", **kwargs})


def test_devices_under_torchrun_must_be_one(mdata, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    model = mdlprob.PoEVAE(mdata, n_latent=3, n_hidden=8)
    with pytest.raises(ValueError, match="launched by torchrun"):
        model.train(max_epochs=1, devices=2, accelerator="cpu", progress_bar=False)


def test_ranks_take_disjoint_halves_of_each_global_batch(mdata):
    model = mdlprob.PoEVAE(mdata, n_latent=3, n_hidden=8)
    train = np.arange(150)
    steps = [list(_one_epoch(_epoch_fn(model._tensors, train, 5, torch.device("cpu"), _cfg(batch_size=15), _FakeRank(r, 2, 7))))
             for r in range(2)]
    z = model._tensors.x["rna"]
    for b0, b1 in zip(*steps, strict=True):
        assert len(b0["presence"]) == len(b1["presence"]) == 15
        rows0 = {tuple(r) for r in b0["x"]["rna"].tolist()}
        assert not rows0 & {tuple(r) for r in b1["x"]["rna"].tolist()}
    got = torch.cat([b["x"]["rna"] for s in steps for b in s])
    assert sorted(map(tuple, got.tolist())) == sorted(map(tuple, z.tolist()))


def test_torchrun_launch_of_one_process_trains(mdata, monkeypatch):
    for key, value in {"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(_ddp._free_port())}.items():
        monkeypatch.setenv(key, value)
    model = mdlprob.PoEVAE(mdata, n_latent=3, n_hidden=8)
    try:
        model.train(max_epochs=2, batch_size=50, strategy="ddp", accelerator="cpu", progress_bar=False)
        assert torch.distributed.is_initialized()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    assert model.is_trained_ and len(model.history_["train_loss"]) == 2
    assert np.isfinite(model.history_["train_loss"]).all()


@pytest.mark.slow
def test_two_process_step_equals_single_process_step_on_the_global_batch(mdata):
    """Two gloo processes, one step each on half of a global batch: the weights the parent gets
    back equal one Adam step of a single process on the average of the two halves' gradients
    (same halves, same per-rank noise)."""
    model = mdlprob.PoEVAE(mdata, n_latent=3, n_hidden=16, dropout=0.1)
    reference, initial = copy.deepcopy(model.module), copy.deepcopy(model.module)
    state = torch.get_rng_state()
    model.train(max_epochs=1, batch_size=75, lr=1e-2, devices=2, accelerator="cpu", progress_bar=False)

    torch.set_rng_state(state)
    train_idx, _ = model._split(150, 1.0)
    seed = _ddp.draw_seed()
    perm = torch.randperm(150, generator=torch.Generator().manual_seed(_ddp.shared_seed(seed, 2)))
    halves = torch.tensor_split(torch.as_tensor(train_idx)[perm], 2)
    opt = torch.optim.Adam(reference.parameters(), lr=1e-2)
    reference.train()
    losses = []
    for rank, idx in enumerate(halves):
        torch.manual_seed(_ddp.rank_seed(seed, rank))
        loss = reference.loss(model._tensors.batch(idx), kl_weight=1.0)
        (loss / 2).backward()
        losses.append(float(loss.detach()))
    opt.step()
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(model.module.state_dict()[key], value, rtol=1e-5, atol=1e-6, msg=key)
    assert model.history_["train_loss"] == pytest.approx([np.mean(losses)], rel=1e-5)
    assert any(not torch.equal(p, q) for p, q in zip(reference.parameters(), initial.parameters(), strict=True))


def _one_epoch(fns):
    plan, batches = fns
    return batches(plan(), 0)

"""A diverging run puts the model back to good weights, says what to change, and nothing non-finite is kept or saved."""

from __future__ import annotations

import pytest
import torch

import mdlprob
from mdlprob.exceptions import ModelFileError, TrainingDivergedError

TRAIN = {"batch_size": 32, "progress_bar": False}


def _nan_after(model, n_calls: int):
    """Make the objective non-finite from call ``n_calls`` on (a diverging run, deterministically)."""
    objective, calls = model.module.objective, {"n": 0}

    def objective_nan(*args, **kwargs):
        calls["n"] += 1
        loss = objective(*args, **kwargs)
        return loss * float("nan") if calls["n"] > n_calls else loss

    model.module.objective = objective_nan


def _finite(model) -> bool:
    return all(torch.isfinite(v).all() for v in model.module.state_dict().values() if v.is_floating_point())


def test_divergence_restores_the_last_good_epoch(trained):
    before = {k: v.clone() for k, v in trained.module.state_dict().items()}
    _nan_after(trained, 10)  # 5 steps an epoch: epochs 1-2 are fine, epoch 3 diverges
    with pytest.raises(TrainingDivergedError, match=r"diverged at epoch 3 .*put back to the weights of epoch 2.*Lower lr \(now 0.5\)"):
        trained.train(max_epochs=5, lr=0.5, **TRAIN)
    assert _finite(trained) and trained.is_trained_
    assert trained.history_["diverged_epoch"] == [3]
    assert any(not torch.equal(before[k], v) for k, v in trained.module.state_dict().items())


def test_divergence_in_the_first_epoch_restores_the_starting_weights(mdata):
    model = mdlprob.PoEVAE(mdata, n_latent=4, n_hidden=16)
    start = {k: v.clone() for k, v in model.module.state_dict().items()}
    _nan_after(model, 0)
    with pytest.raises(TrainingDivergedError, match="put back to the weights it started from"):
        model.train(max_epochs=3, **TRAIN)
    assert all(torch.equal(start[k], v) for k, v in model.module.state_dict().items())
    assert not model.is_trained_


def test_divergence_under_early_stopping_keeps_the_best_state(mdata):
    """Thirteen good epochs then a diverging one: the early-stopping best is what remains."""
    model = mdlprob.PoEVAE(mdata, n_latent=4, n_hidden=16)
    _nan_after(model, 13 * 5 + 2)  # train_size 0.8: 120 rows, 4 steps and 1 validation call an epoch
    with pytest.raises(TrainingDivergedError, match="diverged at epoch 14") as info:
        model.train(max_epochs=40, early_stopping=True, train_size=0.8, patience=100, **TRAIN)
    val = model.history_["val_loss"]
    best = min(range(len(val)), key=val.__getitem__) + 1
    assert f"weights of epoch {best}" in str(info.value)
    assert _finite(model)


def test_real_divergence_from_a_huge_learning_rate(trained, mdata, tmp_path):
    with pytest.raises(TrainingDivergedError):
        trained.train(max_epochs=30, lr=1e8, **TRAIN)
    assert _finite(trained)
    assert torch.isfinite(torch.as_tensor(trained.get_latent(mdata))).all()
    trained.save(tmp_path / "ok")  # the restored weights save and load
    mdlprob.PoEVAE.load(tmp_path / "ok", mdata)


def test_save_refuses_and_load_rejects_non_finite_weights(trained, tmp_path):
    trained.save(tmp_path / "m")
    with torch.no_grad():
        next(trained.module.parameters()).fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite weights.*not saved"):
        trained.save(tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    state = torch.load(tmp_path / "m" / "model.pt", weights_only=True)
    key = next(iter(k for k, v in state.items() if v.is_floating_point()))
    state[key] = state[key] * float("inf")
    torch.save(state, tmp_path / "m" / "model.pt")
    with pytest.raises(ModelFileError, match="non-finite weights"):
        mdlprob.PoEVAE.load(tmp_path / "m")

"""Checkpoints: atomic, resumable bit for bit on CPU, written on SIGINT/SIGTERM, refused when foreign."""

from __future__ import annotations

import os
import signal
import threading

import pytest
import torch

import mdlprob
from mdlprob.exceptions import ModelFileError, TrainingInterrupted

TRAIN = {"batch_size": 32, "progress_bar": False, "lr": 3e-3}


def _weights(model):
    return {k: v.clone() for k, v in model.module.state_dict().items()}


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _fresh(mdata, seed=0):
    mdlprob.settings.seed = seed
    return mdlprob.PoEVAE(mdata, n_latent=4, n_hidden=16)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_resume_gives_the_weights_of_an_uninterrupted_run(mdata, tmp_path, early_stopping):
    """Train 3 epochs, resume to 6 (from a different seed and a fresh model): same weights as 6 at once."""
    opts = {**TRAIN, "early_stopping": early_stopping, "patience": 50, "train_size": 0.8}
    full = _fresh(mdata)
    full.train(max_epochs=6, **opts)
    first = _fresh(mdata)
    first.train(max_epochs=3, checkpoint_dir=tmp_path, **opts)
    resumed = _fresh(mdata, seed=123)  # another seed: the checkpoint restores the generators
    resumed.train(max_epochs=6, checkpoint_dir=tmp_path, resume=True, **opts)
    assert _same(_weights(full), _weights(resumed))
    assert full.history_["train_loss"] == resumed.history_["train_loss"]
    assert full.val_indices_ == resumed.val_indices_
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["loop"]["epoch"] == 6


def test_signal_mid_epoch_saves_a_checkpoint_that_resumes_exactly(mdata, tmp_path):
    """SIGTERM during epoch 2 stops after the current step; resuming replays the rest of that epoch."""
    full = _fresh(mdata)
    full.train(max_epochs=4, **TRAIN)
    model = _fresh(mdata)
    calls = {"n": 0}
    objective = model.module.objective

    def counting(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:  # epoch 2 (5 steps an epoch), mid-way
            os.kill(os.getpid(), signal.SIGTERM)
        return objective(*args, **kwargs)

    model.module.objective = counting
    with pytest.raises(TrainingInterrupted, match="SIGTERM after step 7") as info:
        model.train(max_epochs=4, checkpoint_dir=tmp_path, **TRAIN)
    assert info.value.checkpoint == str(tmp_path / "checkpoint.pt")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers are put back
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert saved["loop"]["step"] == 7 and saved["partial"]["position"] == 2
    resumed = _fresh(mdata, seed=5)
    resumed.train(max_epochs=4, checkpoint_dir=tmp_path, resume=True, **TRAIN)
    assert _same(_weights(full), _weights(resumed))


def test_resume_refuses_a_checkpoint_of_another_run(mdata, tmp_path):
    _fresh(mdata).train(max_epochs=1, checkpoint_dir=tmp_path, **TRAIN)
    with pytest.raises(ValueError, match="different run.*lr: checkpoint 0.003, now 0.01"):
        _fresh(mdata).train(max_epochs=2, checkpoint_dir=tmp_path, resume=True, **{**TRAIN, "lr": 1e-2})
    with pytest.raises(ValueError, match="different run.*module"):
        mdlprob.PoEVAE(mdata, n_latent=5, n_hidden=16).train(max_epochs=2, checkpoint_dir=tmp_path, resume=True, **TRAIN)


def test_resume_errors_are_clear(mdata, tmp_path):
    with pytest.raises(ValueError, match="pass the checkpoint_dir"):
        _fresh(mdata).train(max_epochs=1, resume=True, **TRAIN)
    with pytest.raises(FileNotFoundError, match="No checkpoint to resume from"):
        _fresh(mdata).train(max_epochs=1, checkpoint_dir=tmp_path, resume=True, **TRAIN)
    (tmp_path / "checkpoint.pt").write_bytes(os.urandom(500))
    with pytest.raises(ModelFileError, match="not a readable mdlprob checkpoint") as info:
        _fresh(mdata).train(max_epochs=1, checkpoint_dir=tmp_path, resume=True, **TRAIN)
    assert "weights_only=False" not in str(info.value)


def test_loaded_model_trains_on_with_for_training(trained, mdata, tmp_path):
    trained.save(tmp_path / "m")
    with pytest.raises(mdlprob.exceptions.NotTrainedError, match="inference only"):
        mdlprob.PoEVAE.load(tmp_path / "m").train(max_epochs=1)
    with pytest.raises(ValueError, match="needs the training data"):
        mdlprob.PoEVAE.load(tmp_path / "m", for_training=True)
    loaded = mdlprob.PoEVAE.load(tmp_path / "m", mdata, for_training=True)
    before = _weights(loaded)
    loaded.train(max_epochs=1, **TRAIN)
    assert not _same(before, _weights(loaded))
    assert len(loaded.history_["train_loss"]) == len(trained.history_["train_loss"]) + 1


def test_second_sigint_interrupts_at_once():
    from mdlprob.train._checkpoint import stop_on_signals

    with stop_on_signals(True) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.signal == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    with stop_on_signals(True) as stop:  # not installed outside the main thread
        result = []
        thread = threading.Thread(target=lambda: result.append(stop_on_signals(True).__enter__()))
        thread.start()
        thread.join()
        assert not result[0]

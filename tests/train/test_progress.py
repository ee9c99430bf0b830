"""What the training bar shows."""

from __future__ import annotations

import mdlprob


def _last_bar_line(capsys, monkeypatch, **train):
    monkeypatch.setattr(mdlprob.settings, "progress_bar", True)
    mdata = mdlprob.datasets.synthetic(120, missing={"protein": 0.3}, seed=0)
    mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb", "clinical": "mixed"})
    model = mdlprob.PoEVAE(mdata, n_latent=4, n_hidden=16)
    model.train(max_epochs=3, batch_size=64, progress_bar=True, **train)
    lines = [ln for ln in capsys.readouterr().err.replace("\r", "\n").splitlines() if "loss=" in ln]
    return model, lines[-1]


def test_bar_shows_validation_loss_and_best_epoch(capsys, monkeypatch):
    model, last = _last_bar_line(capsys, monkeypatch, train_size=0.75)
    val = model.history_["val_loss"]
    assert f"val={val[-1]:.4g}" in last
    assert f"best={min(val):.4g} (epoch {val.index(min(val)) + 1})" in last


def test_bar_without_validation_split_shows_the_training_loss_only(capsys, monkeypatch):
    model, last = _last_bar_line(capsys, monkeypatch, train_size=1.0, early_stopping=False)
    assert f"loss={model.history_['train_loss'][-1]:.4g}" in last
    assert "val=" not in last


def test_kept_epoch_follows_the_early_stopping_rule():
    """A decrease within the relative tolerance is no improvement: the weights kept are the earlier epoch's."""
    from mdlprob.train._loop import kept_epoch

    assert kept_epoch([10.0, 9.0, 8.9999, 9.5]) == 2
    assert kept_epoch([10.0, 9.0, 8.0, 9.5]) == 3
    assert kept_epoch([float("nan"), 5.0]) == 2


def test_recorded_best_epoch_is_the_one_whose_weights_were_kept(monkeypatch):
    """history_['best_epoch'] (printed by train and `mdlprob fit`) names the epoch early stopping restored."""
    mdata = mdlprob.datasets.synthetic(120, missing={"protein": 0.3}, seed=0)
    mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb", "clinical": "mixed"})
    model = mdlprob.PoEVAE(mdata, n_latent=4, n_hidden=16)
    model.train(max_epochs=3, batch_size=64, train_size=0.75, early_stopping=True, progress_bar=False)
    model.history_["val_loss"][:] = [10.0, 9.0, 8.9999]
    model._record_stopping(max_epochs=3, start=0)
    assert model.history_["best_epoch"] == [2]

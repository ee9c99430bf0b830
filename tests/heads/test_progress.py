"""Fitting a head is never a silent wait."""

from __future__ import annotations

import logging

import numpy as np

import mdlprob
from mdlprob.heads import ClassifierHead, LatentHead


def test_latent_head_fit_says_what_it_does_and_shows_the_head_steps(capsys, caplog, monkeypatch):
    monkeypatch.setattr(mdlprob.settings, "progress_bar", True)
    mdata = mdlprob.datasets.synthetic(80, missing={"protein": 0.3}, seed=0)
    mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb", "clinical": "mixed"})
    model = mdlprob.PoEVAE(mdata, n_latent=3, n_hidden=16)
    model.train(max_epochs=2, progress_bar=False)
    capsys.readouterr()
    with caplog.at_level(logging.INFO, logger="mdlprob"):
        LatentHead(model, ClassifierHead(max_epochs=7), n_samples=2, modality_latents="auto").fit(
            mdata, mdata.obs["label"].to_numpy())
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "latent samples" in messages and "cross-validation" in messages and "Fitting ClassifierHead" in messages
    bars = [ln for ln in capsys.readouterr().err.replace("\r", "\n").splitlines() if "Fitting ClassifierHead" in ln]
    assert any("/7" in ln for ln in bars)  # the head's SVI steps, out of max_epochs


def test_head_steps_are_silent_without_progress_bars(capsys):
    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2
    ClassifierHead(max_epochs=5).fit(X, y)
    assert "Fitting" not in capsys.readouterr().err

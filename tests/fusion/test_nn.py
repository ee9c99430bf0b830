"""Building blocks of the fusion baselines: Cox loss, multimodal dropout, Kronecker fusion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mdlprob.fusion import modality_dropout
from mdlprob.fusion._nn import IntermediateNet, cox_nll


def _breslow_nll(risk, time, event):
    """Reference: loop over events, risk set {j: t_j >= t_i} (Breslow ties)."""
    terms = [risk[i] - np.log(np.exp(risk[time >= time[i]]).sum()) for i in np.flatnonzero(event)]
    return -np.sum(terms) / event.sum()


def test_cox_nll_matches_reference():
    rng = np.random.default_rng(0)
    risk = rng.normal(size=40)
    time = rng.integers(1, 10, size=40).astype(float)  # many ties
    event = rng.random(40) < 0.6
    got = cox_nll(torch.tensor(risk), torch.tensor(time), torch.tensor(event))
    assert float(got) == pytest.approx(_breslow_nll(risk, time, event), rel=1e-10)
    assert float(cox_nll(torch.tensor(risk), torch.tensor(time), torch.zeros(40, dtype=torch.bool))) == 0.0


def test_modality_dropout_never_drops_all():
    rng = np.random.default_rng(0)
    presence = torch.from_numpy(rng.random((5000, 3)) < 0.6)
    presence[~presence.any(dim=1), 0] = True
    gen = torch.Generator().manual_seed(0)
    for p in (0.3, 0.9, 0.999):
        kept = modality_dropout(presence, p, gen)
        assert kept.any(dim=1).all()
        assert not (kept & ~presence).any()  # never adds a modality
    kept = modality_dropout(presence, 0.3, torch.Generator().manual_seed(1))
    single = presence.sum(dim=1) == 1
    assert torch.equal(kept[single], presence[single])  # a lone modality is always kept
    full = presence.all(dim=1)
    rate = 1 - kept[full].float().mean()
    assert 0.2 < float(rate) < 0.35  # about p, a little less because of the give-backs
    again = modality_dropout(presence, 0.3, torch.Generator().manual_seed(1))
    assert torch.equal(kept, again)
    assert modality_dropout(presence, 0.0) is presence


def test_kronecker_keeps_present_terms_when_one_modality_is_absent():
    torch.manual_seed(0)
    net = IntermediateNet({"a": 4, "b": 3}, 2, n_latent=5, n_hidden=8, n_layers=1, dropout=0.0, fusion="kronecker")
    x = {"a": torch.randn(6, 4), "b": torch.randn(6, 3)}
    presence = torch.tensor([[True, False]] * 6)
    h = net.embed(x, presence)
    fused = net._kronecker(h, presence).reshape(6, 6, 6)  # (d+1) x (d+1) for a (rows) and b (cols)
    assert torch.equal(fused[:, :, :5], torch.zeros(6, 6, 5))  # every term with b's embedding is zero
    gated_a = fused[:, :5, 5]
    assert torch.equal(fused[:, 5, 5], torch.ones(6))  # the 1 ⊗ 1 term
    assert (gated_a.abs().sum(dim=1) > 0).all()  # a's unimodal terms are kept
    both = torch.ones(6, 2, dtype=torch.bool)
    assert (net._kronecker(net.embed(x, both), both).reshape(6, 6, 6)[:, :5, :5].abs().sum() > 0)

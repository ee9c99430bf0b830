from __future__ import annotations

import torch

from mdlprob.nn import product_of_experts


def test_product_matches_closed_form_and_ignores_unselected_experts():
    mu = torch.tensor([[[1.0, -2.0]], [[3.0, 0.5]]])
    logvar = torch.log(torch.tensor([[[0.5, 2.0]], [[1.0, 1.0]]]))
    mask = torch.tensor([[True, True]])
    mean, var = product_of_experts(mu, logvar, mask)
    prec = 1 + 1 / 0.5 + 1 / 1.0, 1 + 1 / 2.0 + 1.0
    torch.testing.assert_close(var, torch.tensor([[1 / prec[0], 1 / prec[1]]]))
    torch.testing.assert_close(mean, torch.tensor([[(1.0 * 2 + 3.0) / prec[0], (-2.0 * 0.5 + 0.5) / prec[1]]]))
    only_first = torch.tensor([[True, False]])
    a = product_of_experts(mu, logvar, only_first)
    b = product_of_experts(torch.stack([mu[0], mu[1] * 1e6]), torch.stack([logvar[0], logvar[1] + 50.0]), only_first)
    torch.testing.assert_close(a, b)


def test_no_expert_gives_the_prior():
    mean, var = product_of_experts(torch.randn(3, 4, 2), torch.randn(3, 4, 2), torch.zeros(4, 3, dtype=torch.bool))
    assert (mean == 0).all() and (var == 1).all()

r"""Decoder-only outcome model :math:`p(y \mid z)` for joint (semi-supervised) training.

The outcome has no encoder: the posterior :math:`q(z \mid x)` never sees it, so a labelled
observation's latent is computed exactly like an unlabelled one's and predictions for new
observations involve no leak. During training the outcome's log-likelihood under the
posterior of all present modalities is added to the objective (weighted), which shapes the
latent space towards the outcome (Kingma et al., 2014, M2 with an observed label).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..nn import mlp


class OutcomeHead(nn.Module):
    r"""Log-likelihood of a label or a right-censored survival time given :math:`z`.

    * ``categorical``: :math:`y \mid z \sim \mathrm{Categorical}(\mathrm{softmax}(f(z)))`;
    * ``coxph``: risk :math:`\eta(z) = f(z)`, Cox partial likelihood (Breslow ties) within
      the mini-batch, as in DeepSurv;
    * ``logistic_hazard``: discrete hazards :math:`h_k(z) = \sigma(f_k(z))` on the bins cut
      by ``cuts``; an event in bin :math:`b` contributes
      :math:`\sum_{k<b}\log(1-h_k) + \log h_b`, a censoring in bin :math:`b` contributes
      :math:`\sum_{k<b}\log(1-h_k)` (survived the bins wholly before it).

    Parameters
    ----------
    entry
        The registry's ``outcome`` entry (see :func:`mdlprob.data.setup_mudata`).
    """

    def __init__(self, entry: Mapping[str, Any], *, n_latent: int, n_hidden: int) -> None:
        super().__init__()
        self.type = entry["type"]
        self.weight = float(entry.get("weight", 1.0))
        n_out = {"categorical": len(entry.get("classes", ())), "coxph": 1,
                 "logistic_hazard": len(entry.get("cuts", ())) + 1}[self.type]
        self.net = nn.Sequential(mlp(n_latent, n_hidden, 1), nn.Linear(n_hidden, n_out))

    def forward(self, z: Tensor) -> Tensor:
        """Logits (categorical), risk (coxph, last dim squeezed) or hazard logits (logistic_hazard)."""
        out = self.net(z)
        return out.squeeze(-1) if self.type == "coxph" else out

    def log_prob(self, z: Tensor, y: Mapping[str, Tensor]) -> Tensor:
        """Per-observation log-likelihood ``(..., batch)``; zero where the outcome is absent."""
        present = y["present"]
        out = self(z)
        zero = out.new_zeros(())
        if self.type == "categorical":
            lp = F.log_softmax(out, -1).gather(-1, y["label"].clamp_min(0).expand(*out.shape[:-1]).unsqueeze(-1))
            return torch.where(present, lp.squeeze(-1), zero)
        if self.type == "coxph":
            return cox_partial_log_lik(out, y["time"], y["event"], present)
        log_h, log_1mh = F.logsigmoid(out), F.logsigmoid(-out)
        k = torch.arange(out.shape[-1], device=out.device)
        before = (k < y["bin"].unsqueeze(-1)).to(out.dtype)
        lp = (before * log_1mh).sum(-1) + torch.where(
            y["event"], log_h.gather(-1, y["bin"].expand(*out.shape[:-1]).unsqueeze(-1)).squeeze(-1), zero)
        return torch.where(present, lp, zero)

    def survival(self, z: Tensor) -> Tensor:
        """Logistic hazard only: survival probability at the end of each bin, ``(..., n_bins)``."""
        return torch.exp(torch.cumsum(F.logsigmoid(-self(z)), dim=-1))

    def risk(self, z: Tensor) -> Tensor:
        """Survival outcomes: a risk score (higher = earlier event)."""
        if self.type == "coxph":
            return self(z)
        return -torch.log(self.survival(z)[..., -1].clamp_min(1e-12))  # cumulative hazard over all bins


def cox_partial_log_lik(risk: Tensor, time: Tensor, event: Tensor, present: Tensor) -> Tensor:
    r"""Per-observation terms of the Breslow partial log-likelihood among ``present`` observations.

    .. math:: \ell_i = \delta_i \Big[\eta_i - \log \sum_{j:\, t_j \ge t_i} e^{\eta_j}\Big]

    ``risk`` is ``(..., batch)``; the other arguments are ``(batch,)``. Terms of censored or
    absent observations are zero (absent ones are also left out of every risk set).
    """
    at_risk = (time.unsqueeze(0) >= time.unsqueeze(1)) & present.unsqueeze(0)  # [i, j]: j at risk at t_i
    at_risk |= torch.eye(time.shape[0], dtype=torch.bool, device=time.device)  # no empty row (finite gradients)
    masked = torch.where(at_risk, risk.unsqueeze(-2), risk.new_full((), float("-inf")))
    log_denominator = torch.logsumexp(masked, dim=-1)
    return torch.where(event & present, risk - log_denominator, risk.new_zeros(()))

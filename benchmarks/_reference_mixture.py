"""Hand-written plain-PyTorch references of mdlprob's MoEVAE and MoPoEVAE (NB likelihoods), for benchmarks only.

Like ``_reference_poe.py`` (whose encoders, decoders, input standardisation and NB density
they reuse) they import nothing from mdlprob: the throughput benchmark compares mdlprob with
independent implementations of the same models and objectives.

* ``ReferenceMoEVAE``: the mixture of the available unimodal experts (MMVAE) trained with
  the stratified objective at ``k = 1`` and mdlprob's default DReG estimator, which at one
  draw is the ELBO of each stratum with the mixture's parameters detached inside
  ``log q`` ("sticking the landing"): per present modality ``m``, ``z_m ~ q_m`` reparameterised,
  ``w_m = log p(x_present | z_m) + log p(z_m) - log q_mix(z_m)``, averaged over the present
  modalities.
* ``ReferenceMoPoEVAE``: the mixture of the products of experts of every non-empty subset;
  per observation one subset ``S`` drawn uniformly from those its modalities allow,
  ``z ~ PoE_S`` reparameterised, loss ``-log p(x_present | z) + KL(PoE_S || N(0, I))``.
"""

from __future__ import annotations

import itertools
import math

import torch
from _reference_poe import LOG_MU_MAX, ReferencePoEVAE, nb_log_prob, poe_draw
from torch import Tensor

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class _MixtureReference(ReferencePoEVAE):
    """Encoders and decoders of the PoE reference; subclasses give the objective."""

    def __init__(self, data: dict[str, Tensor], presence: Tensor, *, n_hidden: int, n_latent: int) -> None:
        super().__init__(data, presence, n_hidden=n_hidden, n_latent=n_latent)

    def experts(self, xs: list[Tensor]) -> tuple[Tensor, Tensor]:
        """Every modality's expert mean and log-variance, stacked ``(n_mod, batch, n_latent)``."""
        mus, logvars = [], []
        for j, x in enumerate(xs):
            h = (torch.log1p(x) - getattr(self, f"loc{j}")) / getattr(self, f"scale{j}")
            mu, logvar = self.encoders[j](h).chunk(2, dim=-1)
            mus.append(mu)
            logvars.append(logvar.clamp(-10.0, 8.0))
        return torch.stack(mus), torch.stack(logvars)

    def reconstruction(self, xs: list[Tensor], presence: Tensor, z: Tensor) -> Tensor:
        """``log p(x_present | z)`` for draws ``z`` ``(..., batch, n_latent)``: ``(..., batch)``."""
        total = z.new_zeros(z.shape[:-1])
        for j, x in enumerate(xs):
            log_mu = self.decoders[j](z).clamp(max=LOG_MU_MAX)
            total = total + torch.where(presence[:, j], nb_log_prob(x, log_mu, self.log_theta[j]).sum(-1), 0.0)
        return total


class ReferenceMoEVAE(_MixtureReference):
    """Mixture-of-experts VAE, stratified one-draw objective with the DReG/STL gradient."""

    def forward(self, xs: list[Tensor], presence: Tensor) -> Tensor:
        mu, logvar = self.experts(xs)
        n_mod, n, d = mu.shape
        z = mu + (0.5 * logvar).exp() * torch.randn((n_mod, n, d), device=mu.device)  # stratum m draws from q_m
        # The mixture: the available experts with equal weight, plus the prior when none is.
        means = torch.cat([mu, mu.new_zeros((1, n, d))]).detach()
        variances = torch.cat([logvar.exp(), mu.new_ones((1, n, d))]).detach()
        weights = torch.cat([presence, ~presence.any(-1, keepdim=True)], dim=-1).float()
        weights = (weights / weights.sum(-1, keepdim=True)).t()  # (n_components, batch)
        diff = z.unsqueeze(1) - means  # (n_mod, n_components, batch, d)
        comp = (-0.5 * diff**2 / variances - 0.5 * variances.log() - _HALF_LOG_2PI).sum(-1)
        log_q = torch.logsumexp(torch.where(weights > 0, comp + weights.log(), -math.inf), dim=1)
        log_pz = (-0.5 * z**2 - _HALF_LOG_2PI).sum(-1)
        log_w = self.reconstruction(xs, presence, z) + log_pz - log_q  # (n_mod, batch)
        per_obs = torch.where(presence.t(), log_w, 0.0).sum(0) / presence.sum(-1).clamp_min(1)
        return -per_obs.sum() / n


class ReferenceMoPoEVAE(_MixtureReference):
    """Mixture-of-products-of-experts VAE, one uniformly drawn subset per observation and step."""

    def __init__(self, data: dict[str, Tensor], presence: Tensor, *, n_hidden: int, n_latent: int) -> None:
        super().__init__(data, presence, n_hidden=n_hidden, n_latent=n_latent)
        n_mod = len(self.modalities)
        subsets = [s for k in range(1, n_mod + 1) for s in itertools.combinations(range(n_mod), k)]
        masks = torch.zeros(len(subsets), n_mod, dtype=torch.bool)
        for t, idx in enumerate(subsets):
            masks[t, list(idx)] = True
        self.register_buffer("subset_masks", masks)

    def forward(self, xs: list[Tensor], presence: Tensor) -> Tensor:
        mu, logvar = self.experts(xs)
        allowed = ~(self.subset_masks.unsqueeze(0) & ~presence.unsqueeze(1)).any(-1)  # (batch, n_subsets)
        allowed = torch.where(allowed.any(-1, keepdim=True), allowed, torch.ones_like(allowed))
        subset = torch.multinomial(allowed / allowed.sum(-1, keepdim=True), 1).squeeze(-1)
        z, kl = poe_draw(mu, torch.exp(-logvar), self.subset_masks[subset] & presence)
        return (kl - self.reconstruction(xs, presence, z)).sum() / presence.shape[0]

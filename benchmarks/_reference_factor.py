"""Hand-written plain-PyTorch reference of mdlprob's FactorModel (NB likelihoods), for benchmarks only.

Like ``_reference_poe.py`` (whose encoders, input standardisation, product of experts, MVAE
objective and NB density it reuses) it imports nothing from mdlprob:

* encoders and the amortised product-of-experts posterior of the PoE reference;
* decoder per modality: one linear map ``log mu = W_m z + b_m`` (clamped at 15), the bias
  initialised at ``log(mean + 1e-3)`` of the training counts; NB with a learned per-feature
  log inverse dispersion;
* objective: the negative MVAE objective per observation minus ``log p(W, alpha) / n_obs``,
  the ARD prior ``W_m[:, k] ~ N(0, 1 / alpha_mk)``, ``alpha_mk ~ Gamma(1e-3, 1e-3)`` taken in
  ``log alpha`` at its closed-form conditional MAP ``alpha = (G_m / 2 + a) / (b + |W_m[:, k]|^2 / 2)``.
"""

from __future__ import annotations

import math

import torch
from _reference_poe import ReferencePoEVAE
from torch import Tensor, nn

_A = _B = 1e-3
_LOG_2PI = math.log(2 * math.pi)
_LOG_GAMMA_NORM = _A * math.log(_B) - math.lgamma(_A)


class ReferenceFactorModel(ReferencePoEVAE):
    """Linear-decoder PoE factor model with an ARD prior on the loadings, trained on the MVAE objective."""

    def __init__(self, data: dict[str, Tensor], presence: Tensor, *, n_hidden: int, n_latent: int) -> None:
        super().__init__(data, presence, n_hidden=n_hidden, n_latent=n_latent)
        self.n_obs = presence.shape[0]
        for j, mod in enumerate(self.modalities):
            x = data[mod][presence[:, j]].float().cpu()
            dec = nn.Linear(n_latent, x.shape[1])
            with torch.no_grad():
                dec.bias.copy_(torch.log(x.mean(0) + 1e-3))
            self.decoders[j] = dec

    def log_prior(self) -> Tensor:
        """ARD log prior of the loadings and of ``log alpha`` at the MAP precisions."""
        total = self.log_theta[0].new_zeros(())
        for dec in self.decoders:
            sq = (dec.weight**2).sum(0)  # (n_latent,)
            g = dec.weight.shape[0]
            alpha = (g / 2 + _A) / (_B + 0.5 * sq)
            log_alpha = alpha.log()
            total = total + (0.5 * g * (log_alpha - _LOG_2PI) - 0.5 * alpha * sq
                             + _LOG_GAMMA_NORM + _A * log_alpha - _B * alpha).sum()
        return total

    def forward(self, xs: list[Tensor], presence: Tensor) -> Tensor:
        return super().forward(xs, presence) - self.log_prior() / self.n_obs


def copy_factor_from_mdlprob(ref: ReferenceFactorModel, module) -> bool:
    """Copy the weights of an mdlprob ``_FactorModelModule`` (NB modalities) into ``ref``; False if it does not fit."""
    try:
        with torch.no_grad():
            for j, mod in enumerate(ref.modalities):
                enc, lik = module.encoders[mod], module.likelihoods[mod]
                r_enc = ref.encoders[j]
                for dst, src in ((r_enc[0], enc.body[0]), (r_enc[1], enc.body[1]), (r_enc[3], enc.out),
                                 (ref.decoders[j], lik.mu_head)):
                    dst.load_state_dict(src.state_dict())
                for dst, src in ((getattr(ref, f"loc{j}"), lik.in_loc), (getattr(ref, f"scale{j}"), lik.in_scale),
                                 (ref.log_theta[j], lik.log_theta)):
                    dst.copy_(src)
        return True
    except (AttributeError, KeyError, IndexError, TypeError, RuntimeError):
        return False

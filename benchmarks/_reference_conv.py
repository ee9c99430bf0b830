"""Hand-written plain-PyTorch reference of mdlprob's PoEVAE with image experts (Gaussian pixels), for benchmarks only.

The same layers as mdlprob's image experts, taken as plain ``nn.Module`` s from ``mdlprob.nn``
(:class:`~mdlprob.nn.ConvEncoder`, :class:`~mdlprob.nn.ConvDecoder`), and everything around
them written out here: no likelihood objects, batch dictionaries, presence-mask plumbing or
training loop of mdlprob's.

* input per modality: pixels standardised per pixel (training mean and sd, sd 1 where constant);
* posterior of a subset of modalities: product of a N(0, I) prior expert and the experts of the
  subset that the observation has;
* MVAE objective: the joint ELBO plus one ELBO per modality reconstructing only that modality;
  analytic KL to N(0, I), one reparameterised sample;
* decoder per modality: ``ConvDecoder`` (8 channels) then a per-pixel 1x1 map to the image's
  channels plus a per-pixel bias; Gaussian with mean ``m + s * f(z)`` and per-pixel scale
  ``s * sigma`` (``log sigma`` learned, initialised at ``log 0.5``).
"""

from __future__ import annotations

import math

import torch
from _reference_poe import poe_draw
from torch import Tensor, nn

from mdlprob.nn import ConvDecoder, ConvEncoder

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class ReferenceConvPoEVAE(nn.Module):
    """Product-of-experts VAE over image modalities ``(C, H, W)`` (flattened rows), MVAE objective.

    Parameters
    ----------
    data
        Modality name to the training pixels ``(n_obs, C * H * W)`` (float32): the input
        standardisation only.
    presence
        Bool ``(n_obs, n_modalities)``.
    image_shape
        ``(C, H, W)``, the same for every modality.
    """

    def __init__(self, data: dict[str, Tensor], presence: Tensor, *, image_shape: tuple[int, int, int],
                 n_latent: int) -> None:
        super().__init__()
        self.modalities = list(data)
        self.shape = tuple(int(v) for v in image_shape)
        self.encoders, self.decoders = nn.ModuleList(), nn.ModuleList()
        self.head_weight, self.head_bias, self.log_sigma = nn.ParameterList(), nn.ParameterList(), nn.ParameterList()
        c, n_pix = self.shape[0], int(math.prod(self.shape))
        for j, mod in enumerate(self.modalities):
            x = data[mod][presence[:, j]].float().cpu()
            self.encoders.append(ConvEncoder(self.shape, c, n_latent))
            dec = ConvDecoder(n_latent, self.shape)
            self.decoders.append(dec)
            self.head_weight.append(nn.Parameter(torch.randn(c, dec.out_channels) / dec.out_channels**0.5))
            self.head_bias.append(nn.Parameter(torch.zeros(n_pix)))
            self.log_sigma.append(nn.Parameter(torch.full((n_pix,), math.log(0.5))))
            loc = x.mean(0)
            scale = x.var(0, unbiased=False).sqrt()
            self.register_buffer(f"loc{j}", loc)
            self.register_buffer(f"scale{j}", torch.where(scale > 1e-6, scale, torch.ones_like(scale)))
        n_mod = len(self.modalities)
        self.terms = [list(range(n_mod))] + ([[j] for j in range(n_mod)] if n_mod > 1 else [])
        masks = torch.zeros(len(self.terms), n_mod, dtype=torch.bool)
        for t, idx in enumerate(self.terms):
            masks[t, idx] = True
        self.register_buffer("term_masks", masks)

    def _log_prob(self, j: int, z: Tensor, x: Tensor) -> Tensor:
        c, h, w = self.shape
        feats = self.decoders[j](z).reshape(z.shape[0], -1, h * w)
        out = torch.matmul(self.head_weight[j], feats).reshape(z.shape[0], c * h * w) + self.head_bias[j]
        loc_j, scale_j = getattr(self, f"loc{j}"), getattr(self, f"scale{j}")
        loc = loc_j + scale_j * out
        log_scale = self.log_sigma[j] + scale_j.log()
        return (-0.5 * ((x - loc) * torch.exp(-log_scale)) ** 2 - log_scale - _HALF_LOG_2PI).sum(-1)

    def forward(self, xs: list[Tensor], presence: Tensor) -> Tensor:
        """Negative MVAE objective averaged over the batch (``xs`` in modality order)."""
        mus, logvars = [], []
        for j, x in enumerate(xs):
            mu, logvar = self.encoders[j]((x - getattr(self, f"loc{j}")) / getattr(self, f"scale{j}"))
            mus.append(mu)
            logvars.append(logvar)
        mu, prec_all = torch.stack(mus), torch.exp(-torch.stack(logvars))
        total = mu.new_zeros(())
        for t, idx in enumerate(self.terms):
            use = presence & self.term_masks[t]
            z, kl = poe_draw(mu, prec_all, use)
            total = total + kl.sum()
            for j in idx:
                total = total - torch.where(presence[:, j], self._log_prob(j, z, xs[j]), 0.0).sum()
        return total / presence.shape[0]


def copy_conv_from_mdlprob(ref: ReferenceConvPoEVAE, module) -> bool:
    """Copy the weights of an mdlprob ``_PoEVAEModule`` with Gaussian image modalities into ``ref``.

    Used only to check that both compute the same objective; returns False (copying nothing
    further) when the module does not have the expected layout.
    """
    try:
        with torch.no_grad():
            for j, mod in enumerate(ref.modalities):
                lik = module.likelihoods[mod]
                ref.encoders[j].load_state_dict(module.encoders[mod].state_dict())
                ref.decoders[j].load_state_dict(module.decoders[mod].state_dict())
                ref.head_weight[j].copy_(lik.loc_head.weight)
                ref.head_bias[j].copy_(lik.loc_head.bias)
                ref.log_sigma[j].copy_(lik.log_sigma)
                getattr(ref, f"loc{j}").copy_(lik.in_loc)
                getattr(ref, f"scale{j}").copy_(lik.in_scale)
        return True
    except (AttributeError, KeyError, IndexError, TypeError, RuntimeError):
        return False

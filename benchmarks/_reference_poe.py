"""Hand-written plain-PyTorch reference of mdlprob's PoEVAE (NB likelihoods), for benchmarks only.

Self-contained on purpose: it imports nothing from mdlprob, so that the throughput benchmark
compares mdlprob against an independent implementation of the same model and objective:

* encoder per modality: standardised ``log1p(x)`` -> Linear -> LayerNorm -> ReLU ->
  Linear(2 * n_latent); log-variance clamped to [-10, 8];
* posterior of a subset S of modalities: product of a N(0, I) prior expert and the experts
  of S that the observation has (presence mask);
* MVAE objective: the joint ELBO plus one ELBO per modality, where a single-modality term
  reconstructs only that modality (``cross_reconstruction=False``, the default here) or every
  modality (``cross_reconstruction=True``, MoPoE-style); analytic KL to N(0, I), one
  reparameterised sample;
* decoder per modality: Linear -> LayerNorm -> ReLU -> Linear to the log-mean (clamped at 15);
  negative binomial with a learned per-feature log inverse dispersion (initialised at 1);
  the output bias is initialised at ``log(mean + 1e-3)`` of the training counts.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

LOG_MU_MAX = 15.0


def nb_log_prob(x: Tensor, log_mu: Tensor, log_theta: Tensor) -> Tensor:
    """Elementwise NB log-density with mean ``exp(log_mu)`` and inverse dispersion ``exp(log_theta)``."""
    theta = log_theta.exp()
    log_theta_mu = torch.logaddexp(log_theta, log_mu)
    return (
        torch.lgamma(x + theta) - torch.lgamma(theta) - torch.lgamma(x + 1.0)
        + theta * (log_theta - log_theta_mu) + x * (log_mu - log_theta_mu)
    )


def poe_draw(mu: Tensor, prec_all: Tensor, use: Tensor) -> tuple[Tensor, Tensor]:
    """One reparameterised draw of the product of the experts in ``use`` (and the N(0, I) prior),
    and its KL to the prior per observation (0 where no expert is used).

    ``mu``, ``prec_all``: ``(n_mod, batch, n_latent)`` expert means and precisions; ``use``: bool ``(batch, n_mod)``.
    """
    sel = use.t().unsqueeze(-1)
    prec = torch.where(sel, prec_all, 0.0)
    q_prec = 1.0 + prec.sum(0)
    q_mean = torch.where(sel, prec * mu, 0.0).sum(0) / q_prec
    q_var = 1.0 / q_prec
    z = q_mean + q_var.sqrt() * torch.randn_like(q_mean)
    kl = 0.5 * (q_var + q_mean**2 - 1.0 - q_var.log()).sum(-1)
    return z, torch.where(use.any(-1), kl, 0.0)



def standardisation(x: Tensor) -> tuple[Tensor, Tensor]:
    """Column mean and (population) sd of ``log1p(x)``; sd of constant columns set to 1."""
    t = torch.log1p(x)
    loc = t.mean(0)
    scale = t.var(0, unbiased=False).sqrt()
    return loc, torch.where(scale > 1e-6, scale, torch.ones_like(scale))


class ReferencePoEVAE(nn.Module):
    """Product-of-experts VAE over count modalities, trained on the MVAE objective.

    Parameters
    ----------
    data
        Modality name to the training counts ``(n_obs, n_vars)`` (float32), used for the
        input standardisation and the initial decoder bias only.
    presence
        Bool ``(n_obs, n_modalities)``; statistics use the present rows only.
    cross_reconstruction
        Whether each single-modality posterior also reconstructs the other modalities.
    """

    def __init__(self, data: dict[str, Tensor], presence: Tensor, *, n_hidden: int, n_latent: int,
                 cross_reconstruction: bool = False) -> None:
        super().__init__()
        self.modalities = list(data)
        self.n_latent = n_latent
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.log_theta = nn.ParameterList()
        for j, mod in enumerate(self.modalities):
            x = data[mod][presence[:, j]].float().cpu()
            g = x.shape[1]
            self.encoders.append(nn.Sequential(
                nn.Linear(g, n_hidden), nn.LayerNorm(n_hidden), nn.ReLU(), nn.Linear(n_hidden, 2 * n_latent)))
            dec = nn.Sequential(
                nn.Linear(n_latent, n_hidden), nn.LayerNorm(n_hidden), nn.ReLU(), nn.Linear(n_hidden, g))
            with torch.no_grad():
                dec[-1].bias.copy_(torch.log(x.mean(0) + 1e-3))
            self.decoders.append(dec)
            self.log_theta.append(nn.Parameter(torch.full((g,), 1.0)))
            loc, scale = standardisation(x)
            self.register_buffer(f"loc{j}", loc)
            self.register_buffer(f"scale{j}", scale)
        n_mod = len(self.modalities)
        # Terms of the MVAE objective: the joint, then each modality alone (when there are several).
        self.terms = [list(range(n_mod))] + ([[j] for j in range(n_mod)] if n_mod > 1 else [])
        self.decoded = [list(range(n_mod)) if cross_reconstruction else idx for idx in self.terms]
        masks = torch.zeros(len(self.terms), n_mod, dtype=torch.bool)
        for t, idx in enumerate(self.terms):
            masks[t, idx] = True
        self.register_buffer("term_masks", masks)

    def forward(self, xs: list[Tensor], presence: Tensor) -> Tensor:
        """Negative MVAE objective averaged over the batch (``xs`` in modality order)."""
        mus, logvars = [], []
        for j, x in enumerate(xs):
            h = (torch.log1p(x) - getattr(self, f"loc{j}")) / getattr(self, f"scale{j}")
            mu, logvar = self.encoders[j](h).chunk(2, dim=-1)
            mus.append(mu)
            logvars.append(logvar.clamp(-10.0, 8.0))
        mu, prec_all = torch.stack(mus), torch.exp(-torch.stack(logvars))  # (n_mod, batch, n_latent)
        total = mu.new_zeros(())
        for t in range(len(self.terms)):
            use = presence & self.term_masks[t]  # (batch, n_mod)
            z, kl = poe_draw(mu, prec_all, use)
            total = total + kl.sum()
            for j in self.decoded[t]:
                log_mu = self.decoders[j](z).clamp(max=LOG_MU_MAX)
                lp = nb_log_prob(xs[j], log_mu, self.log_theta[j]).sum(-1)
                total = total - torch.where(presence[:, j], lp, 0.0).sum()
        return total / presence.shape[0]


def copy_from_mdlprob(ref: ReferencePoEVAE, module) -> bool:
    """Copy the weights of an mdlprob ``_PoEVAEModule`` (NB modalities) into ``ref``.

    Used only to check that both compute the same objective; returns False (copying
    nothing) when the module does not have the expected layout.
    """
    try:
        pairs = []
        for j, mod in enumerate(ref.modalities):
            enc, dec, lik = module.encoders[mod], module.decoders[mod], module.likelihoods[mod]
            r_enc, r_dec = ref.encoders[j], ref.decoders[j]
            pairs += [(r_enc[0], enc.body[0]), (r_enc[1], enc.body[1]), (r_enc[3], enc.out),
                      (r_dec[0], dec[0]), (r_dec[1], dec[1]), (r_dec[3], lik.mu_head)]
            pairs_buf = [(getattr(ref, f"loc{j}"), lik.in_loc), (getattr(ref, f"scale{j}"), lik.in_scale),
                         (ref.log_theta[j], lik.log_theta)]
            for dst, src in pairs_buf:
                if dst.shape != src.shape:
                    return False
            with torch.no_grad():
                for dst, src in pairs_buf:
                    dst.copy_(src)
        with torch.no_grad():
            for dst, src in pairs:
                dst.load_state_dict(src.state_dict())
        return True
    except (AttributeError, KeyError, IndexError, TypeError, RuntimeError):
        return False

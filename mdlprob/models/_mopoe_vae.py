"""Multimodal VAE with a mixture-of-products-of-experts posterior (MoPoE-VAE)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from typing import Any, Literal

import pyro
import pyro.distributions as pdist
import torch
from pyro import poutine
from torch import Tensor

from ..base import BaseModel
from ..base._mixture import MixturePosteriorModule
from ..nn import product_of_experts
from ._registry import register_model


class _MoPoEVAEModule(MixturePosteriorModule):
    r"""Mixture over every non-empty subset :math:`S` of the available experts of :math:`\mathrm{PoE}_S`.

    ``subset_masks`` is the ``(2^M - 1, M)`` bool buffer of all non-empty subsets of the
    ``M`` modalities; an observation's mixture uses those contained in its available
    modalities (``use & presence``). An observation with none gets the prior N(0, I).
    """

    def __init__(self, spec: Mapping[str, Mapping[str, Any]], **kwargs) -> None:
        super().__init__(spec, **kwargs)
        n_mod = len(self.modalities)
        subsets = [s for k in range(1, n_mod + 1) for s in itertools.combinations(range(n_mod), k)]
        masks = torch.zeros(len(subsets), n_mod, dtype=torch.bool)
        for t, idx in enumerate(subsets):
            masks[t, list(idx)] = True
        self.register_buffer("subset_masks", masks)
        # Pyro's parameter store is global: a unique name keeps two models' parameters apart.
        self._pyro_name = f"mdlprob_mopoe_vae_{uuid.uuid4().hex[:12]}"

    def subset_weights(self, available: Tensor) -> Tensor:
        """``(batch, n_subsets)`` mixture weights: uniform over the non-empty subsets of ``available``.

        With nothing available every subset's product is the prior, so all get equal weight.
        """
        valid = ~(self.subset_masks.unsqueeze(0) & ~available.unsqueeze(1)).any(-1)
        valid = torch.where(valid.any(-1, keepdim=True), valid, torch.ones_like(valid))
        return valid / valid.sum(-1, keepdim=True)

    def _components(self, batch: Mapping[str, Any], use: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Every subset's PoE ``(n_subsets, batch, n_latent)`` mean and variance, and the weights."""
        mu, logvar = self.encode(batch)
        available = use & batch["presence"]
        n_sub, (n_mod, n, d) = self.subset_masks.shape[0], mu.shape
        masks = (self.subset_masks.unsqueeze(1) & available.unsqueeze(0)).reshape(n_sub * n, n_mod)
        mean, var = product_of_experts(mu.repeat(1, n_sub, 1), logvar.repeat(1, n_sub, 1), masks)
        return mean.reshape(n_sub, n, d), var.reshape(n_sub, n, d), self.subset_weights(available)

    def draw_subsets(self, batch: Mapping[str, Any]) -> Tensor:
        """One subset index per observation, uniform over the non-empty subsets it has: ``(batch,)``."""
        return torch.multinomial(self.subset_weights(batch["presence"]), 1).squeeze(-1)

    def _subset_posterior(self, batch: Mapping[str, Any], subset: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.encode(batch)
        return product_of_experts(mu, logvar, self.subset_masks[subset] & batch["presence"])

    def _subset_index(self, batch: Mapping[str, Any], subset: Tensor | None) -> Tensor:
        if subset is None:
            subset = batch.get("subset")
        return self.draw_subsets(batch) if subset is None else subset

    def loss(self, batch: Mapping[str, Any], *, kl_weight: float = 1.0, z: Tensor | None = None,
             subset: Tensor | None = None) -> Tensor:
        r"""Negative MoPoE ELBO averaged over observations, estimated with one subset each.

        For observation :math:`i` one subset :math:`S_i` is drawn uniformly from the
        non-empty subsets of its modalities (or taken from ``subset`` / ``batch["subset"]``),
        :math:`z \sim \mathrm{PoE}_{S_i}` reparameterised (or the given ``z``), and

        .. math::
            -\log p(x_{iM_i} \mid z) + \beta\,\mathrm{KL}(\mathrm{PoE}_{S_i} \,\|\, \mathcal{N}(0, I)),

        an unbiased estimate of minus the average of the subset ELBOs; it is exactly what
        :meth:`model`/:meth:`guide` optimise under ``TraceMeanField_ELBO`` for the same draws.
        """
        subset = self._subset_index(batch, subset)
        q_mean, q_var = self._subset_posterior(batch, subset)
        zz = q_mean + q_var.sqrt() * torch.randn_like(q_mean) if z is None else z
        kl = 0.5 * (q_var + q_mean**2 - 1.0 - q_var.log()).sum(-1)
        rec = sum(self.recon_log_prob(mod, j, zz, batch) for j, mod in enumerate(self.modalities))
        return (kl_weight * kl - rec).sum() / batch["presence"].shape[0]

    def model(self, batch: Mapping[str, Any], kl_weight: float = 1.0) -> None:
        """Pyro generative model: z ~ N(0, I) and every present modality ~ p(x | z)."""
        pyro.module(self._pyro_name, self)
        presence = batch["presence"]
        n = presence.shape[0]
        zeros = presence.new_zeros((n, self.n_latent), dtype=torch.float32)
        with pyro.plate("obs", n):
            with poutine.scale(scale=kl_weight):
                z = pyro.sample("z", pdist.Normal(zeros, 1.0).to_event(1))
            for j, mod in enumerate(self.modalities):
                self.likelihoods[mod].pyro_observe(
                    f"x_{mod}", self.decode(mod, z, batch), batch["x"][mod], self.observation_mask(mod, j, batch)
                )

    def guide(self, batch: Mapping[str, Any], kl_weight: float = 1.0) -> None:
        """Pyro guide: q(z) = PoE of one subset per observation (``batch["subset"]`` or a uniform draw).

        The subset is an auxiliary variable with the same uniform law in the model and the
        guide, so it cancels from the ELBO and is drawn outside Pyro's sample sites.
        """
        pyro.module(self._pyro_name, self)
        q_mean, q_var = self._subset_posterior(batch, self._subset_index(batch, None))
        with pyro.plate("obs", batch["presence"].shape[0]), poutine.scale(scale=kl_weight):
            pyro.sample("z", pdist.Normal(q_mean, q_var.sqrt()).to_event(1))


@register_model(alias="mopoe", image_experts=True)
class MoPoEVAE(BaseModel):
    r"""Multimodal VAE whose posterior is a mixture of products of experts over subsets of modalities.

    Generative model, for observation :math:`i` with modalities :math:`m \in M_i` present:

    .. math::
        z_i \sim \mathcal{N}(0, I_d), \qquad
        x_{im} \mid z_i \sim p_{\theta_m}(x_{im} \mid z_i) \quad (m \in M_i),

    with each :math:`p_{\theta_m}` the registered likelihood (NaN entries are left out of it).
    Inference network, for the available modalities :math:`A = S \cap M_i` (``given`` picks
    :math:`S`) and :math:`\mathcal{P}(A)` the non-empty subsets of :math:`A`:

    .. math::
        q(z_i \mid x_{iA}) = \frac{1}{|\mathcal{P}(A)|} \sum_{T \in \mathcal{P}(A)}
        \mathrm{PoE}_T(z_i), \qquad
        \mathrm{PoE}_T \propto \mathcal{N}(0, I) \prod_{m \in T}
        \mathcal{N}(\mu_m(x_{im}), \operatorname{diag}\sigma^2_m(x_{im})),

    and the prior when :math:`A = \emptyset`. Training maximises the average of the subset
    ELBOs, each reconstructing every present modality,

    .. math::
        \frac{1}{|\mathcal{P}(M_i)|} \sum_{T \in \mathcal{P}(M_i)}
        \mathbb{E}_{\mathrm{PoE}_T}[\log p(x_{iM_i} \mid z)]
        - \mathrm{KL}(\mathrm{PoE}_T \,\|\, \mathcal{N}(0, I)),

    estimated by drawing one subset :math:`T_i` uniformly per observation and step, one
    reparameterised :math:`z`, and the analytic KL (Sutter et al., 2021). ``get_latent``
    reports the mixture's moment-matched mean and sd; samples, imputation and
    ``log_likelihood`` use the mixture itself.

    Parameters
    ----------
    mdata
        Data registered with :func:`mdlprob.data.setup_mudata`.
    n_latent
        Dimension :math:`d` of the latent space.
    n_hidden
        Width of the hidden layers of every encoder and decoder.
    n_layers
        Number of hidden layers of every encoder and decoder.
    dropout
        Dropout rate in the hidden layers.

    Notes
    -----
    The mixture has :math:`2^M - 1` components for :math:`M` modalities, all evaluated at
    inference; this suits the handful of modalities of multi-omics data.

    Examples
    --------
    >>> import mdlprob
    >>> mdata = mdlprob.datasets.synthetic(200, missing={"protein": 0.3})
    >>> mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb", "clinical": "mixed"})
    >>> model = mdlprob.models.MoPoEVAE(mdata, n_latent=8)
    >>> model.train(max_epochs=2, progress_bar=False)
    >>> model.get_latent(mdata).shape
    (200, 8)

    References
    ----------
    Sutter, T. M., Daunhawer, I. & Vogt, J. E. (2021). Generalized multimodal ELBO. ICLR.
    """

    _module_cls = _MoPoEVAEModule
    default_refit_noise_steps = 300

    def __init__(self, mdata, *, n_latent: int = 16, n_hidden: int = 128, n_layers: int = 1,
                 dropout: float = 0.0, decoder: Literal["mlp", "linear"] = "mlp") -> None:
        super().__init__(mdata, n_latent=n_latent, n_hidden=n_hidden, n_layers=n_layers, dropout=dropout, decoder=decoder)


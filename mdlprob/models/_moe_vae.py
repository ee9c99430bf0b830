"""Multimodal VAE with a mixture-of-experts posterior (MMVAE)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from typing import Any, Literal

import pyro
import pyro.distributions as pdist
import torch
from pyro import poutine
from pyro.distributions.torch_distribution import TorchDistribution
from torch import Tensor
from torch.distributions import constraints

from ..base import BaseModel
from ..base._mixture import MixturePosteriorModule, mixture_log_prob
from ..base._validate import check_int, renamed
from ._registry import register_model

ESTIMATORS = ("elbo", "iwae", "dreg")


class _StratumPosterior(TorchDistribution):
    """Draws from one expert of the mixture (the stratum) and scores under the whole mixture.

    This is the stratified sampling of MMVAE written as a Pyro guide site: its
    ``log_prob`` is :math:`\\log q(z \\mid x_A)` of the mixture, its draws come from
    :math:`q_m(z \\mid x_m)`, so ``log p(x, z) - log_prob(z)`` is the stratum's log weight.
    """

    arg_constraints: dict = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, means: Tensor, variances: Tensor, weights: Tensor, stratum: int,
                 validate_args: bool | None = None) -> None:
        self.means, self.variances, self.weights, self.stratum = means, variances, weights, stratum
        super().__init__(weights.shape[:1], means.shape[-1:], validate_args=validate_args)

    def rsample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:  # noqa: B008
        mean, var = self.means[self.stratum], self.variances[self.stratum]
        return mean + var.sqrt() * torch.randn(torch.Size(sample_shape) + mean.shape, device=mean.device)

    def log_prob(self, value: Tensor) -> Tensor:
        return mixture_log_prob(value, self.means, self.variances, self.weights)


class _MoEVAEModule(MixturePosteriorModule):
    r"""Uniform mixture of the available unimodal experts, trained with stratified importance weights.

    The mixture has one component per modality plus the prior :math:`\mathcal{N}(0, I)`
    (last), which takes all the weight when no expert is available.
    """

    def __init__(self, spec: Mapping[str, Mapping[str, Any]], *, k: int = 1,
                 estimator: Literal["elbo", "iwae", "dreg"] = "dreg", **kwargs) -> None:
        super().__init__(spec, **kwargs)
        assert estimator in ESTIMATORS and k >= 1
        self.k, self.estimator = k, estimator
        # Pyro's parameter store is global: a unique name keeps two models' parameters apart.
        self._pyro_name = f"mdlprob_moe_vae_{uuid.uuid4().hex[:12]}"

    @staticmethod
    def expert_weights(available: Tensor) -> Tensor:
        """``(batch, n_modalities + 1)``: uniform over the available experts, else all on the prior."""
        w = torch.cat([available, ~available.any(-1, keepdim=True)], dim=-1).float()
        return w / w.sum(-1, keepdim=True)

    @staticmethod
    def _mixture(mu: Tensor, logvar: Tensor, available: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Component means, variances ``(n_modalities + 1, batch, n_latent)`` and weights."""
        means = torch.cat([mu, mu.new_zeros((1, *mu.shape[1:]))])
        variances = torch.cat([logvar.exp(), mu.new_ones((1, *mu.shape[1:]))])
        return means, variances, _MoEVAEModule.expert_weights(available)

    def _components(self, batch: Mapping[str, Any], use: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mu, logvar = self.encode(batch)
        return self._mixture(mu, logvar, use & batch["presence"])

    def log_weights(self, batch: Mapping[str, Any], *, kl_weight: float = 1.0,
                    z: Tensor | None = None) -> tuple[Tensor, Tensor]:
        r"""Stratified draws ``z`` ``(n_modalities, k, batch, n_latent)`` and their log weights ``(n_modalities, k, batch)``.

        :math:`w_{mk} = \log p(x_A \mid z_{mk}) + \beta\,[\log p(z_{mk}) - \log q(z_{mk} \mid x_A)]`
        with :math:`z_{mk} \sim q_m` reparameterised (or the given ``z``). With the ``dreg``
        estimator the mixture's parameters are detached inside :math:`\log q`.
        """
        mu, logvar = self.encode(batch)
        means, variances, weights = self._mixture(mu, logvar, batch["presence"])
        n_mod, n, d = mu.shape
        if z is None:
            eps = torch.randn((n_mod, self.k, n, d), device=mu.device)
            z = mu.unsqueeze(1) + (0.5 * logvar).exp().unsqueeze(1) * eps
        if self.estimator == "dreg":
            means, variances = means.detach(), variances.detach()
        log_q = mixture_log_prob(z, means, variances, weights)
        log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        flat = z.reshape(-1, n, d)
        rec = sum(self.recon_log_prob(mod, j, flat, batch) for j, mod in enumerate(self.modalities))
        return z, rec.reshape(z.shape[:-1]) + kl_weight * (log_pz - log_q)

    def _stratum_objective(self, log_w: Tensor, z: Tensor, *, own_draws: bool) -> Tensor:
        """``(n_modalities, batch)`` objective of each stratum from its ``k`` log weights."""
        if self.estimator == "elbo":
            return log_w.mean(1)
        iwae = torch.logsumexp(log_w, dim=1) - math.log(log_w.shape[1])
        if self.estimator == "iwae" or not (own_draws and z.requires_grad):
            return iwae
        # DReG: the value is the IWAE bound; decoder parameters get sum_k w_hat dw/dtheta (the
        # IWAE gradient) and, via the hook on z, the encoder gets sum_k w_hat^2 dw/dz dz/dphi.
        w_hat = torch.softmax(log_w, dim=1).detach()
        z.register_hook(lambda grad: grad * w_hat.unsqueeze(-1))
        surrogate = (w_hat * log_w).sum(1)
        return iwae.detach() + surrogate - surrogate.detach()

    def loss(self, batch: Mapping[str, Any], *, kl_weight: float = 1.0, z: Tensor | None = None) -> Tensor:
        r"""Negative stratified MMVAE objective averaged over the observations of ``batch``.

        For observation :math:`i` with available modalities :math:`A`,
        :math:`-\frac{1}{|A|} \sum_{m \in A} \mathcal{L}_m` with :math:`\mathcal{L}_m` the
        ``elbo`` (mean over ``k``), ``iwae`` or ``dreg`` (same value as ``iwae``) objective of
        the stratum's log weights (:meth:`log_weights`; ``z`` given draws
        ``(n_modalities, k, batch, n_latent)``). With ``estimator="elbo"`` and ``k=1`` this is
        exactly what :meth:`model`/:meth:`guide` optimise for the same draws.
        """
        presence = batch["presence"]
        z_used, log_w = self.log_weights(batch, kl_weight=kl_weight, z=z)
        per_stratum = self._stratum_objective(log_w, z_used, own_draws=z is None)
        per_stratum = torch.where(presence.t(), per_stratum, per_stratum.new_zeros(()))
        objective = per_stratum.sum(0) / presence.sum(-1).clamp_min(1)
        return -objective.sum() / presence.shape[0]

    def model(self, batch: Mapping[str, Any], kl_weight: float = 1.0) -> None:
        """Pyro generative model: per available modality m (a stratum), z_m ~ N(0, I) and x_A ~ p(x | z_m)."""
        pyro.module(self._pyro_name, self)
        presence = batch["presence"]
        n = presence.shape[0]
        zeros = presence.new_zeros((n, self.n_latent), dtype=torch.float32)
        scale = 1.0 / presence.sum(-1).clamp_min(1).float()
        with pyro.plate("obs", n), poutine.scale(scale=scale):
            for j, m in enumerate(self.modalities):
                with poutine.mask(mask=presence[:, j]):
                    with poutine.scale(scale=kl_weight):
                        z = pyro.sample(f"z_{m}", pdist.Normal(zeros, 1.0).to_event(1))
                    for jj, mod in enumerate(self.modalities):
                        self.likelihoods[mod].pyro_observe(
                            f"x_{m}_{mod}", self.decode(mod, z, batch), batch["x"][mod], self.observation_mask(mod, jj, batch)
                        )

    def guide(self, batch: Mapping[str, Any], kl_weight: float = 1.0) -> None:
        """Pyro guide: z_m ~ q_m(z | x_m), scored under the mixture q(z | x_A) (stratified sampling)."""
        pyro.module(self._pyro_name, self)
        presence = batch["presence"]
        means, variances, weights = self._components(batch, torch.ones_like(presence))
        scale = kl_weight / presence.sum(-1).clamp_min(1).float()
        with pyro.plate("obs", presence.shape[0]), poutine.scale(scale=scale):
            for j, m in enumerate(self.modalities):
                with poutine.mask(mask=presence[:, j]):
                    pyro.sample(f"z_{m}", _StratumPosterior(means, variances, weights, j))


@register_model(alias="moe", image_experts=True)
class MoEVAE(BaseModel):
    r"""Multimodal VAE whose posterior is a mixture of unimodal experts (MMVAE).

    Generative model, for observation :math:`i` with modalities :math:`m \in M_i` present:

    .. math::
        z_i \sim \mathcal{N}(0, I_d), \qquad
        x_{im} \mid z_i \sim p_{\theta_m}(x_{im} \mid z_i) \quad (m \in M_i),

    with each :math:`p_{\theta_m}` the registered likelihood (NaN entries are left out of it).
    Inference network, for the available modalities :math:`A = S \cap M_i` (``given`` picks
    :math:`S`):

    .. math::
        q(z_i \mid x_{iA}) = \frac{1}{|A|} \sum_{m \in A} q_m(z_i \mid x_{im}), \qquad
        q_m = \mathcal{N}(\mu_m(x_{im}), \operatorname{diag}\sigma^2_m(x_{im})),

    each expert on its own (not multiplied with the prior), and the prior when
    :math:`A = \emptyset`. Training uses stratified sampling over the experts of
    :math:`A = M_i`: for each :math:`m \in A`, :math:`z_{mk} \sim q_m`,
    :math:`k = 1..K`, reparameterised, with log weights

    .. math::
        w_{mk} = \log p(x_{iA} \mid z_{mk}) + \log p(z_{mk}) - \log q(z_{mk} \mid x_{iA}),

    every stratum reconstructing every present modality. The objective is
    :math:`\frac{1}{|A|} \sum_{m \in A} \frac{1}{K} \sum_k w_{mk}` (``elbo``) or
    :math:`\frac{1}{|A|} \sum_{m \in A} \log \frac{1}{K} \sum_k e^{w_{mk}}` (``iwae``,
    a lower bound of :math:`\log p(x_{iA})` at least as tight as ``elbo``). ``dreg`` has the
    value of ``iwae`` and the doubly reparameterised gradient (Tucker et al., 2019): with
    :math:`\hat w_{mk} = \operatorname{softmax}_k(w_{mk})` held fixed, the decoders get the
    IWAE gradient :math:`\sum_k \hat w_{mk} \nabla_\theta w_{mk}` and the encoders
    :math:`\sum_k \hat w_{mk}^2 \, \partial w_{mk} / \partial z \; \nabla_\phi z_{mk}`, the
    variational parameters inside :math:`\log q` held fixed. With ``beta`` in
    :meth:`train`, :math:`\log p(z) - \log q(z)` is scaled by :math:`\beta`.

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
    n_particles
        Importance samples :math:`K` per observation and expert (Pyro's ``num_particles``).
    k
        Deprecated name of ``n_particles`` (a ``FutureWarning``).
    estimator
        Training objective and gradient: ``elbo``, ``iwae`` or ``dreg``.

    Notes
    -----
    A step decodes :math:`|M| \cdot K` latent draws per observation for every modality.
    ``inference="svi"`` optimises the :math:`K = 1` ``elbo`` objective whatever ``n_particles`` and
    ``estimator`` are. ``get_latent`` reports the mixture's moment-matched mean and sd;
    samples, imputation and ``log_likelihood`` use the mixture itself.

    Examples
    --------
    >>> import mdlprob
    >>> from mdlprob.models._moe_vae import MoEVAE
    >>> mdata = mdlprob.datasets.synthetic(200, missing={"protein": 0.3})
    >>> mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb", "clinical": "mixed"})
    >>> model = MoEVAE(mdata, n_latent=8, n_particles=4)
    >>> model.train(max_epochs=2, progress_bar=False)
    >>> model.get_latent(mdata).shape
    (200, 8)

    References
    ----------
    Shi, Y., Siddharth, N., Paige, B. & Torr, P. H. S. (2019). Variational mixture-of-experts
    autoencoders for multi-modal deep generative models. NeurIPS.

    Tucker, G., Lawson, D., Gu, S. & Maddison, C. J. (2019). Doubly reparameterized gradient
    estimators for Monte Carlo objectives. ICLR.
    """

    _module_cls = _MoEVAEModule
    default_refit_noise_steps = 300

    def __init__(self, mdata, *, n_latent: int = 16, n_hidden: int = 128, n_layers: int = 1,
                 dropout: float = 0.0, decoder: Literal["mlp", "linear"] = "mlp", n_particles: int | None = None,
                 estimator: Literal["elbo", "iwae", "dreg"] = "dreg", k: int | None = None) -> None:
        n_particles = renamed("n_particles", n_particles, "k", k, owner="MoEVAE")
        n_particles = 1 if n_particles is None else n_particles
        check_int("n_particles", n_particles, minimum=1)
        if estimator not in ESTIMATORS:
            msg = f"Expected estimator in {ESTIMATORS}, got {estimator!r}."
            raise ValueError(msg)
        super().__init__(mdata, n_latent=n_latent, n_hidden=n_hidden, n_layers=n_layers, dropout=dropout, decoder=decoder,
                         k=n_particles, estimator=estimator)

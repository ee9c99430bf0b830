"""Torch module shared by the multimodal VAEs: per-modality experts, decoders and likelihoods."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..data._covariates import n_covariates
from ..distributions import LIKELIHOODS
from ..nn import ConvDecoder, ConvEncoder, FeatureGraphEmbedding, GaussianEncoder, TiedHead, mlp
from ._outcome import OutcomeHead


class MultimodalVAEModule(nn.Module):
    r"""Encoders, decoders and likelihoods of every registered modality (tensors only, no AnnData).

    Subclasses define how experts are aggregated (:meth:`posterior`), the training loss
    (:meth:`loss`) and the same objective as a Pyro ``model``/``guide`` pair.

    Parameters
    ----------
    spec
        Modality name to ``{"likelihood", "n_vars", "has_nan"}`` (plus ``column_types`` and
        ``n_categories`` for ``mixed``), in registry order. A modality with ``image_shape``
        ``(C, H, W)`` gets convolutional experts (:class:`~mdlprob.nn.ConvEncoder`,
        :class:`~mdlprob.nn.ConvDecoder`) and a per-pixel likelihood head; the others get MLPs.
    n_layers
        Hidden layers of every MLP encoder and decoder; 0 makes both linear.
    decoder
        ``"mlp"``, or ``"linear"``: the likelihood heads read :math:`z` directly, so each
        modality's natural parameters are affine in :math:`z` (as in LDVAE and factor models).
    covariates
        The registry's covariate entry (:func:`~mdlprob.data.setup_mudata` with ``batch_key``
        etc.), or ``None``. With covariates, batches carry ``batch["covariates"]``
        :math:`c_i` ``(batch, n_covariates)`` and the model is conditional (as scVI): every
        encoder reads :math:`[h(x_{im}), c_i]`; an MLP decoder reads :math:`[z, c_i]` and
        its likelihood heads :math:`[\mathrm{MLP}(z, c_i), c_i]`; a linear decoder's heads read
        :math:`[z, c_i]`, so covariates are fixed effects on every natural parameter; an
        image decoder reads :math:`[z, c_i]`. Without covariates the modules are exactly
        those of a model built before covariates existed.
    """

    def __init__(self, spec: Mapping[str, Mapping[str, Any]], *, n_latent: int, n_hidden: int,
                 n_layers: int, dropout: float, outcome: Mapping[str, Any] | None = None,
                 feature_graph: Mapping[str, Any] | None = None, decoder: str = "mlp",
                 covariates: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if decoder not in ("mlp", "linear"):
            msg = f"Expected decoder in ('mlp', 'linear'), got {decoder!r}."
            raise ValueError(msg)
        self.modalities = list(spec)
        self.n_latent = n_latent
        self.linear_decoder = decoder == "linear" or n_layers == 0
        #: Width of what the decoder trunk hands the likelihood heads (before covariates are joined).
        self.decoder_width = n_latent if self.linear_decoder else n_hidden
        #: Width of the covariate vector every encoder and decoder is conditioned on (0: none).
        self.n_covariates = n_covariates(covariates)
        n_cov = self.n_covariates
        self.likelihoods = nn.ModuleDict()
        self.encoders = nn.ModuleDict()
        self.decoders = nn.ModuleDict()
        for mod, s in spec.items():
            extra = {k: s[k] for k in ("column_types", "n_categories", "library") if k in s}
            shape = s.get("image_shape")
            if shape:
                decoder = ConvDecoder(n_latent + n_cov, shape)
                lik = LIKELIHOODS[s["likelihood"]](int(s["n_vars"]), decoder.out_channels, has_nan=bool(s["has_nan"]),
                                                   image_shape=tuple(shape), **extra)
                encoder = ConvEncoder(shape, lik.in_features // (shape[1] * shape[2]), n_latent, n_covariates=n_cov)
            else:
                lik = LIKELIHOODS[s["likelihood"]](int(s["n_vars"]), self.decoder_width + n_cov,
                                                   has_nan=bool(s["has_nan"]), **extra)
                encoder = GaussianEncoder(lik.in_features + n_cov, n_latent, n_hidden, n_layers, dropout=dropout)
                decoder = self._make_trunk(n_hidden, n_layers, dropout)
            self.likelihoods[mod] = lik
            self.encoders[mod] = encoder
            self.decoders[mod] = decoder
        self.library_modalities = [m for m in self.modalities if getattr(self.likelihoods[m], "library", False)]
        if self.library_modalities:
            # log library ~ N(coef . library_design, sd^2) per modality, fitted after training
            n_lib = len(self.library_modalities)
            self.register_buffer("library_coef", torch.zeros(n_lib, n_latent + 2 * n_lib + n_cov + 1))
            self.register_buffer("library_sd", torch.ones(n_lib))
            self.register_buffer("library_center", torch.zeros(n_lib))
        self.outcome = None if outcome is None else OutcomeHead(outcome, n_latent=n_latent, n_hidden=n_hidden)
        self.feature_graph = None
        if feature_graph is not None:
            self._tie_decoders(feature_graph, self._make_trunk(n_hidden, n_layers, dropout), self.decoder_width + n_cov)

    def _make_trunk(self, n_hidden: int, n_layers: int, dropout: float) -> nn.Module:
        """The shared part of a vector decoder: an MLP from :math:`z`, or nothing for a linear decoder."""
        return nn.Identity() if self.linear_decoder else mlp(self.n_latent + self.n_covariates, n_hidden, n_layers,
                                                             dropout=dropout)

    def _tie_decoders(self, graph: Mapping[str, Any], trunk: nn.Module, n_hidden: int) -> None:
        """Linked modalities share ``trunk`` and take their main head's weights from the graph embedding."""
        linked = list(graph["modalities"])
        sizes = [self.likelihoods[m].n_vars for m in linked]
        edges = torch.as_tensor(graph["edges"], dtype=torch.long).reshape(-1, 2).t()
        self.feature_graph = FeatureGraphEmbedding(sum(sizes), n_hidden, edges, torch.as_tensor(graph["sign"]),
                                                   torch.as_tensor(graph["weight"]))
        self.graph_weight = float(graph.get("strength", 1.0)) / max(1, int(graph["n_obs"]))
        start = 0
        for mod, n in zip(linked, sizes, strict=True):
            lik = self.likelihoods[mod]
            setattr(lik, lik.main_head, TiedHead(self.feature_graph, start, n))
            self.decoders[mod] = trunk
            start += n

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def covariates(self, batch: Mapping[str, Any], lead: torch.Size | tuple[int, ...]) -> Tensor:
        """The batch's covariate vectors ``(batch, n_covariates)`` broadcast to ``(*lead, n_covariates)``."""
        c = batch.get("covariates") if batch is not None else None
        if c is None:
            msg = ("This model is conditioned on covariates, but the batch has none; build batches from data "
                   "registered with the same covariates (model.tensors(mdata)).")
            raise ValueError(msg)
        return c.expand(*lead, c.shape[-1])

    def encode(self, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        """Every modality's expert, stacked: mean and log-variance ``(n_modalities, batch, n_latent)``."""
        mus, logvars = [], []
        c = self.covariates(batch, batch["presence"].shape[:1]) if self.n_covariates else None
        for mod in self.modalities:
            h = self.likelihoods[mod].encode_input(batch["x"][mod], batch["observed"][mod])
            if c is None:
                mu, logvar = self.encoders[mod](h)
            elif isinstance(self.encoders[mod], ConvEncoder):
                mu, logvar = self.encoders[mod](h, c)
            else:
                mu, logvar = self.encoders[mod](torch.cat([h, c], dim=-1))
            mus.append(mu)
            logvars.append(logvar)
        return torch.stack(mus), torch.stack(logvars)

    def decode(self, mod: str, z: Tensor, batch: Mapping[str, Any] | None = None, *,
               log_library: Tensor | None = None) -> dict[str, Tensor]:
        """Likelihood parameters of modality ``mod`` given latent ``z`` (any leading dims).

        A count modality that models library size also needs each row's log total count:
        ``log_library`` (broadcastable to ``z.shape[:-1]``), else the observed one of
        ``batch`` (rows without the modality get 0, and are never scored). With covariates,
        ``batch["covariates"]`` conditions the decoder (see the class notes).
        """
        lik = self.likelihoods[mod]
        if self.n_covariates:
            c = self.covariates(batch, z.shape[:-1])
            h = self.decoders[mod](torch.cat([z, c], dim=-1))
            if not (self.linear_decoder or isinstance(self.decoders[mod], ConvDecoder)):
                h = torch.cat([h, c], dim=-1)
        else:
            h = self.decoders[mod](z)
        if not getattr(lik, "library", False):
            return lik(h)
        if log_library is None:
            log_library = lik.log_library(batch["x"][mod])
        return lik(h, log_library=log_library.expand(z.shape[:-1]))

    def library_design(self, mod: str, z_mean: Tensor, batch: Mapping[str, Any], use: Tensor) -> Tensor:
        r"""Regressors of the log library of ``mod``: ``[z, (\log\ell_k - c_k) u_k, u_k, 1]`` ``(batch, p)``.

        ``z_mean`` is the posterior mean given ``use``; :math:`u_k` says whether the other count
        modality :math:`k` is used and present (its depth is known), :math:`c_k` centres its
        log library. The target's own columns are always 0. With covariates, their vector
        comes before the intercept (batches differ in sequencing depth).
        """
        cols, known = [z_mean], []
        for k, other in enumerate(self.library_modalities):
            j = self.modalities.index(other)
            u = (use[:, j] & batch["presence"][:, j] & (other != mod)).to(z_mean.dtype)
            cols.append(((self.likelihoods[other].log_library(batch["x"][other]) - self.library_center[k]) * u)[:, None])
            known.append(u[:, None])
        if self.n_covariates:
            known.append(self.covariates(batch, z_mean.shape[:1]))
        return torch.cat([*cols, *known, torch.ones_like(z_mean[:, :1])], dim=1)

    def sample_log_library(self, mod: str, z: Tensor, batch: Mapping[str, Any], use: Tensor) -> Tensor:
        """Draws of the log library of ``mod``, one per latent draw ``z`` ``(n_samples, batch, n_latent)``.

        The regression (see ``BaseModel._fit_library_model``) was fitted on posterior means,
        so it is applied to the mean of the draws; its residual sd carries the rest.
        """
        k = self.library_modalities.index(mod)
        loc = (self.library_design(mod, z.mean(0), batch, use) @ self.library_coef[k]).expand(z.shape[:-1])
        return loc + self.library_sd[k] * torch.randn_like(loc)

    def recon_log_prob(self, mod: str, j: int, z: Tensor, batch: Mapping[str, Any]) -> Tensor:
        """Log-density of the observed entries of modality ``mod``; zero for absent observations."""
        lp = self.likelihoods[mod].log_prob(self.decode(mod, z, batch), batch["x"][mod])
        obs = batch["observed"][mod]
        if obs is not None:
            lp = torch.where(obs, lp, lp.new_zeros(()))
        return torch.where(batch["presence"][:, j], lp.sum(-1), lp.new_zeros(()))

    def observation_mask(self, mod: str, j: int, batch: Mapping[str, Any]) -> Tensor:
        """Bool ``(batch, n_vars)``: entries of ``mod`` that enter the likelihood."""
        present = batch["presence"][:, j : j + 1]
        obs = batch["observed"][mod]
        return present.expand_as(batch["x"][mod]) if obs is None else present & obs

    def posterior(self, batch: Mapping[str, Any], use: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover
        """Mean and variance of q(z | the modalities selected by ``use`` (batch, n_modalities))."""
        raise NotImplementedError

    def posterior_moments(self, batch: Mapping[str, Any], use: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and variance ``(batch, n_latent)`` of q(z | the modalities selected by ``use``).

        Gaussian posteriors return :meth:`posterior`; mixtures override this with the
        moment-matched mean and variance of the mixture.
        """
        return self.posterior(batch, use)

    def sample_posterior(self, batch: Mapping[str, Any], use: Tensor, n_samples: int) -> Tensor:
        """Reparameterised draws ``(n_samples, batch, n_latent)`` from q(z | the modalities in ``use``)."""
        mean, var = self.posterior(batch, use)
        return mean + var.sqrt() * torch.randn((n_samples, *mean.shape), device=mean.device)

    def sample_model_posterior(self, batch: Mapping[str, Any], use: Tensor, n_samples: int,
                               n_proposals: int) -> Tensor:
        r"""Draws ``(n_samples, batch, n_latent)`` from the model's posterior :math:`p(z \mid x_S)`.

        Sampling-importance-resampling with the encoder's :math:`q(z \mid x_S)` as proposal:
        ``n_proposals`` draws :math:`z_k \sim q` get weights
        :math:`w_k \propto p(x_S \mid z_k)\, p(z) / q(z_k \mid x_S)`, from which ``n_samples`` are
        resampled with replacement. This corrects a proposal that is too wide (mixture
        posteriors keep weak single-modality components) or too narrow, at the cost of
        decoding the ``given`` modalities for every proposal.
        """
        z = self.sample_posterior(batch, use, n_proposals)
        log_w = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1) - self.posterior_log_prob(z, batch, use)
        for j, mod in enumerate(self.modalities):
            if bool(use[:, j].any()):
                log_w = log_w + torch.where(use[:, j], self.recon_log_prob(mod, j, z, batch), log_w.new_zeros(()))
        idx = torch.multinomial(torch.softmax(log_w, 0).t(), n_samples, replacement=True).t()
        return z.gather(0, idx.unsqueeze(-1).expand(n_samples, *z.shape[1:]))

    def posterior_log_prob(self, z: Tensor, batch: Mapping[str, Any], use: Tensor) -> Tensor:
        """Log-density of ``z`` ``(n_samples, batch, n_latent)`` under q(z | ``use``): ``(n_samples, batch)``."""
        mean, var = self.posterior(batch, use)
        return torch.distributions.Normal(mean, var.sqrt()).log_prob(z).sum(-1)

    def objective(self, batch: Mapping[str, Any], *, kl_weight: float = 1.0) -> Tensor:
        r"""The training loss: :meth:`loss`, plus the feature graph's and the outcome's terms if any.

        With a feature guidance graph, its negative ELBO (edge reconstruction and KL of the
        feature embeddings, see :class:`~mdlprob.nn.FeatureGraphEmbedding`) enters multiplied
        by ``feature_graph_strength`` over the number of training observations: at strength 1
        an epoch counts it about once.

        With an outcome, :math:`-\alpha\,\mathbb{E}_{q(z \mid x_{M_i})}[\log p(y_i \mid z)]` is
        added for each labelled observation (one reparameterised draw from the posterior of
        every modality it has; :math:`\alpha` = the outcome's ``weight``).
        """
        loss = self.loss(batch, kl_weight=kl_weight)
        if self.feature_graph is not None:
            loss = loss + self.graph_weight * self.feature_graph.loss()
        if self.outcome is None:
            return loss
        presence = batch["presence"]
        z = self.sample_posterior(batch, presence, 1)[0]
        return loss - self.outcome.weight * self.outcome.log_prob(z, batch["outcome"]).sum() / presence.shape[0]

    def loss(self, batch: Mapping[str, Any], *, kl_weight: float = 1.0) -> Tensor:  # pragma: no cover
        """Negative ELBO averaged over the observations of ``batch``."""
        raise NotImplementedError

"""Linear multimodal factor model with an ARD prior on the loadings (in the spirit of MOFA+)."""

from __future__ import annotations

import math
import uuid
import warnings
from collections.abc import Mapping
from typing import Any

import mudata as md
import numpy as np
import pandas as pd
import pyro
import torch
from torch import Tensor, nn

from ..base import BaseModel
from ..base._validate import check_int
from ..distributions import LIKELIHOODS
from ._poe_vae import _PoEVAEModule
from ._registry import register_model

#: Shape and rate of the Gamma prior on every ARD precision.
_ARD_A, _ARD_B = 1e-3, 1e-3
_LOG_2PI = math.log(2 * math.pi)
def _loading_head(lik: nn.Module) -> nn.Linear:
    """The likelihood's main head (:attr:`Likelihood.main_head`), which holds the loading matrix."""
    head = getattr(lik, lik.main_head, None)
    if not isinstance(head, nn.Linear):  # pragma: no cover - internal invariant
        msg = f"{type(lik).__name__}.{lik.main_head or '<no main_head>'} is not a linear loading head."
        raise AssertionError(msg)
    return head


class _FactorModelModule(_PoEVAEModule):
    r"""PoE-VAE whose decoders are linear: each likelihood head maps :math:`z` directly.

    Every decoder is the identity and each likelihood is built with ``n_hidden = n_latent``,
    so the natural parameter of modality :math:`m` is :math:`W_m z + b_m` with :math:`W_m`
    the weight of the likelihood's head(s). The ARD prior on the columns of :math:`W_m` (all
    linear heads of the likelihood, e.g. also the ZINB gate) enters the loss scaled by
    ``1 / n_obs`` per observation, so that a minibatch gives an unbiased estimate of the
    full-data MAP objective. The precisions are not free parameters: each is set to its
    exact conditional MAP given the loadings (see :meth:`ard_precision`), which is the same
    joint MAP point as optimising them, without a step size.

    With covariates the heads read :math:`[z, c]`: the columns of :math:`c` are fixed effects
    :math:`B_m c` on the natural parameter, outside the ARD prior.
    """

    def __init__(self, spec: Mapping[str, Mapping[str, Any]], *, n_obs: int, **kwargs) -> None:
        super().__init__(spec, **kwargs)
        assert n_obs >= 1
        self.n_obs = int(n_obs)
        for mod, s in spec.items():
            extra = {k: s[k] for k in ("column_types", "n_categories") if k in s}
            self.likelihoods[mod] = LIKELIHOODS[s["likelihood"]](
                int(s["n_vars"]), self.n_latent + self.n_covariates, has_nan=bool(s["has_nan"]), **extra
            )
        self.decoders = nn.ModuleDict({mod: nn.Identity() for mod in self.modalities})
        self.linear_decoder, self.decoder_width = True, self.n_latent
        self._pyro_name = f"mdlprob_factor_model_{uuid.uuid4().hex[:12]}"

    def ard_weights(self, mod: str) -> Tensor:
        """Every weight mapping :math:`z` to modality ``mod``, stacked: ``(n_rows, n_latent)`` (no covariate columns)."""
        return torch.cat([m.weight[:, : self.n_latent] for m in self.likelihoods[mod].modules()
                          if isinstance(m, nn.Linear)])

    def ard_precision(self) -> Tensor:
        r"""MAP precisions :math:`\alpha_{mk}` given the loadings, ``(n_modalities, n_latent)``.

        Maximising :math:`\log p(W_{m\cdot k} \mid \alpha) + \log p(\log\alpha)` over
        :math:`\log\alpha` gives :math:`\alpha = (D_m/2 + a) / (b + \lVert W_{m\cdot k}\rVert^2/2)`.
        """
        out = []
        for mod in self.modalities:
            w = self.ard_weights(mod)
            out.append((w.shape[0] / 2 + _ARD_A) / (_ARD_B + 0.5 * (w**2).sum(0)))
        return torch.stack(out)

    def log_prior(self) -> Tensor:
        r"""Log ARD prior of the loadings and of :math:`\log\alpha` at the MAP precisions (a scalar)."""
        total = self.ard_weights(self.modalities[0]).new_zeros(())
        for mod, alpha in zip(self.modalities, self.ard_precision(), strict=True):
            w = self.ard_weights(mod)
            log_alpha = alpha.log()
            lp_w = 0.5 * w.shape[0] * (log_alpha - _LOG_2PI) - 0.5 * alpha * (w**2).sum(0)
            # Gamma(a, b) density of alpha, times the Jacobian alpha of the log transform.
            lp_a = _ARD_A * math.log(_ARD_B) - math.lgamma(_ARD_A) + _ARD_A * log_alpha - _ARD_B * alpha
            total = total + (lp_w + lp_a).sum()
        return total

    def loss(
        self, batch: Mapping[str, Any], *, kl_weight: float = 1.0, z: Mapping[str, Tensor] | None = None
    ) -> Tensor:
        r"""Negative MVAE objective per observation minus :math:`\log p(W, \alpha) / n_{\text{obs}}`."""
        return super().loss(batch, kl_weight=kl_weight, z=z) - self.log_prior() / self.n_obs

    def model(self, batch: Mapping[str, Any], kl_weight: float = 1.0) -> None:
        """The PoE-VAE model plus a ``pyro.factor`` with the ARD log prior, scaled to the batch."""
        super().model(batch, kl_weight)
        n = batch["presence"].shape[0]
        pyro.factor("ard_prior", self.log_prior() * (n / self.n_obs))


@register_model(alias="factor")
class FactorModel(BaseModel):
    r"""Linear multimodal factor model with sparse (ARD) loadings, robust to absent modalities.

    An interpretable baseline in the spirit of MOFA+: observation :math:`i` has factors
    :math:`z_i \in \mathbb{R}^K` and each present modality :math:`m \in M_i` a likelihood
    whose natural parameter is linear in them,

    .. math::
        z_i \sim \mathcal{N}(0, I_K), \qquad
        \alpha_{mk} \sim \mathrm{Gamma}(10^{-3}, 10^{-3}), \qquad
        W_{m,gk} \sim \mathcal{N}(0, \alpha_{mk}^{-1}),

        x_{im} \mid z_i \sim p_m\big(x_{im} \mid \eta_{im}\big), \qquad
        \eta_{im} = W_m z_i + B_m c_i + b_m \quad (m \in M_i),

    with, per likelihood: Gaussian :math:`x_{img} \sim \mathcal{N}(\bar x_g + s_g \eta_{img},
    (s_g \sigma_g)^2)` (:math:`\bar x_g, s_g` the training mean and sd); NB / Poisson / ZINB
    :math:`\log \mu_{img} = \eta_{img}`; Bernoulli logits :math:`\eta_{img}`; a ``mixed``
    table column-wise the same (categorical columns: one logit row per category). The
    :math:`c_i` are the observation's covariates (``setup_mudata(..., batch_key=...)``:
    one-hot batch and categorical covariates, standardised continuous ones; none by
    default), whose effects :math:`B_m` are fixed effects without a prior, so factors
    describe variation beyond the batches. The
    automatic-relevance-determination prior switches a factor off in a modality as
    :math:`\alpha_{mk} \to \infty`. Loadings, intercepts and the precisions are fitted by
    MAP (the precisions in :math:`\log\alpha`, at their closed-form conditional optimum);
    the factors get the amortised product-of-experts posterior of :class:`PoEVAE`

    .. math::
        q(z_i \mid x_{iS}) \propto \mathcal{N}(0, I) \prod_{m \in S \cap M_i}
        \mathcal{N}(\mu_m(x_{im}), \operatorname{diag}\sigma^2_m(x_{im})),

    trained on the MVAE objective (joint plus single-modality ELBOs) plus
    :math:`\log p(W, \alpha)`, so any subset of modalities gives factors and imputes the others.

    Parameters
    ----------
    mdata
        Data registered with :func:`mdlprob.data.setup_mudata`.
    n_latent
        Number of factors :math:`K` (the latent dimension).
    n_hidden
        Width of the hidden layers of every encoder (decoders are linear).
    n_layers
        Number of hidden layers of every encoder.
    dropout
        Dropout rate in the encoders' hidden layers.
    n_factors
        Deprecated name of ``n_latent`` (a :class:`FutureWarning`; it will be removed).

    Notes
    -----
    The prior is weighted by ``1 / mdata.n_obs`` per observation in the minibatch loss, so
    ``n_obs`` is the size of ``mdata`` at construction (also with ``train(train_size<1)``).

    Examples
    --------
    >>> import mdlprob
    >>> from mdlprob.models._factor_model import FactorModel
    >>> mdata = mdlprob.datasets.synthetic(200, modalities=("rna", "protein"), missing={"protein": 0.3})
    >>> mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb"})
    >>> model = FactorModel(mdata, n_latent=5)
    >>> model.train(max_epochs=2, progress_bar=False)
    >>> model.loadings("protein").shape
    (30, 5)
    >>> model.variance_explained().shape
    (2, 5)

    References
    ----------
    Argelaguet, R. et al. (2020). MOFA+: a statistical framework for comprehensive
    integration of multi-modal single-cell data. Genome Biology.
    Wu, M. & Goodman, N. (2018). Multimodal generative models for scalable weakly-supervised
    learning. NeurIPS.
    """

    _module_cls = _FactorModelModule

    def __init__(
        self, mdata: md.MuData, *, n_latent: int = 10, n_hidden: int = 128, n_layers: int = 1, dropout: float = 0.0,
        n_factors: int | None = None,
    ) -> None:
        if n_factors is not None:
            warnings.warn("FactorModel(n_factors=...) is deprecated; pass n_latent=... (the same number of factors), "
                          "as for every mdlprob model.", FutureWarning, stacklevel=2)
            check_int("n_factors", n_factors, minimum=1)
            n_latent = n_factors
        n_obs = int(mdata.n_obs) if isinstance(mdata, md.MuData) else 1
        super().__init__(
            mdata, n_latent=n_latent, n_hidden=n_hidden, n_layers=n_layers, dropout=dropout, n_obs=max(n_obs, 1)
        )

    @property
    def factor_names(self) -> list[str]:
        """``Factor1``, ..., ``FactorK``."""
        return [f"Factor{k + 1}" for k in range(self.module.n_latent)]

    def _check_modality(self, modality: str) -> None:
        if modality not in self.modalities:
            msg = f"Expected modality to be one of the registered modalities {self.modalities}, got {modality!r}."
            raise ValueError(msg)

    @torch.no_grad()
    def loadings(self, modality: str) -> pd.DataFrame:
        """Loading matrix :math:`W_m` of ``modality``: ``(n_rows, n_factors)``, columns ``Factor1..``.

        Rows are the modality's features (``var_names``) on the scale of the natural
        parameter: log-mean for count likelihoods, logit for Bernoulli, and units of the
        feature's training sd for Gaussian features. For a ``mixed`` table, gaussian and
        bernoulli columns give one row each and a categorical column with :math:`K_j` levels
        gives :math:`K_j` rows ``"<name>=<code>"``, the loadings of each level's logit centred
        across the levels (the softmax is unchanged by a common shift). Rows are in the
        table's column order.
        """
        self._check_modality(modality)
        lik = self.module.likelihoods[modality]
        w = _loading_head(lik).weight.detach().cpu().numpy()[:, : self.module.n_latent]
        names = self.var_names_[modality]
        if lik.name != "mixed":
            return pd.DataFrame(w, index=pd.Index(names), columns=self.factor_names)
        rows: dict[int, list[tuple[str, np.ndarray]]] = {}
        n_g, n_b = lik.n_g, lik.n_b
        for i, j in enumerate(lik.idx_gaussian.tolist()):
            rows[j] = [(names[j], w[i])]
        for i, j in enumerate(lik.idx_bernoulli.tolist()):
            rows[j] = [(names[j], w[n_g + i])]
        for i, j in enumerate(lik.idx_categorical.tolist()):
            start = n_g + n_b + i * lik.k_max
            block = w[start : start + lik.n_cat[i]]
            block = block - block.mean(0)
            rows[j] = [(f"{names[j]}={c}", block[c]) for c in range(lik.n_cat[i])]
        flat = [r for j in sorted(rows) for r in rows[j]]
        return pd.DataFrame(
            np.stack([v for _, v in flat]), index=pd.Index([n for n, _ in flat]), columns=self.factor_names
        )

    @torch.no_grad()
    def _factor_means(self, tensors) -> Tensor:
        use = self._use_mask(None)
        self.module.eval()
        means = [
            self.module.posterior_moments(batch, use.expand_as(batch["presence"]))[0].cpu()
            for _, batch in self._batches(tensors, 1024)
        ]
        return torch.cat(means)

    def _natural_scale(self, mod: str, x: Tensor, observed: Tensor | None) -> tuple[Tensor, Tensor, Tensor] | None:
        """Target ``y``, entry mask and weights ``[loadings, covariate effects]`` on the natural-parameter scale, or ``None``."""
        lik = self.module.likelihoods[mod]
        w = _loading_head(lik).weight.detach().cpu()
        obs = torch.ones_like(x, dtype=torch.bool) if observed is None else observed
        if lik.is_count:
            return torch.log1p(x), obs, w
        if lik.name == "gaussian":
            return x, obs, lik.in_scale.cpu()[:, None] * w
        if lik.name == "mixed" and lik.n_g:
            g = lik.idx_gaussian.cpu()
            return x[:, g], obs[:, g], lik.in_scale.cpu()[g, None] * w[: lik.n_g]
        return None

    @torch.no_grad()
    def variance_explained(self, mdata: md.MuData | None = None, *, total: bool = False) -> pd.DataFrame | pd.Series:
        r"""Fraction of variance :math:`R^2_{mk}` of each modality explained by each factor (MOFA's).

        With :math:`y_{im}` the data of modality :math:`m` on the natural-parameter scale
        (Gaussian features: the data; count features: :math:`\log(1 + x)`; the gaussian
        columns of a ``mixed`` table), :math:`\tilde y` and :math:`\tilde z` centred over the
        observations that have :math:`m`, :math:`z` the posterior means given every modality,
        and :math:`w_{mk}` the loadings on that scale,

        .. math::
            R^2_{mk} = 1 - \frac{\sum_{i,g} (\tilde y_{img} - \tilde z_{ik} w_{mgk})^2}
            {\sum_{i,g} \tilde y_{img}^2},

        summing over non-missing entries only. Centring replaces the intercept :math:`b_m`:
        for counts :math:`\mathbb{E}\log(1+x)` and :math:`\log\mu` differ by a per-feature
        offset that is not a factor's doing. Modalities without such features (Bernoulli,
        a mixed table with no gaussian column) give NaN. :math:`R^2_{mk}` may be slightly
        negative for an unused factor. With covariates, their fixed effects :math:`B_m c_i`
        are subtracted from :math:`y_{im}` first. Nothing is written to ``mdata``.

        Parameters
        ----------
        mdata
            Data to score; default the training data.
        total
            Return instead :math:`R^2_m` of all factors together (``z W_m^T``) per modality.

        Returns
        -------
        DataFrame ``(n_modalities, n_factors)`` indexed by modality with columns
        ``Factor1..``, or with ``total`` a Series indexed by modality.
        """
        self._require_trained()
        if mdata is None and self._tensors is None:
            msg = "This model was loaded without its training data; pass mdata to variance_explained(mdata)."
            raise ValueError(msg)
        tensors = self._tensors if mdata is None else self.tensors(mdata)
        z = self._factor_means(tensors)
        per_factor = np.full((len(self.modalities), self.module.n_latent), np.nan)
        joint = np.full(len(self.modalities), np.nan)
        for j, mod in enumerate(self.modalities):
            rows = tensors.presence[:, j].cpu()
            observed = tensors.observed[mod]
            scale = self._natural_scale(
                mod, tensors.x[mod].cpu()[rows], None if observed is None else observed.cpu()[rows]
            )
            if scale is None or not rows.any():
                continue
            y, obs, w = scale
            k = self.module.n_latent
            if self.module.n_covariates:
                y = y - tensors.covariates.cpu()[rows] @ w[:, k:].T
            per_factor[j], joint[j] = _r2(y, obs.to(y.dtype), z[rows], w[:, :k])
        if total:
            return pd.Series(joint, index=pd.Index(self.modalities), name="r2")
        return pd.DataFrame(per_factor, index=pd.Index(self.modalities), columns=self.factor_names)


def _r2(y: Tensor, obs: Tensor, z: Tensor, w: Tensor) -> tuple[np.ndarray, float]:
    """Per-factor and joint R² of centred ``y`` ``(n, G)`` by ``z`` ``(n, K)`` and loadings ``w`` ``(G, K)``."""
    y, z, w = y.double(), z.double(), w.double()
    n_obs = obs.double().sum(0).clamp_min(1.0)
    y = (y - (y * obs).sum(0) / n_obs) * obs
    z = z - z.mean(0)
    ss_tot = (y**2).sum()
    cross = y.T @ z  # (G, K): sum_i y_ig z_ik over observed entries
    sq = obs.double().T @ z**2  # (G, K)
    ss_k = ss_tot - 2 * (w * cross).sum(0) + (w**2 * sq).sum(0)
    ss_joint = (((y - z @ w.T) * obs) ** 2).sum()
    return (1.0 - ss_k / ss_tot).numpy(), float(1.0 - ss_joint / ss_tot)

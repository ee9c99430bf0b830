"""Mixed-type likelihood for clinical tables: gaussian, bernoulli and categorical columns."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyro
import pyro.distributions as pdist
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._base import Likelihood, nan_mean, register_likelihood
from ._gaussian import gaussian_log_prob

_NEG = -1e9


@register_likelihood
class Mixed(Likelihood):
    r"""A table whose columns each follow their own family, independent given :math:`z`.

    .. math::
        x_j \mid z \sim
        \begin{cases}
        \mathcal{N}(m_j + s_j f_j(z), (s_j\sigma_j)^2) & j \text{ gaussian} \\
        \mathrm{Bernoulli}(\sigma(f_j(z))) & j \text{ bernoulli} \\
        \mathrm{Categorical}(\mathrm{softmax}(f_j(z))) & j \text{ categorical, codes } 0..K_j-1
        \end{cases}

    Parameters
    ----------
    column_types
        One of ``"gaussian"``, ``"bernoulli"``, ``"categorical"`` per column.
    n_categories
        Number of categories per column (ignored for non-categorical columns).
    """

    name = "mixed"
    main_head = "head"
    is_table = True
    allows_images = False
    calibratable = False

    def __init__(self, n_vars: int, n_hidden: int, *, has_nan: bool = False,
                 column_types: Sequence[str], n_categories: Sequence[int]) -> None:
        super().__init__(n_vars, n_hidden, has_nan=has_nan)
        kinds = list(column_types)
        assert len(kinds) == n_vars == len(n_categories)
        idx = {k: [j for j, t in enumerate(kinds) if t == k] for k in ("gaussian", "bernoulli", "categorical")}
        for k, v in idx.items():
            self.register_buffer(f"idx_{k}", torch.tensor(v, dtype=torch.long))
        self.n_cat = [int(n_categories[j]) for j in idx["categorical"]]
        self.k_max = max(self.n_cat, default=1)
        order = idx["gaussian"] + idx["bernoulli"] + idx["categorical"]
        self.register_buffer("inverse_order", torch.argsort(torch.tensor(order, dtype=torch.long)))
        valid = torch.full((len(self.n_cat), self.k_max), _NEG)
        for i, k in enumerate(self.n_cat):
            valid[i, :k] = 0.0
        self.register_buffer("category_offset", valid)
        self.n_g, self.n_b, self.n_c = len(idx["gaussian"]), len(idx["bernoulli"]), len(idx["categorical"])
        self.head = nn.Linear(n_hidden, self.n_g + self.n_b + self.n_c * self.k_max)
        self.log_sigma = nn.Parameter(torch.full((self.n_g,), math.log(0.5)))

    @property
    def categorical_columns(self) -> Tensor:
        return self.idx_categorical

    @property
    def in_features(self) -> int:
        return self.n_g + self.n_b + sum(self.n_cat) + (self.n_vars if self.has_nan else 0)

    def set_stats(self, x: np.ndarray) -> None:
        super().set_stats(x)
        with torch.no_grad():
            bias = self.head.bias
            bias.zero_()
            p = np.clip(nan_mean(x[:, self.idx_bernoulli.numpy()]), 1e-3, 1 - 1e-3) if self.n_b else np.zeros(0)
            bias[self.n_g:self.n_g + self.n_b] = torch.as_tensor(np.log(p / (1 - p)), dtype=torch.float32)
            for i, j in enumerate(self.idx_categorical.tolist()):
                col = x[:, j][~np.isnan(x[:, j])].astype(np.int64)
                freq = np.bincount(col, minlength=self.k_max)[: self.k_max] + 1.0
                start = self.n_g + self.n_b + i * self.k_max
                bias[start:start + self.k_max] = torch.as_tensor(np.log(freq / freq.sum()), dtype=torch.float32)

    def encode_input(self, x: Tensor, observed: Tensor | None) -> Tensor:
        obs = torch.ones_like(x) if observed is None else observed.to(x.dtype)
        g = (x[..., self.idx_gaussian] - self.in_loc[self.idx_gaussian]) / self.in_scale[self.idx_gaussian]
        parts = [g * obs[..., self.idx_gaussian], x[..., self.idx_bernoulli] * obs[..., self.idx_bernoulli]]
        for i, j in enumerate(self.idx_categorical.tolist()):
            parts.append(F.one_hot(x[..., j].long(), self.n_cat[i]).to(x.dtype) * obs[..., j, None])
        if self.has_nan:
            parts.append(obs)
        return torch.cat(parts, dim=-1)

    def forward(self, h: Tensor) -> dict[str, Tensor]:
        out = self.head(h)
        loc = out[..., : self.n_g]
        cat = out[..., self.n_g + self.n_b:].reshape(*out.shape[:-1], self.n_c, self.k_max)
        return {
            "loc": self.in_loc[self.idx_gaussian] + self.in_scale[self.idx_gaussian] * loc,
            **self.noise(),
            "logits": out[..., self.n_g:self.n_g + self.n_b],
            "cat_logits": torch.log_softmax(cat + self.category_offset, dim=-1),
        }

    def noise(self) -> dict[str, Tensor]:
        return {"log_scale": self.log_sigma + self.in_scale[self.idx_gaussian].log()}

    def _reorder(self, g: Tensor, b: Tensor, c: Tensor) -> Tensor:
        return torch.cat([g, b, c], dim=-1)[..., self.inverse_order]

    def log_prob(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        lp_g = gaussian_log_prob(x[..., self.idx_gaussian], params["loc"], params["log_scale"])
        logits = params["logits"]
        lp_b = -F.binary_cross_entropy_with_logits(logits, x[..., self.idx_bernoulli].expand_as(logits), reduction="none")
        codes = x[..., self.idx_categorical].long().unsqueeze(-1)
        lp_c = torch.gather(params["cat_logits"], -1, codes.expand(*params["cat_logits"].shape[:-1], 1)).squeeze(-1)
        return self._reorder(lp_g, lp_b, lp_c)

    def pyro_observe(self, name: str, params: dict[str, Tensor], x: Tensor, mask: Tensor) -> None:
        loc = params["loc"]
        if self.n_g:
            d = pdist.Normal(loc, params["log_scale"].exp().expand_as(loc))
            pyro.sample(f"{name}_gaussian", d.mask(mask[..., self.idx_gaussian]).to_event(1), obs=x[..., self.idx_gaussian])
        if self.n_b:
            d = pdist.Bernoulli(logits=params["logits"])
            pyro.sample(f"{name}_bernoulli", d.mask(mask[..., self.idx_bernoulli]).to_event(1), obs=x[..., self.idx_bernoulli])
        if self.n_c:
            d = pdist.Categorical(logits=params["cat_logits"])
            codes = x[..., self.idx_categorical].long()
            pyro.sample(f"{name}_categorical", d.mask(mask[..., self.idx_categorical]).to_event(1), obs=codes)

    def sample(self, params: dict[str, Tensor]) -> Tensor:
        loc = params["loc"]
        g = loc + params["log_scale"].exp() * torch.randn_like(loc)
        b = torch.bernoulli(torch.sigmoid(params["logits"]))
        cat = params["cat_logits"]
        c = (torch.distributions.Categorical(logits=cat).sample().to(loc.dtype) if self.n_c
             else cat.new_zeros(cat.shape[:-1]))  # no categorical column: an empty (..., 0) block
        return self._reorder(g, b, c)

    def mean(self, params: dict[str, Tensor]) -> Tensor:
        """Gaussian means, bernoulli probabilities and, for categorical columns, the most probable code."""
        c = params["cat_logits"].argmax(-1).to(params["loc"].dtype)
        return self._reorder(params["loc"], torch.sigmoid(params["logits"]), c)

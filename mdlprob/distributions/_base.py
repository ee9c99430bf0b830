"""The contract every per-modality likelihood follows."""

from __future__ import annotations

import math
from typing import ClassVar, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

_EPS = 1e-8


class Likelihood(nn.Module):
    """Observation model of one modality: decoder head, log-density, sampler and encoder input.

    A likelihood owns everything that depends on the data type of its modality, so that
    encoders, decoders and the product-of-experts logic only see tensors.

    Parameters
    ----------
    n_vars
        Number of features of the modality.
    n_hidden
        Width of the decoder's last hidden layer feeding :meth:`forward`.
    has_nan
        Whether some entries of a present observation may be missing; the encoder then
        receives a missingness indicator per feature next to the values.
    image_shape
        ``(C, H, W)`` when the modality is an image flattened into ``n_vars = C * H * W``
        features. The decoder then hands :meth:`forward` a feature map of ``n_hidden``
        channels at full resolution, flattened, and :meth:`make_head` returns a per-pixel
        (1x1 convolution) head instead of a dense layer.
    """

    name: ClassVar[str] = ""
    #: Indices of columns whose values are category codes (their "mean" is the mode).
    categorical_columns: Tensor | None = None
    #: Whether values must be non-negative integers.
    is_count: ClassVar[bool] = False
    #: Whether values are integers, so that predictive quantiles use the continuous extension.
    is_discrete: ClassVar[bool] = False
    #: Attribute holding the linear head of the main natural parameter (one row per feature
    #: for single-family likelihoods): a feature guidance graph replaces it by a head tied to
    #: the graph's feature embeddings, and :class:`~mdlprob.models.FactorModel` reads its
    #: loadings from it.
    main_head: ClassVar[str] = ""
    #: Closed bounds of the values (checked by :meth:`check_values`; ``inf`` for none).
    support: ClassVar[tuple[float, float]] = (-math.inf, math.inf)
    #: What valid values are, for error messages ("binary 0/1 values").
    expects: ClassVar[str] = "finite values"
    #: Whether the modality is a table of typed columns (``setup_mudata(column_types=...)``).
    is_table: ClassVar[bool] = False
    #: Whether an image modality (``uns["image_shape"]``) may use this likelihood.
    allows_images: ClassVar[bool] = True
    #: Whether predictive draws can be spread by ``calibrate_intervals`` (continuous or counts).
    calibratable: ClassVar[bool] = True

    @classmethod
    def check_values(cls, values: np.ndarray, modality: str | None = None) -> None:
        """Raise a ValueError naming ``modality`` when finite ``values`` leave :attr:`support` (or
        are not integers for an :attr:`is_discrete` likelihood). NaN (missing entries) is ignored."""
        vals = np.asarray(values, dtype=np.float64).ravel()
        vals = vals[~np.isnan(vals)]
        if not vals.size:
            return
        where = f"Modality {modality!r}" if modality is not None else "The data"
        lo, hi = cls.support
        below, above = int((vals < lo).sum()), int((vals > hi).sum())
        problem = None
        if below:
            what = "negative value(s)" if lo == 0 else f"value(s) below {lo:g}"
            problem = f"has {below} {what} (min {vals.min():.4g})"
        elif above:
            problem = f"has {above} value(s) above {hi:g} (max {vals.max():.4g})"
        elif cls.is_discrete and not np.array_equal(vals, np.round(vals)):
            problem = "has non-integer values"
        if problem is not None:
            msg = f"{where} {problem}, but likelihood {cls.name!r} needs {cls.expects}."
            raise ValueError(msg)

    @classmethod
    def to_support(cls, x: Tensor) -> Tensor:
        """``x`` clamped into :attr:`support` (e.g. predictive draws after widening)."""
        lo, hi = cls.support
        if math.isinf(lo) and math.isinf(hi):
            return x
        return x.clamp(None if math.isinf(lo) else lo, None if math.isinf(hi) else hi)

    def __init__(self, n_vars: int, n_hidden: int, *, has_nan: bool = False,
                 image_shape: tuple[int, int, int] | None = None) -> None:
        super().__init__()
        if image_shape is not None and int(np.prod(image_shape)) != n_vars:
            msg = f"Expected image_shape with C * H * W == n_vars == {n_vars}, got {tuple(image_shape)}."
            raise ValueError(msg)
        self.n_vars = n_vars
        self.n_hidden = n_hidden
        self.has_nan = has_nan
        self.image_shape = None if image_shape is None else tuple(int(v) for v in image_shape)
        self.register_buffer("in_loc", torch.zeros(n_vars))
        self.register_buffer("in_scale", torch.ones(n_vars))

    # --- statistics of the training data -------------------------------------------------
    def input_transform(self, x: Tensor) -> Tensor:
        """Elementwise transform applied before standardising the encoder input."""
        return x

    def set_stats(self, x: np.ndarray) -> None:
        """Set normalisation buffers from training values ``x`` (NaN = missing entry)."""
        t = self.input_transform(torch.as_tensor(x, dtype=torch.float32))
        loc, scale = _nan_loc_scale(t)
        self.in_loc.copy_(loc)
        self.in_scale.copy_(scale)

    # --- encoder side ----------------------------------------------------------------
    @property
    def in_features(self) -> int:
        """Width of :meth:`encode_input`'s output."""
        return self.n_vars * (2 if self.has_nan else 1)

    def encode_input(self, x: Tensor, observed: Tensor | None) -> Tensor:
        """Standardised values (missing entries at 0) plus, with NaNs, the missingness indicator."""
        h = (self.input_transform(x) - self.in_loc) / self.in_scale
        if not self.has_nan:
            return h
        obs = observed.to(h.dtype)
        return torch.cat([h * obs, obs], dim=-1)

    # --- decoder side ----------------------------------------------------------------
    def make_head(self) -> nn.Module:
        """A decoder head mapping hidden activations to one value per feature.

        A dense ``Linear(n_hidden, n_vars)`` for vector modalities; for images a 1x1
        convolution from the decoder's ``n_hidden`` channels to the image's ``C`` channels.
        """
        if self.image_shape is None:
            return nn.Linear(self.n_hidden, self.n_vars)
        return PixelHead(self.n_hidden, self.image_shape)

    def forward(self, h: Tensor) -> dict[str, Tensor]:  # pragma: no cover - abstract
        """Distribution parameters from the decoder's hidden activations ``h``."""
        raise NotImplementedError

    def noise(self) -> dict[str, Tensor]:
        """The entries of :meth:`forward`'s parameters that the likelihood holds itself (not decoded).

        These are its noise parameters (NB inverse dispersion, Gaussian/Laplace scales, Beta
        concentration), computed from its own ``nn.Parameter`` s only: ``{**decoded, **noise()}``
        rebuilds the parameters after a change of the noise without decoding again
        (:meth:`~mdlprob.base.BaseModel.refit_noise`). Empty for likelihoods without any.
        """
        return {}

    def log_prob(self, params: dict[str, Tensor], x: Tensor) -> Tensor:  # pragma: no cover
        """Elementwise log-density, shape ``(..., n_vars)``."""
        raise NotImplementedError

    def pyro_dist(self, params: dict[str, Tensor]):  # pragma: no cover - abstract
        """The same density as a Pyro distribution with elementwise batch shape."""
        raise NotImplementedError

    def pyro_observe(self, name: str, params: dict[str, Tensor], x: Tensor, mask: Tensor) -> None:
        """Pyro ``sample`` statement(s) observing ``x`` where ``mask`` (``(batch, n_vars)``) is true."""
        import pyro

        pyro.sample(name, self.pyro_dist(params).mask(mask).to_event(1), obs=x)

    def sample(self, params: dict[str, Tensor]) -> Tensor:  # pragma: no cover - abstract
        """One draw per element of the parameters' batch shape, on the data scale."""
        raise NotImplementedError

    def mean(self, params: dict[str, Tensor]) -> Tensor:  # pragma: no cover - abstract
        """Conditional mean ``E[x | z]`` on the data scale."""
        raise NotImplementedError


class PixelHead(nn.Module):
    """1x1 convolution on a flattened ``(..., n_channels * H * W)`` feature map → ``(..., C * H * W)``."""

    def __init__(self, n_channels: int, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.n_channels = n_channels
        self.image_shape = image_shape
        self.weight = nn.Parameter(torch.randn(image_shape[0], n_channels) / n_channels**0.5)
        self.bias = nn.Parameter(torch.zeros(int(np.prod(image_shape))))  # per pixel, flat like the data

    def forward(self, h: Tensor) -> Tensor:
        c, height, width = self.image_shape
        fmap = h.reshape(*h.shape[:-1], self.n_channels, height * width)
        return torch.matmul(self.weight, fmap).reshape(*h.shape[:-1], c * height * width) + self.bias


def _nan_loc_scale(t: Tensor) -> tuple[Tensor, Tensor]:
    """Per-column mean and sd ignoring NaN; sd of constant or empty columns set to 1."""
    finite = ~torch.isnan(t)
    n = finite.sum(0).clamp_min(1)
    t0 = torch.where(finite, t, torch.zeros_like(t))
    loc = t0.sum(0) / n
    var = (torch.where(finite, t - loc, torch.zeros_like(t)) ** 2).sum(0) / n
    scale = var.sqrt()
    scale = torch.where(scale > 1e-6, scale, torch.ones_like(scale))
    return loc, scale


def nan_mean(x: np.ndarray) -> np.ndarray:
    """Column means ignoring NaN (0 for an all-NaN column), without a warning."""
    finite = ~np.isnan(x)
    n = np.maximum(finite.sum(0), 1)
    return np.where(finite, x, 0.0).sum(0) / n


#: Likelihood classes by the name used in ``setup_mudata(likelihoods=...)``: the registry that
#: the data layer, the models, the CLI help and the contract test read.
LIKELIHOODS: dict[str, type[Likelihood]] = {}

_L = TypeVar("_L", bound=type)


def register_likelihood(cls: _L) -> _L:
    """Class decorator adding a :class:`Likelihood` subclass to :data:`LIKELIHOODS` under its ``name``.

    Registering is all a new likelihood needs: :func:`~mdlprob.data.setup_mudata` then accepts
    its name, validates values with its :meth:`~Likelihood.check_values`, and every model
    builds it. Run :func:`mdlprob.testing.check_likelihood` on it in its test.
    """
    if not (isinstance(cls, type) and issubclass(cls, Likelihood)) or not cls.name:
        msg = f"register_likelihood decorates Likelihood subclasses with a non-empty name, got {cls!r}."
        raise TypeError(msg)
    known = LIKELIHOODS.get(cls.name)
    if known is not None and known.__qualname__ != cls.__qualname__:
        msg = f"Likelihood name {cls.name!r} is already registered for {known.__name__}; choose another name."
        raise ValueError(msg)
    LIKELIHOODS[cls.name] = cls
    return cls


def get_likelihood(name: str) -> type[Likelihood]:
    """The registered likelihood class called ``name`` (a clear ValueError listing them otherwise)."""
    if name not in LIKELIHOODS:
        msg = f"Unknown likelihood {name!r}; expected one of {sorted(LIKELIHOODS)}."
        raise ValueError(msg)
    return LIKELIHOODS[name]

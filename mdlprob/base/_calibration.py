r"""Split-conformal widening of a model's predictive intervals, fitted on held-out observations.

A model's predictive distribution of an absent modality,
:math:`p(x_m \mid x_S) = \int p(x_m \mid z)\, q(z \mid x_S)\, dz`, is too narrow when its
decoder noise was learned from in-sample reconstructions or its encoder posteriors are too
confident: both are common on small cohorts. The fix here does not touch the model: on
observations it was not trained on, hide :math:`x_m`, draw from its predictive given the
rest, and measure how far the truth falls from the predictive median in units of the
central interval's half-width,

.. math::
    r = \frac{x - \mathrm{med}}{q_{(1+\ell)/2} - \mathrm{med}} \ (x \ge \mathrm{med}), \qquad
    r = \frac{\mathrm{med} - x}{\mathrm{med} - q_{(1-\ell)/2}} \ (x < \mathrm{med}).

The factor :math:`s` is the :math:`\lceil (n+1)\ell \rceil / n` empirical quantile of
:math:`r` over the :math:`n` held-out entries (split conformal prediction, Vovk et al. 2005,
with the model's own interval as the normalised score), pooled over the modality's features
or one per feature (e.g. per pixel of an image, whose background and tissue differ). Predictive draws are then spread
around their median by :math:`s` (:math:`s > 1` widens), so held-out central
:math:`\ell`-intervals cover :math:`\ell` of new entries exchangeable with the calibration
ones; the predictive mean is unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..distributions import LIKELIHOODS


def calibratable(likelihood: str) -> bool:
    """Whether draws of ``likelihood`` can be spread: continuous or counts (binary and mixed tables cannot)."""
    return LIKELIHOODS[likelihood].calibratable


def conformal_scale(truth: Tensor, draws: Tensor, observed: Tensor, *, level: float, discrete: bool,
                    per_feature: bool = False) -> float | list[float]:
    """The factor :math:`s` from held-out ``truth`` ``(n, p)`` and predictive ``draws`` ``(S, n, p)``.

    ``observed`` marks the entries to use. For integer data both the truth and the draws get
    the continuous extension :math:`x + U(-\\frac12, \\frac12)`, as the predictive quantiles do.
    With ``per_feature`` one factor per feature (column) is returned, from that column's
    entries; a column with too few of them for the level takes the pooled factor.
    """
    if discrete:
        draws = draws + torch.rand_like(draws) - 0.5
        truth = truth + torch.rand_like(truth) - 0.5
    ordered = draws.sort(dim=0).values
    med = interpolated_quantile(ordered, 0.5)
    lo, hi = interpolated_quantile(ordered, (1 - level) / 2), interpolated_quantile(ordered, (1 + level) / 2)
    above = truth >= med
    width = torch.where(above, hi - med, med - lo).clamp_min(1e-8)
    ratio = (truth - med).abs() / width
    pooled = _conformal_quantile(ratio[observed], level)
    if pooled is None:
        msg = "No held-out entry to calibrate on: the calibration observations must have the modality."
        raise ValueError(msg)
    if not per_feature:
        return pooled
    columns = [_conformal_quantile(ratio[:, j][observed[:, j]], level) for j in range(ratio.shape[1])]
    return [pooled if c is None else c for c in columns]


def _conformal_quantile(scores: Tensor, level: float) -> float | None:
    """The :math:`\\lceil (n+1)\\ell \\rceil`-th smallest of ``n`` scores, or ``None`` when that exceeds ``n``."""
    n = scores.numel()
    rank = math.ceil((n + 1) * level)
    if n == 0 or rank > n:
        return None
    return float(scores.sort().values[rank - 1])


def widen(draws: Tensor, scale: float | list[float], likelihood: str) -> Tensor:
    """Predictive draws ``(S, batch, p)`` spread around their median by ``scale`` (one, or one per
    feature), kept in the likelihood's support."""
    med = draws.median(dim=0, keepdim=True).values
    factor = torch.as_tensor(scale, dtype=draws.dtype, device=draws.device)
    return LIKELIHOODS[likelihood].to_support(med + factor * (draws - med))


def interpolated_quantile(sorted_draws: Tensor, q: float) -> Tensor:
    """Quantile along dim 0 of already sorted draws, linear interpolation (numpy's default)."""
    pos = q * (sorted_draws.shape[0] - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, sorted_draws.shape[0] - 1)
    frac = pos - lo
    return sorted_draws[lo] * (1.0 - frac) + sorted_draws[hi] * frac


def fit_scales(tensors, held_out: Tensor, modalities: Sequence[str], chosen: Sequence[str],
               draw: Callable[[object, str, list[str]], Tensor], discrete: Callable[[str], bool], *,
               level: float, per_feature: bool = False) -> dict[str, float | list[float]]:
    """:func:`conformal_scale` of each ``chosen`` modality on the ``held_out`` rows that have it and another one.

    ``draw(tensors, modality, others)`` returns predictive draws ``(S, n_rows, n_vars)`` of the
    modality given the others for every row of the tensors it gets: plain in-memory tensors
    are cut to the calibration rows first; graph or backed tensors are passed whole (their
    neighbourhoods and chunks need the other rows).
    """
    from ..data._tensors import MultimodalTensors

    presence = tensors.presence.cpu()
    fitted = {}
    for mod in chosen:
        j = list(modalities).index(mod)
        others = [m for m in modalities if m != mod]
        rows = held_out & presence[:, j] & presence[:, [k for k in range(len(modalities)) if k != j]].any(1)
        if not bool(rows.any()):
            continue
        idx = torch.nonzero(rows).squeeze(1)
        plain = type(tensors) is MultimodalTensors
        draws = draw(tensors.subset(idx) if plain else tensors, mod, others).cpu()
        if not plain:
            draws = draws[:, idx]
        truth = tensors.x[mod].cpu()[idx]
        observed = tensors.observed[mod]
        observed = torch.ones_like(truth, dtype=torch.bool) if observed is None else observed.cpu()[idx]
        fitted[mod] = conformal_scale(truth, draws, observed, level=level, discrete=discrete(mod),
                                      per_feature=per_feature)
    return fitted

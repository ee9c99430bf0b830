r"""The noise refit's data: posterior draws decoded once, scored again under new noise parameters.

:meth:`BaseModel.refit_noise <mdlprob.base.BaseModel.refit_noise>` fits the likelihoods' own
noise parameters with the encoders and decoders frozen. The draws
:math:`z_{ik} \sim p(z \mid x_{iM_i})` and the decoded parameters (means, gates, logits) of
those draws then do not change while the noise moves, so they are computed once for a bounded
set of rows (:func:`build_noise_cache`), and the noise is fitted by damped Newton steps that
only re-score cached parameters (:func:`noise_log_prob`, :func:`newton_fit`): elementwise work,
no network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from ..data._tensors import MultimodalTensors
from ._base_module import MultimodalVAEModule

#: Most posterior draws cached per row (more rows are preferred to more draws of the same row).
MAX_DRAWS_PER_ROW = 8
#: Largest Newton step of a noise parameter (they are all on the log scale: a factor e).
MAX_STEP = 1.0
#: Newton stops when the loss it still expects to gain (the Newton decrement) is below this fraction of the
#: loss (plus one nat per million pairs): float32 sums of many pairs resolve the loss to about 1e-7 of itself,
#: so a smaller gain is rounding. Features whose optimum is at a boundary (an NB without overdispersion,
#: theta -> infinity) keep taking steps of the full radius but promise ever less, so this ends the fit too.
TOLERANCE = 1e-6
#: Values per chunk of pairs scored at once (bounds the memory of the second derivatives).
CHUNK_VALUES = 2**20


@dataclass
class NoiseCache:
    """Decoded parameters of ``draws`` posterior draws for each of ``rows``, of the modalities with noise.

    Pairs ``(row, draw)`` are numbered row-major: pair ``p`` belongs to cached row ``p // draws``.
    """

    rows: Tensor
    draws: int
    x: dict[str, Tensor]
    keep: dict[str, Tensor]
    decoded: dict[str, dict[str, Tensor]]

    @property
    def n_pairs(self) -> int:
        return len(self.rows) * self.draws


def noise_modalities(module: MultimodalVAEModule) -> list[str]:
    """The modalities whose likelihood holds noise parameters, in registry order."""
    return [m for m in module.modalities if module.likelihoods[m].noise()]


def cache_shape(n_rows: int, width: int, budget: int) -> tuple[int, int]:
    """Rows and draws per row to cache so that ``rows * draws * width`` stays within ``budget`` values."""
    rows = max(1, min(n_rows, budget // max(width, 1)))
    draws = max(1, min(MAX_DRAWS_PER_ROW, budget // (rows * max(width, 1))))
    return rows, draws


@torch.no_grad()
def build_noise_cache(module: MultimodalVAEModule, tensors: MultimodalTensors, rows: Tensor, *, n_proposals: int,
                      budget: int, chunk_size: int, chunks: Iterable[Tensor] | None = None) -> NoiseCache:
    r"""Draw and decode the posterior of at most ``budget`` values' worth of ``rows``.

    The rows (a random subset of ``rows`` when they do not fit, sorted) each get ``draws``
    draws from the model's posterior given every modality they have, by importance resampling
    of ``n_proposals`` encoder proposals (:meth:`MultimodalVAEModule.sample_model_posterior`);
    their decoded parameters, values and likelihood masks are kept on the module's device.
    ``chunk_size`` rows are drawn at a time (the proposals' memory); ``chunks``, if given,
    wraps the row chunks (e.g. in a progress bar).
    """
    mods = noise_modalities(module)
    width = sum(module.likelihoods[m].n_vars for m in mods)
    n_rows, draws = cache_shape(len(rows), width, budget)
    if n_rows < len(rows):
        rows = rows[torch.randperm(len(rows))[:n_rows]]
    rows = rows.sort().values
    device = module.device
    x: dict[str, list[Tensor]] = {m: [] for m in mods}
    keep: dict[str, list[Tensor]] = {m: [] for m in mods}
    decoded: dict[str, dict[str, list[Tensor]]] = {m: {} for m in mods}
    parts = torch.split(rows, chunk_size)
    for idx in parts if chunks is None else chunks(parts):
        batch = tensors.batch(idx, device)
        z = module.sample_model_posterior(batch, batch["presence"], draws, n_proposals)
        for m in mods:
            j = module.modalities.index(m)
            x[m].append(batch["x"][m])
            keep[m].append(module.observation_mask(m, j, batch))
            noise = module.likelihoods[m].noise()
            for key, value in module.decode(m, z, batch).items():
                if key not in noise:  # (draws, batch, ...) -> (batch * draws, ...), row-major pairs
                    decoded[m].setdefault(key, []).append(value.transpose(0, 1).reshape(-1, *value.shape[2:]))
    return NoiseCache(rows=rows.to(device), draws=draws, x={m: torch.cat(v) for m, v in x.items()},
                      keep={m: torch.cat(v) for m, v in keep.items()},
                      decoded={m: {k: torch.cat(v) for k, v in d.items()} for m, d in decoded.items()})


def noise_log_prob(module: MultimodalVAEModule, cache: NoiseCache, pairs: Tensor) -> Tensor:
    """``(len(pairs),)`` log-densities of the cached pairs' observed entries under the current noise."""
    row = torch.div(pairs, cache.draws, rounding_mode="floor")
    total = torch.zeros(len(pairs), device=pairs.device)
    for m, entries in cache.decoded.items():
        lik = module.likelihoods[m]
        params: Mapping[str, Tensor] = {**{k: v.index_select(0, pairs) for k, v in entries.items()}, **lik.noise()}
        lp = lik.log_prob(dict(params), cache.x[m].index_select(0, row))
        total = total + torch.where(cache.keep[m].index_select(0, row), lp, lp.new_zeros(())).sum(-1)
    return total


def _derivatives(module: MultimodalVAEModule, cache: NoiseCache, params: list[Tensor]) -> tuple[Tensor, list[Tensor], list[Tensor]]:
    """Summed negative log-density of every cached pair, its gradient and its Hessian's diagonal.

    Each noise parameter element acts on the density of its own features only (or of every
    feature, for a scalar), so the loss is a sum of one-parameter terms: the gradient of the
    summed gradient is the Hessian's diagonal.
    """
    width = sum(v.shape[-1] for v in cache.x.values())
    total = torch.zeros((), device=cache.rows.device)
    grads = [torch.zeros_like(p) for p in params]
    curvs = [torch.zeros_like(p) for p in params]
    for pairs in torch.arange(cache.n_pairs, device=cache.rows.device).split(max(1, CHUNK_VALUES // max(width, 1))):
        loss = -noise_log_prob(module, cache, pairs).sum()
        g = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        g = [torch.zeros_like(p) if gi is None else gi for p, gi in zip(params, g, strict=True)]
        live = [(i, gi) for i, gi in enumerate(g) if gi.requires_grad]
        h = torch.autograd.grad(sum(gi.sum() for _, gi in live), [params[i] for i, _ in live]) if live else []
        for (i, _), hi in zip(live, h, strict=True):
            curvs[i] += hi.detach()
        for i, gi in enumerate(g):
            grads[i] += gi.detach()
        total = total + loss.detach()
    return total, grads, curvs


def newton_fit(module: MultimodalVAEModule, cache: NoiseCache, params: list[Tensor], *, max_steps: int,
               on_step=None) -> list[float]:
    r"""Minimise the cached pairs' mean negative log-density over the noise ``params`` by damped Newton.

    The loss is a sum of one-parameter terms, so every parameter element takes its own step:
    :math:`-g/h` (gradient over curvature of its term), or :math:`-\operatorname{sign}(g)\,r`
    where the curvature is not positive, clipped to its own trust radius :math:`r` (at most
    :data:`MAX_STEP`). A step that crosses the element's minimum and lands where the slope is
    steeper than before overshot (for a quadratic term, exactly when its loss rose), unless
    by a negligible amount: it is undone and that element's radius halved; any other step doubles it again. Stops after
    ``max_steps`` steps or when the decrease the next steps promise, :math:`\sum g^2/h` (over
    elements with :math:`h > 0`, else :math:`|g|\,r`), falls below :data:`TOLERANCE` times the
    loss (plus one nat per million pairs).
    Returns the mean loss per pair after each step (``on_step`` is called after each).
    """
    losses: list[float] = []
    radius = [torch.full_like(p, MAX_STEP) for p in params]
    total, grads, curvs = _derivatives(module, cache, params)
    for _ in range(max_steps):
        steps = [torch.where(h > 0, -g / h.clamp_min(1e-30), -torch.sign(g) * r).clamp(-r, r)
                 for g, h, r in zip(grads, curvs, radius, strict=True)]
        with torch.no_grad():
            for p, d in zip(params, steps, strict=True):
                p += d
        new_total, new_grads, new_curvs = _derivatives(module, cache, params)
        undone = False
        negligible = TOLERANCE * (cache.n_pairs + abs(float(total)))
        for i, (p, d) in enumerate(zip(params, steps, strict=True)):
            g, ng = grads[i], new_grads[i]
            # overshoot: crossed the minimum to a steeper slope, by more than a negligible loss (float noise)
            over = (ng * d > 0) & (ng.abs() > g.abs()) & (ng.abs() * d.abs() > negligible)
            bad = ~torch.isfinite(ng) | ~torch.isfinite(new_curvs[i]) | over
            radius[i] = torch.where(bad, radius[i] / 2, (2 * radius[i]).clamp_max(MAX_STEP))
            if bool(bad.any()):
                undone = True
                with torch.no_grad():
                    p -= torch.where(bad, d, torch.zeros_like(d))
        if undone:  # the loss where some elements stepped back: one more pass
            new_total, new_grads, new_curvs = _derivatives(module, cache, params)
        total, grads, curvs = new_total, new_grads, new_curvs
        losses.append(float(total) / cache.n_pairs)
        if on_step is not None:
            on_step()
        expected = sum(float(torch.where(h > 0, g**2 / h.clamp_min(1e-30), g.abs() * r).sum())
                       for g, h, r in zip(grads, curvs, radius, strict=True))
        if expected < TOLERANCE * (cache.n_pairs + abs(float(total))):
            break
    return losses

"""The Pyro ELBO of a module's model/guide, for checking a fused loss against it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyro import poutine
from pyro.poutine.util import site_is_subsample
from torch import Tensor
from torch.distributions import kl_divergence


def replayed_mean_field_elbo(module, batch: Mapping[str, Any], kl_weight: float = 1.0) -> tuple[Tensor, Any]:
    """Mean-field ELBO of ``module.model``/``module.guide`` for one draw of the guide.

    Traces the guide, replays the model on its latent draws, and sums the observed (and
    ``pyro.factor``) log-densities minus ``kl_weight`` times the analytic KL of every latent
    site, masks included: what ``TraceMeanField_ELBO`` estimates. Returns the ELBO (summed over
    the batch) and the guide trace, whose values a fused loss can be evaluated at.
    """
    guide = poutine.trace(module.guide).get_trace(batch, kl_weight)
    model = poutine.trace(poutine.replay(module.model, trace=guide)).get_trace(batch, kl_weight)
    elbo = 0.0
    for name, site in model.nodes.items():
        if site["type"] != "sample" or site_is_subsample(site):
            continue
        if site["is_observed"]:
            elbo = elbo + site["fn"].log_prob(site["value"]).sum()
        else:
            q = guide.nodes[name]
            kl = kl_divergence(q["fn"].base_dist, site["fn"].base_dist).sum(-1)
            if q["mask"] is not None:
                kl = kl * q["mask"]
            elbo = elbo - kl_weight * kl.sum()
    return elbo, guide

"""The contract every registered likelihood passes."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pyro import poutine

from ..distributions import LIKELIHOODS, Likelihood


def check_likelihood(lik_cls: type[Likelihood], *, n_vars: int = 5, n_hidden: int = 8, n_draws: int = 20_000,
                     **init_kwargs: Any) -> None:
    """Assert that ``lik_cls`` honours the likelihood contract.

    Data are drawn from the likelihood itself (random decoder activations through its head),
    then: it is registered under its ``name``; draws lie in its :attr:`~Likelihood.support`
    and pass its :meth:`~Likelihood.check_values`, integer draws for a discrete one; values
    outside the support are refused with a message naming the modality; ``set_stats``
    accepts them with NaN entries; :meth:`~Likelihood.log_prob` is finite, elementwise, broadcasts over leading sample
    dimensions, and
    equals the log-density of the Pyro statements of :meth:`~Likelihood.pyro_observe` on the
    masked entries, with rows lacking the modality filled with 0 (as models pass them); the mean of many draws matches :meth:`~Likelihood.mean` (categorical
    columns excepted: their "mean" is the mode); the main head is linear (FactorModel reads
    its loadings there); :meth:`~Likelihood.to_support` keeps values in the support;
    ``in_features`` matches :meth:`~Likelihood.encode_input`, which is finite on those rows too.
    """
    assert LIKELIHOODS.get(lik_cls.name) is lik_cls, f"{lik_cls.__name__} is not registered under {lik_cls.name!r}"
    gen = torch.Generator().manual_seed(0)
    lik = lik_cls(n_vars, n_hidden, **init_kwargs)
    with torch.no_grad():
        x = lik.sample(lik(torch.randn(64, n_hidden, generator=gen)))
    assert x.shape == (64, n_vars), f"sample gave shape {tuple(x.shape)}, expected (64, {n_vars})"
    lo, hi = lik_cls.support
    assert ((x >= lo) & (x <= hi)).all(), f"draws leave the support {lik_cls.support}"
    if lik_cls.is_discrete:
        assert torch.equal(x, x.round()), "a discrete likelihood drew non-integer values"
    lik_cls.check_values(x.numpy(), "m")
    if np.isfinite(lo) or np.isfinite(hi):
        outside = x.numpy().copy()
        outside[0, 0] = lo - 1 if np.isfinite(lo) else hi + 1
        try:
            lik_cls.check_values(outside, "m")
        except ValueError as err:
            assert "'m'" in str(err) and repr(lik_cls.name) in str(err), f"unclear support error: {err}"
        else:
            msg = f"{lik_cls.__name__}.check_values accepted a value outside its support {lik_cls.support}"
            raise AssertionError(msg)
    with_nan = x.numpy().astype(np.float64)
    with_nan[1, 0] = np.nan
    lik.set_stats(with_nan)
    assert torch.isfinite(lik.in_loc).all() and torch.isfinite(lik.in_scale).all()

    h = torch.randn(64, n_hidden, generator=gen)
    params = lik(h)
    absent = torch.arange(64) % 4 == 0  # rows lacking the modality hold 0, masked out of the density
    x = torch.where(absent[:, None], torch.zeros_like(x), x)
    mask = (torch.rand(x.shape, generator=gen) < 0.7) & ~absent[:, None]
    lp = lik.log_prob(params, x)
    assert lp.shape == x.shape, f"log_prob gave shape {tuple(lp.shape)}, expected {tuple(x.shape)}"
    assert torch.isfinite(lp).all(), "log_prob is not finite (also on the 0 that rows lacking the modality hold)"
    stacked_h = torch.randn(3, 64, n_hidden, generator=gen)
    stacked = lik.log_prob(lik(stacked_h), x)
    assert stacked.shape == (3, *x.shape), "log_prob does not broadcast over leading sample dimensions"
    for k in range(3):
        torch.testing.assert_close(stacked[k], lik.log_prob(lik(stacked_h[k]), x))
    trace = poutine.trace(lambda: lik.pyro_observe("x", params, x, mask)).get_trace()
    trace.compute_log_prob()
    pyro_lp = sum(site["log_prob_sum"] for site in trace.nodes.values() if site["type"] == "sample")
    torch.testing.assert_close(pyro_lp, lp[mask].sum(), rtol=1e-4, atol=1e-3,
                               msg=lambda m: f"log_prob disagrees with pyro_observe on the masked entries: {m}")

    with torch.no_grad():
        one = lik(h[:1].expand(n_draws, n_hidden))
        draws, mean = lik.sample(one), lik.mean(one)[0]
    keep = torch.ones(n_vars, dtype=torch.bool)
    if lik.categorical_columns is not None:
        keep[lik.categorical_columns] = False
    spread = draws.std(0)[keep] / n_draws**0.5
    assert ((draws.mean(0)[keep] - mean[keep]).abs() <= 6 * spread + 1e-3).all(), "draws do not average to mean()"

    head = getattr(lik, lik_cls.main_head, None) if lik_cls.main_head else None
    assert isinstance(head, torch.nn.Linear), f"main_head {lik_cls.main_head!r} is not a linear head"
    wide = torch.linspace(-1e3, 1e3, 11)
    clamped = lik_cls.to_support(wide)
    assert ((clamped >= lo) & (clamped <= hi)).all(), "to_support leaves the support"
    observed = torch.ones_like(x, dtype=torch.bool) if lik.has_nan else None
    encoded = lik.encode_input(x, observed)
    assert encoded.shape == (64, lik.in_features), "in_features disagrees with encode_input"
    assert torch.isfinite(encoded).all(), "encode_input is not finite (also on the 0 of rows lacking the modality)"

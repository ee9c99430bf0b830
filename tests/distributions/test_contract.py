"""Every registered likelihood passes ``check_likelihood``; registering is all a new one needs."""

from __future__ import annotations

import pytest

from mdlprob.distributions import LIKELIHOODS, get_likelihood, register_likelihood
from mdlprob.testing import check_likelihood


def _init_kwargs(cls) -> dict:
    """A table likelihood needs its column types; one column of each type."""
    if cls.is_table:
        return {"n_vars": 4, "column_types": ["gaussian", "bernoulli", "categorical", "gaussian"],
                "n_categories": [0, 0, 3, 0]}
    return {}


@pytest.mark.parametrize("name", sorted(LIKELIHOODS))
def test_every_registered_likelihood_passes_the_contract(name):
    cls = LIKELIHOODS[name]
    check_likelihood(cls, **_init_kwargs(cls))


def test_registry_lookup_and_registration_errors():
    assert get_likelihood("nb") is LIKELIHOODS["nb"]
    assert {n for n, c in LIKELIHOODS.items() if c.is_count} == {"nb", "zinb", "poisson"}
    with pytest.raises(ValueError, match="Unknown likelihood 'negbin'; expected one of"):
        get_likelihood("negbin")
    with pytest.raises(TypeError, match="Likelihood subclasses"):
        register_likelihood(dict)
    with pytest.raises(ValueError, match="'nb' is already registered for NegativeBinomial"):
        register_likelihood(type("Other", (LIKELIHOODS["poisson"],), {"name": "nb"}))


def test_a_broken_likelihood_fails_the_contract():
    broken = type("Shifted", (LIKELIHOODS["gaussian"],), {"name": "test_shifted",
                                                          "log_prob": lambda self, p, x: super(broken, self).log_prob(p, x) + 1.0})
    register_likelihood(broken)
    try:
        with pytest.raises(AssertionError, match="log_prob disagrees with pyro_observe"):
            check_likelihood(broken)
    finally:
        LIKELIHOODS.pop("test_shifted")

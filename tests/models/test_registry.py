"""The model registry drives the contract: every registered model passes ``check_model``."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import mdlprob
from mdlprob.base import BaseModel
from mdlprob.models import all_models, get_model, register_model
from mdlprob.testing import check_model

SMALL = {"n_latent": 4, "n_hidden": 16}


@pytest.mark.parametrize("name", list(all_models()))
def test_every_registered_model_passes_the_model_contract(mdata, name):
    """check_model over the registry.

    Its masked-value checks assume a posterior depends on the observation's own data only.
    With neighbours that is false by design (an observation lacking rna gets an rna expert
    from its neighbours, whose values check_model changes), so a model on a sample graph runs
    the contract on an edgeless graph; the graph analogue of those checks is
    ``test_graph_poe_vae.py::test_hidden_values_move_no_posterior_anywhere``.
    """
    info = all_models()[name]
    kwargs = dict(SMALL)
    if info.sample_graph:
        mdata.obsp["empty"] = sp.csr_matrix((mdata.n_obs, mdata.n_obs), dtype=np.float32)
        kwargs["graph_key"] = "empty"
    check_model(info.cls, mdata, **kwargs)


def test_every_public_model_class_is_registered():
    public = {n for n in mdlprob.models.__all__ if isinstance(getattr(mdlprob.models, n), type)
              and issubclass(getattr(mdlprob.models, n), BaseModel)}
    assert public == set(all_models())
    assert set(mdlprob._MODELS) == set(all_models())  # the lazy top-level names


def test_lookup_by_name_or_alias_and_clear_errors():
    assert get_model("poe").cls is mdlprob.models.PoEVAE is get_model("PoEVAE").cls
    assert get_model("GraphPoEVAE").sample_graph and not get_model("PoEVAE").sample_graph
    assert len({info.alias for info in all_models().values()}) == len(all_models())
    with pytest.raises(ValueError, match=r"registered model name or alias .*poe \(PoEVAE\).*got 'vae'"):
        get_model("vae")
    with pytest.raises(TypeError, match="BaseModel subclasses"):
        register_model(alias="x")(dict)
    with pytest.raises(ValueError, match="alias 'poe' is already registered for PoEVAE"):
        register_model(alias="poe")(type("Other", (BaseModel,), {}))


def test_the_benchmark_suites_and_docs_read_the_registry():
    from mdlprob.benchmark import METHODS, load_suite

    assert set(all_models()) <= set(METHODS)
    for suite in ("quick", "full"):
        assert set(all_models()) <= {m["name"] for m in load_suite(suite).methods}
    models_doc = (__import__("pathlib").Path(__file__).parents[2] / "docs" / "developing.md").read_text()
    for name in all_models():
        assert f"`{name}`" in models_doc, f"docs/developing.md does not list {name}"

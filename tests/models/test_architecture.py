"""Linear decoders (``decoder="linear"``) and fully linear experts (``n_layers=0``) in every model."""

from __future__ import annotations

import pytest
from torch import nn

import mdlprob
from mdlprob.testing import check_model

MODELS = ["PoEVAE", "MoPoEVAE", "MoEVAE"]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("kwargs", [{"decoder": "linear"}, {"n_layers": 0}], ids=["linear_decoder", "linear_everything"])
def test_linear_variants_keep_the_model_contract(name, kwargs, mdata):
    cls = getattr(mdlprob.models, name)
    check_model(cls, mdata, n_latent=4, n_hidden=16, **kwargs)
    model = cls(mdata, n_latent=4, n_hidden=16, **kwargs)
    assert all(isinstance(d, nn.Identity) for d in model.module.decoders.values())
    for lik in model.module.likelihoods.values():
        heads = [m for m in lik.modules() if isinstance(m, nn.Linear)]
        assert heads and all(h.in_features == 4 for h in heads)  # heads read z directly
    encoders_linear = all(len(e.body) == 0 for e in model.module.encoders.values())
    assert encoders_linear == (kwargs.get("n_layers") == 0)


def test_unknown_decoder_is_refused(mdata):
    with pytest.raises(ValueError, match=r"Expected decoder in \('mlp', 'linear'\), got 'conv'"):
        mdlprob.PoEVAE(mdata, decoder="conv")
    with pytest.raises(ValueError, match="n_layers to be an int >= 0"):
        mdlprob.PoEVAE(mdata, n_layers=-1)

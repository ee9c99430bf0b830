"""On synthetic data, expected gains rank modalities as built and agree with realised gains (slow: trains models)."""

from __future__ import annotations

import numpy as np
import pytest

import mdlprob
from mdlprob.interpret import gain_agreement, realised_information_gain
from tests.conftest import LIKELIHOODS

pytestmark = pytest.mark.slow


def _held_out_gains(n_vars: dict[str, int]) -> dict[str, object]:
    data = mdlprob.datasets.synthetic(1800, missing={"protein": 0.3, "clinical": 0.3}, n_vars=n_vars, seed=0)
    mdlprob.data.setup_mudata(data, likelihoods=LIKELIHOODS)
    train, test = mdlprob.data.subset(data, np.arange(1500)), mdlprob.data.subset(data, np.arange(1500, 1800))
    model = mdlprob.PoEVAE(train, n_latent=6, n_hidden=64)
    model.train(max_epochs=100, progress_bar=False)
    return {m: gain_agreement(realised_information_gain(model, test, m, n_samples=10)).loc["latent_entropy_gain"]
            for m in ("rna", "protein", "clinical")}


# How much a view tells about z is set by construction (datasets/_synthetic.py): per latent dimension the
# Fisher information is about 0.3 per gene (NB, mean ~3, theta ~4.5, half the loadings 0 and the rest
# sd 0.6), 0.8 per protein (mean ~33, theta ~7.4, loadings sd 0.5) and about 2 for the whole clinical table.
@pytest.mark.parametrize(
    ("n_vars", "truth"),
    [
        ({"rna": 200, "protein": 30}, ["rna", "protein", "clinical"]),  # ~60 > ~23 > ~2
        ({"rna": 12, "protein": 60}, ["protein", "rna", "clinical"]),  # ~46 > ~4 > ~2
    ],
)
def test_expected_gain_ranks_modalities_as_built_and_tracks_the_realised_gain(n_vars, truth):
    gains = _held_out_gains(n_vars)
    ranked = sorted(gains, key=lambda m: -gains[m]["mean_expected"])
    assert ranked == truth
    for mod, row in gains.items():
        assert row["spearman_rho"] >= 0.5, (mod, row)
        assert row["mean_expected"] == pytest.approx(row["mean_realised"], rel=0.15), (mod, row)

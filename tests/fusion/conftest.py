"""Shared data of the fusion tests: synthetic MuData as ``X``/``presence`` dicts and splits."""

from __future__ import annotations

import numpy as np
import pytest
from sksurv.util import Surv

import mdlprob
from mdlprob.fusion import fusion_inputs

LIKELIHOODS = {"rna": "nb", "protein": "nb", "clinical": "mixed"}


def subset(d: dict, rows: np.ndarray) -> dict:
    return {k: v[rows] for k, v in d.items()}


@pytest.fixture(scope="module")
def data():
    """300 observations, protein absent for 30%; 200 train / 100 test."""
    mdata = mdlprob.datasets.synthetic(300, missing={"protein": 0.3}, n_vars={"rna": 60, "protein": 15}, seed=0)
    mdlprob.data.setup_mudata(mdata, likelihoods=LIKELIHOODS)
    X, presence = fusion_inputs(mdata)
    obs = mdata.obs
    y_surv = Surv.from_arrays(obs["event"].to_numpy().astype(bool), obs["time"].to_numpy())
    order = np.random.default_rng(0).permutation(mdata.n_obs)
    return {"mdata": mdata, "X": X, "presence": presence, "label": obs["label"].to_numpy(),
            "surv": y_surv, "train": order[:200], "test": order[200:]}

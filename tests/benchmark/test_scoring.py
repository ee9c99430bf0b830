"""Classification scores with bootstrap intervals used by the evidence scripts."""

from __future__ import annotations

import numpy as np

from mdlprob.benchmark import bootstrap_classification


def test_bootstrap_intervals_bracket_the_point_estimate():
    rng = np.random.default_rng(0)
    y = rng.integers(3, size=60)
    out = bootstrap_classification(y, np.eye(3)[y], np.random.default_rng(1), n_boot=200)
    assert out["accuracy"] == out["accuracy_lo"] == out["accuracy_hi"] == 1.0
    assert out["ece"] < 1e-9
    noisy = rng.dirichlet(np.ones(3), size=60)
    out = bootstrap_classification(y, noisy, np.random.default_rng(1), n_boot=200)
    assert out["accuracy_lo"] <= out["accuracy"] <= out["accuracy_hi"]
    assert out["macro_f1_lo"] <= out["macro_f1"] <= out["macro_f1_hi"]
    assert out["accuracy_lo"] < out["accuracy_hi"]

"""prior_scale="auto": one prior scale per feature group, learned by maximising the ELBO."""

from __future__ import annotations

import numpy as np
import pytest
from sksurv.util import Surv

from mdlprob.heads import ClassifierHead, CoxPHHead, LogisticHazardHead, WeibullAFTHead


def _data(n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    y = Surv.from_arrays(rng.random(n) < 0.8, rng.exponential(np.exp(-0.8 * X[:, 0])))
    return X, y, (X[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(int)


@pytest.mark.parametrize("cls", [CoxPHHead, WeibullAFTHead, LogisticHazardHead, ClassifierHead])
def test_a_group_without_signal_is_shrunk(cls):
    X, y_surv, y_cls = _data()
    head = cls(prior_scale="auto", max_epochs=300, random_state=0)
    head.fit(X, y_cls if cls is ClassifierHead else y_surv, feature_groups=["signal"] + ["noise"] * 5)
    noise, signal = head.prior_scale_  # groups in sorted order
    assert noise < 0.3 * signal, head.prior_scale_


def test_a_fixed_prior_learns_no_scale_and_groups_are_checked():
    X, y, _ = _data(100)
    head = CoxPHHead(prior_scale=1.0, max_epochs=20).fit(X, y)
    assert not hasattr(head, "prior_scale_")
    with pytest.raises(ValueError, match=r"one group label per feature \(6\), got shape \(2,\)"):
        CoxPHHead(prior_scale="auto", max_epochs=5).fit(X, y, feature_groups=["a", "b"])
    with pytest.raises(ValueError, match="prior_scale"):
        CoxPHHead(prior_scale="large").fit(X, y)

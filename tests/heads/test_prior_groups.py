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
    head = cls(prior_scale="eb", max_epochs=300, random_state=0)
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


def test_auto_picks_a_multiplier_of_the_empirical_bayes_scales_by_cross_validation():
    X, y_surv, y_cls = _data(300, seed=1)
    groups = ["signal"] + ["noise"] * 5
    eb = ClassifierHead(prior_scale="eb", max_epochs=300, random_state=0).fit(X, y_cls, feature_groups=groups)
    auto = ClassifierHead(prior_scale="auto", max_epochs=300, random_state=0).fit(X, y_cls, feature_groups=groups)
    from mdlprob.heads._base import CV_MULTIPLIERS

    assert auto.prior_multiplier_ in CV_MULTIPLIERS and auto.prior_cv_scores_.shape == (len(CV_MULTIPLIERS),)
    np.testing.assert_allclose(auto.prior_scale_ / auto.prior_multiplier_, eb.prior_scale_, rtol=1e-6)
    assert auto.prior_scale == "auto"  # the parameter is untouched (scikit-learn convention)
    cox = CoxPHHead(prior_scale="auto", max_epochs=100, random_state=0).fit(X, y_surv, feature_groups=groups)
    assert np.isfinite(cox.prior_cv_scores_).all() and 0.5 < cox.score(X, y_surv)


def test_a_dict_fixes_one_scale_per_group():
    X, y, _ = _data(200)
    head = CoxPHHead(prior_scale={"signal": 2.0, "noise": 0.01}, max_epochs=200, random_state=0)
    head.fit(X, y, feature_groups=["signal"] + ["noise"] * 5)
    np.testing.assert_allclose(head.prior_scale_, [0.01, 2.0])
    assert np.abs(head.coef_[1:]).max() < 0.05 < abs(head.coef_[0])
    with pytest.raises(ValueError, match=r"gives no scale for the feature groups \['signal'\]"):
        CoxPHHead(prior_scale={"noise": 1.0}, max_epochs=5).fit(X, y, feature_groups=["signal"] + ["noise"] * 5)
    with pytest.raises(ValueError, match=r"prior_scale\['noise'\]"):
        CoxPHHead(prior_scale={"noise": -1.0}, max_epochs=5).fit(X, y)

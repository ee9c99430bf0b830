"""mdlprob.pl: every figure draws what it says from real model outputs, into a new Figure or a given Axes."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from sksurv.util import Surv

import mdlprob
from mdlprob.datasets import hidden_truth


@pytest.fixture(scope="module")
def imputed():
    mdlprob.settings.seed = 0
    mdata = mdlprob.datasets.synthetic(200, missing={"protein": 0.4}, n_vars={"rna": 30, "protein": 8}, seed=2)
    mdlprob.data.setup_mudata(mdata, likelihoods={"rna": "nb", "protein": "nb", "clinical": "mixed"})
    model = mdlprob.PoEVAE(mdata, n_latent=4, n_hidden=16)
    model.train(max_epochs=40, batch_size=64, lr=3e-3, train_size=0.8, progress_bar=False)
    imp = model.impute(mdata, "protein", n_samples=60, quantiles=(0.05, 0.25, 0.5, 0.75, 0.95))
    truth, hidden = hidden_truth(mdata, "protein")
    return model, mdata, imp, truth, hidden


def test_imputation_colours_points_by_coverage(imputed, tmp_path):
    _, _, imp, truth, hidden = imputed
    fig = mdlprob.pl.imputation(truth, imp, mask=hidden, path=tmp_path / "imp.png")
    assert isinstance(fig, Figure) and (tmp_path / "imp.png").stat().st_size > 1000
    ax = fig.axes[0]
    inside, outside = (len(c.get_offsets()) for c in ax.collections[-2:])
    g = list(imp.var_names).index(ax.get_title().split(":")[0])
    assert inside + outside == int(hidden[:, g].sum())
    with pytest.raises(ValueError, match="no layer for quantile 0.1"):
        mdlprob.pl.imputation(truth, imp, mask=hidden, level=0.8)


def test_calibration_points_are_the_coverages(imputed):
    _, _, imp, truth, hidden = imputed
    fig = mdlprob.pl.calibration(truth, imp, mask=hidden)
    nominal, empirical = fig.axes[0].lines[1].get_data()
    np.testing.assert_allclose(nominal, [0.9, 0.5])
    cov90 = mdlprob.metrics.interval_coverage(truth, imp.layers["q05"], imp.layers["q95"], mask=hidden, discrete=True)
    assert empirical[0] == pytest.approx(cov90, abs=0.02)
    assert empirical[0] > empirical[1]


def test_history_marks_the_kept_epoch(imputed):
    model = imputed[0]
    fig = mdlprob.pl.history(model)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels[:2] == ["training", "validation"]
    with pytest.raises(ValueError, match="trained model or its history_"):
        mdlprob.pl.history({})


def test_survival_draws_a_curve_and_band_per_group(imputed):
    model, mdata, *_ = imputed
    y = Surv.from_arrays(mdata.obs["event"].to_numpy().astype(bool), mdata.obs["time"].to_numpy())
    head = mdlprob.heads.LatentHead(model, mdlprob.heads.CoxPHHead(prior_scale=1.0, max_epochs=100), n_samples=5,
                                    modality_latents=False, random_state=0).fit(mdata, y)
    times = np.linspace(0, np.percentile(y["time"], 90), 30)
    surv, lo, hi = head.predict_survival_function(mdata, times, return_interval=True)
    groups = np.where(model.tensors(mdata).presence[:, 1].numpy(), "protein measured", "protein missing")
    fig = mdlprob.pl.survival(times, surv, lo, hi, groups=groups, observed=(y["time"], y["event"]))
    ax = fig.axes[0]
    assert len(ax.collections) == 2  # one band per group
    assert {t.get_text().split(" (")[0] for t in ax.get_legend().get_texts()} == {
        "Kaplan–Meier", "protein measured", "protein missing"}
    assert ax.get_xlim()[1] == pytest.approx(y["time"].max())

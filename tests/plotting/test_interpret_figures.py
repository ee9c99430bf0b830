"""Figures of mdlprob.interpret: per-observation acquisition value, modality Shapley bars, cost curve."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import mdlprob
from mdlprob.interpret import Contributions, acquisition_table, expected_information_gain


def _contributions() -> Contributions:
    subsets = pd.DataFrame({"n_modalities": [0, 1, 1, 2], "cost": [0.0, 1.0, 3.0, 4.0],
                            "value": [0.5, 0.6, 0.7, 0.75], "lower": [0.45, 0.55, 0.62, 0.7],
                            "upper": [0.55, 0.66, 0.77, 0.8]}, index=["none", "rna", "mri", "rna+mri"])
    shapley = pd.DataFrame({"value": [0.075, 0.175], "lower": [0.02, 0.1], "upper": [0.12, 0.25]},
                           index=pd.Index(["rna", "mri"], name="modality"))
    return Contributions(subsets=subsets, shapley=shapley, metric="c_index", level=0.9)


def test_shapley_bars_carry_values_and_intervals(tmp_path):
    fig = mdlprob.pl.shapley(_contributions(), path=tmp_path / "s.png")
    assert isinstance(fig, Figure) and (tmp_path / "s.png").stat().st_size > 1000
    bars = fig.axes[0].patches
    assert sorted(b.get_width() for b in bars) == pytest.approx([0.075, 0.175])
    assert "c_index" in fig.axes[0].get_xlabel()


def test_cost_curve_joins_the_best_subset_of_each_size(tmp_path):
    fig = mdlprob.pl.cost_curve(_contributions(), path=tmp_path / "c.png")
    line = fig.axes[0].lines[0]
    np.testing.assert_allclose(line.get_ydata(), [0.5, 0.7, 0.75])
    fig = mdlprob.pl.cost_curve(_contributions(), x="cost")
    np.testing.assert_allclose(fig.axes[0].lines[0].get_xdata(), [0.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="x to be 'n_modalities' or 'cost'"):
        mdlprob.pl.cost_curve(_contributions(), x="price")
    with pytest.raises(ValueError, match="result of mdlprob.interpret.modality_contributions"):
        mdlprob.pl.shapley(object())


def test_acquisition_value_shows_the_best_observations_first(trained, mdata, tmp_path):
    gains = expected_information_gain(trained, mdata, "protein", n_samples=2)
    fig = mdlprob.pl.acquisition_value(gains, top=5, path=tmp_path / "a.png")
    widths = [b.get_width() for b in fig.axes[0].patches if b.get_width()]
    assert widths == pytest.approx(sorted(gains["latent_entropy_gain"], reverse=True)[:5])
    table = acquisition_table(trained, mdata, n_samples=2)
    fig = mdlprob.pl.acquisition_value(table, top=3)
    assert len(fig.axes[0].get_yticklabels()) == 3 and "protein" in fig.axes[0].get_yticklabels()[0].get_text()
    with pytest.raises(ValueError, match="Expected by to be one of"):
        mdlprob.pl.acquisition_value(gains, by="decision_change")

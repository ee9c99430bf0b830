"""One colour per method: fixed for the package's methods, independent of what else a figure shows."""

from __future__ import annotations

import matplotlib.colors as mcolors
import pandas as pd
import pytest

from mdlprob.benchmark import COLUMNS, METHODS, register_peers, write_report
from mdlprob.benchmark import _report as report
from mdlprob.plotting import METHOD_COLORS, method_color, method_colors
from mdlprob.plotting._palette import _SPARE


def test_every_benchmark_method_has_its_own_fixed_colour(monkeypatch):
    monkeypatch.setattr("mdlprob.benchmark._methods.METHODS", dict(METHODS))  # register_peers adds to a copy
    register_peers()
    from mdlprob.benchmark._methods import METHODS as with_peers

    names = [m for m in with_peers if not m.startswith("test_")]
    assert {"mofa", "totalvi"} <= set(names) and set(names) <= set(METHOD_COLORS), "a method has no fixed colour"
    colours = [method_color(m) for m in names]
    assert len(set(colours)) == len(colours)
    assert not set(_SPARE) & set(METHOD_COLORS.values())


def test_colour_depends_on_the_name_only():
    assert method_colors(["MoEVAE", "PoEVAE"])["PoEVAE"] == method_colors(["PoEVAE"])["PoEVAE"] == "#1f77b4"
    assert method_color("poe") == method_color("poe_vae") == METHOD_COLORS["PoEVAE"]
    assert method_color("knn") == METHOD_COLORS["knn_imputer"]
    other = method_color("my new method")
    assert other in _SPARE and other == method_color("my new method")
    assert all(mcolors.is_color_like(c) for c in METHOD_COLORS.values())
    many = method_colors([f"variant {i}" for i in range(len(_SPARE))])
    assert len(set(many.values())) == len(_SPARE)  # names outside the fixed list still differ within a figure
    with pytest.raises(TypeError, match="Expected `method` to be a method name"):
        method_color(3)


def test_report_figures_draw_each_method_in_its_colour(tmp_path, monkeypatch):
    rows = []
    for method in ("PoEVAE", "feature_mean"):
        for rate in (0.2, 0.5):
            row = dict.fromkeys(COLUMNS, "")
            row.update(cell=f"{method}-{rate}", dataset="synthetic", scenario="mcar", rate=rate, method=method, seed=0,
                       metric="pearson", value=0.5, status="ok", wall_s=1.0)
            rows.append(row)
    pd.DataFrame(rows, columns=COLUMNS).to_csv(tmp_path / "results.csv", index=False)
    figures = []
    monkeypatch.setattr(report, "_savefig", lambda fig, path: figures.append(fig))
    write_report(tmp_path)
    drawn = {c.get_label(): mcolors.to_hex(c.lines[0].get_color()) for ax in figures[0].axes for c in ax.containers}
    assert drawn == {
        "PoEVAE": METHOD_COLORS["PoEVAE"], "feature_mean": METHOD_COLORS["feature_mean"]}

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from mdlprob.datasets import hidden_truth, synthetic_scans
from mdlprob.plotting import scan_panel

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def scans():
    m = synthetic_scans(12, size=32, missing={"t2": 0.3}, seed=0)
    shape = tuple(m["t1"].uns["image_shape"])
    t2, hidden = hidden_truth(m, "t2")
    t1 = np.full((m.n_obs, 32 * 32), np.nan, dtype=np.float32)  # NaN rows: subjects without T1
    rows = np.asarray(m.obsmap["t1"]) > 0
    t1[rows] = m["t1"].X[np.asarray(m.obsmap["t1"])[rows] - 1]
    rng = np.random.default_rng(0)
    mean = np.clip(t2 + 0.05 * rng.standard_normal(t2.shape), 0, 1)
    sd = np.full_like(t2, 0.05)
    return {"t1": t1}, mean, sd, t2, shape, hidden


def _png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_scan_panel_writes_a_png_with_one_panel_per_view(scans, tmp_path):
    import matplotlib.pyplot as plt

    observed, mean, sd, truth, shape, _ = scans
    open_before = plt.get_fignums()
    path = tmp_path / "out" / "panel.png"
    fig = scan_panel(observed, mean, sd, truth, image_shape=shape, n_subjects=3, label="t2", path=path)
    assert isinstance(fig, Figure)
    assert plt.get_fignums() == open_before  # pyplot's state untouched
    assert path.stat().st_size > 1000
    width, height = _png_size(path)
    assert (width, height) == tuple(round(v * fig.dpi) for v in fig.get_size_inches())
    assert [p.name for p in path.parent.iterdir()] == ["panel.png"]  # no temporary left behind
    images = [ax for ax in fig.axes if ax.get_images()]
    # rows x (t1, mean, sd, truth, error); colour bars hold no images
    titles = [ax.get_title() for ax in images if ax.get_title()]
    assert titles == ["t1", "t2 mean", "t2 sd", "true t2", "|error|"]
    assert len(images) + sum(t.get_text() == "absent" for ax in fig.axes for t in ax.texts) == 3 * 5
    err = next(ax for ax in images if ax.get_title() == "|error|").get_images()[0].get_array()
    np.testing.assert_allclose(err, np.abs(mean[0] - truth[0]).reshape(32, 32), atol=1e-6)


def test_scan_panel_marks_absent_scans_and_runs_without_truth(scans):
    observed, mean, sd, _, shape, _ = scans
    observed = {"t1": observed["t1"].copy()}
    observed["t1"][1] = np.nan
    fig = scan_panel(observed, torch.as_tensor(mean), sd, image_shape=shape, n_subjects=2)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert texts == ["absent"]
    assert [ax.get_title() for ax in fig.axes if ax.get_title()] == ["t1", "imputed mean", "imputed sd"]
    assert len(fig.axes) == 2 * 3 + 1  # panels plus the sd colour bar
    fig = scan_panel(None, mean, sd, image_shape=shape, n_subjects=50)
    assert sum(bool(ax.get_images()) for ax in fig.axes) == 2 * mean.shape[0]


def test_scan_panel_rgb_and_4d_inputs():
    rng = np.random.default_rng(0)
    mean = rng.random((3, 3, 8, 8))
    fig = scan_panel(None, mean, 0.1 * mean, mean + 0.1, image_shape=(3, 8, 8), n_subjects=2)
    rgb = fig.axes[0].get_images()[0].get_array()
    assert rgb.shape == (8, 8, 3)


def test_scan_panel_errors(scans, tmp_path):
    observed, mean, sd, truth, shape, _ = scans
    with pytest.raises(ValueError, match="image_shape"):
        scan_panel(observed, mean, sd, image_shape=(2, 32, 32))
    with pytest.raises(ValueError, match="`imputed_sd` must hold one scan of 1024 pixels"):
        scan_panel(observed, mean, sd[:, :100], image_shape=shape)
    with pytest.raises(ValueError, match=r"`observed\['t1'\]` must have one row per row"):
        scan_panel({"t1": observed["t1"][:3]}, mean, sd, image_shape=shape)
    with pytest.raises(ValueError, match="n_subjects"):
        scan_panel(observed, mean, sd, image_shape=shape, n_subjects=0)
    assert not any(tmp_path.iterdir())

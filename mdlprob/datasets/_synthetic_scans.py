"""Synthetic brain-like MRI phantoms: several sequences of one anatomy, with known ground truth."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

from ..data._mudata import make_mudata
from ._synthetic import _presence

#: Tissue intensities of each known sequence (before the per-scan gain and bias field).
CONTRASTS: dict[str, dict[str, float]] = {
    "t1": {"scalp": 0.80, "csf": 0.10, "gm": 0.45, "wm": 0.72, "lesion": 0.28},
    "t2": {"scalp": 0.35, "csf": 0.95, "gm": 0.55, "wm": 0.38, "lesion": 0.82},
    "flair": {"scalp": 0.30, "csf": 0.06, "gm": 0.52, "wm": 0.40, "lesion": 0.95},
    "pd": {"scalp": 0.60, "csf": 0.78, "gm": 0.68, "wm": 0.55, "lesion": 0.80},
}
#: Meaning of the columns of ``obsm["z_true"]``.
LATENT_NAMES = ("head_size", "head_aspect", "rotation", "shift_x", "shift_y", "atrophy", "lesion_propensity")
#: ``obs["label"]`` is "low" below the first lesion-load threshold, "high" above the second.
LOAD_THRESHOLDS = (0.004, 0.0125)
LABELS = ("low", "moderate", "high")
MIN_SIZE, MAX_SIZE = 28, 128
MAX_LESIONS = 15
_NOISE_SD = 0.02
_CHUNK = 256  # subjects rendered at once, to bound memory for large n_obs
# Radii of the nested structures in head-normalised coordinates (the head is the unit disk).
_BRAIN, _CORTEX, _WHITE = 0.86, 0.83, 0.66


def synthetic_scans(
    n_obs: int,
    *,
    sequences: Sequence[str] = ("t1", "t2", "flair"),
    size: int = 64,
    missing: Mapping[str, float] | None = None,
    seed: int = 0,
) -> md.MuData:
    r"""Brain-like 2-D MRI phantoms of one anatomy per subject, imaged with several sequences.

    Each subject has a latent :math:`z_i \sim \mathcal{N}(0, I_7)` (columns
    :data:`LATENT_NAMES`) setting the head's size, aspect, rotation and position, and the
    ventricles' size (atrophy). The anatomy is nested ellipses: scalp, sulcal CSF, gray
    matter, white matter and two lateral ventricles, with partial-volume edges. Lesions
    number :math:`\min(\mathrm{Poisson}(e^{0.6 + 0.8 z_{i7}}), 15)`, with random positions
    in the white matter and random radii. A sequence maps tissues to intensities
    (:data:`CONTRASTS`: T1 bright white matter and dark lesions, T2 bright CSF and lesions,
    FLAIR bright lesions and dark CSF, PD flat), times a per-scan gain and linear bias field;
    the image is smoothed (Gaussian, :math:`\sigma = 0.5 \cdot \text{size}/64` pixels),
    gets Gaussian noise (sd 0.02) and is clipped to [0, 1], so the background holds exact
    zeros.

    Parameters
    ----------
    n_obs
        Number of subjects.
    sequences
        Distinct names from ``("t1", "t2", "flair", "pd")``; each becomes one modality.
    size
        Image height and width in pixels, in ``[28, 128]``.
    missing
        Sequence to the fraction of subjects that lack it (MCAR). A subject never loses all
        its sequences: one of them is given back at random.
    seed
        Seed of the generator; the same seed gives the same data.

    Returns
    -------
    MuData (outer join) with one modality per sequence, named after it: ``X`` float32
    ``(n, size * size)`` in [0, 1], the channel-first flattening of ``(1, size, size)``
    images; ``uns["image_shape"]`` the int64 array ``[1, size, size]`` (an array so that
    the MuData can be written to ``.h5mu``: use ``tuple(uns["image_shape"])``).
    Global ``obs``: ``label`` (categorical :data:`LABELS`, lesion load cut at
    :data:`LOAD_THRESHOLDS`), ``lesion_load`` (lesion area over brain area), ``n_lesions``,
    and Weibull survival ``time``/``event`` whose risk rises with lesion load and atrophy.
    ``obsm["z_true"]`` holds the latent. As in :func:`synthetic`, ``uns["truth"][sequence]``
    holds ``values`` (every image before hiding) and ``mean`` (the noise-free image); use
    :func:`hidden_truth` to get the hidden scans.

    Raises
    ------
    ValueError
        On ``n_obs < 2``, unknown or repeated sequences, a size outside ``[28, 128]`` or a
        missing rate outside ``[0, 1)``.

    Examples
    --------
    >>> from mdlprob.datasets import hidden_truth, synthetic_scans
    >>> m = synthetic_scans(50, size=32, missing={"flair": 0.4})
    >>> m["t1"].uns["image_shape"].tolist(), m["flair"].n_obs
    ([1, 32, 32], 30)
    >>> values, hidden = hidden_truth(m, "flair")
    >>> values.shape, int(hidden.all(1).sum())
    ((50, 1024), 20)
    """
    seqs = _check_args(n_obs, sequences, size, missing)
    missing = dict(missing or {})
    rng = np.random.default_rng(seed)
    n = int(n_obs)
    z = rng.standard_normal((n, len(LATENT_NAMES))).astype(np.float32)
    means = {s: np.empty((n, size * size), dtype=np.float32) for s in seqs}
    load = np.empty(n)
    n_lesions = np.minimum(rng.poisson(np.exp(0.6 + 0.8 * z[:, 6])), MAX_LESIONS)
    for start in range(0, n, _CHUNK):
        rows = slice(start, min(start + _CHUNK, n))
        tissues = _anatomy(z[rows], n_lesions[rows], size, rng)
        load[rows] = tissues["lesion"].sum((1, 2)) / tissues["brain"].sum((1, 2))
        for s in seqs:
            means[s][rows] = _image(tissues, CONTRASTS[s], size, rng).reshape(-1, size * size)
    truth = {}
    for s in seqs:
        noisy = means[s] + _NOISE_SD * rng.standard_normal(means[s].shape, dtype=np.float32)
        truth[s] = {"values": np.clip(noisy, 0.0, 1.0), "mean": means[s]}
    present = _presence(n, seqs, missing, rng)
    obs_names = pd.Index([f"subject{i}" for i in range(n)])
    mods = {s: _modality(truth[s]["values"], present[:, j], obs_names, s, size) for j, s in enumerate(seqs)}
    mdata = make_mudata(mods, obs_order=obs_names)
    mdata.obs["label"] = pd.Categorical.from_codes(np.searchsorted(LOAD_THRESHOLDS, load), categories=list(LABELS))
    mdata.obs["lesion_load"] = load
    mdata.obs["n_lesions"] = n_lesions.astype(np.int64)
    mdata.obs["time"], mdata.obs["event"] = _survival(load, z[:, 5], rng)
    mdata.obsm["z_true"] = z
    mdata.uns["truth"] = truth
    return mdata


def _modality(values: np.ndarray, present: np.ndarray, obs_names: pd.Index, name: str, size: int) -> ad.AnnData:
    var = pd.DataFrame(index=[f"{name}_px{j}" for j in range(size * size)])
    return ad.AnnData(values[present].copy(), obs=pd.DataFrame(index=obs_names[present]), var=var,
                      uns={"image_shape": np.array([1, size, size], dtype=np.int64)})


def _check_args(n_obs, sequences, size, missing) -> list[str]:
    if isinstance(n_obs, bool) or not isinstance(n_obs, (int, np.integer)) or n_obs < 2:
        msg = f"Expected n_obs to be an int >= 2, got {n_obs!r}."
        raise ValueError(msg)
    seqs = [sequences] if isinstance(sequences, str) else list(sequences)
    if not seqs or any(s not in CONTRASTS for s in seqs) or len(set(seqs)) != len(seqs):
        msg = f"Expected sequences to be distinct names from {tuple(CONTRASTS)}, got {sequences!r}."
        raise ValueError(msg)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        msg = f"Expected size to be an int in [{MIN_SIZE}, {MAX_SIZE}] (pixels per side), got {size!r}."
        raise ValueError(msg)
    for s, rate in dict(missing or {}).items():
        if s not in seqs or not 0.0 <= rate < 1.0:
            msg = f"missing[{s!r}] must name one of {seqs} with a rate in [0, 1), got {rate!r}."
            raise ValueError(msg)
    return seqs


def _anatomy(z: np.ndarray, n_lesions: np.ndarray, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Partial-volume fractions ``(n, size, size)`` of each tissue, plus the brain mask."""
    zc = np.clip(z, -2.5, 2.5)[:, :, None, None]
    a = 0.68 * (1.0 + 0.04 * zc[:, 0])  # horizontal semi-axis of the head
    b = a * (1.15 + 0.03 * zc[:, 1])
    theta = 0.1 * zc[:, 2]
    grid = -1.0 + (np.arange(size, dtype=np.float32) + 0.5) * np.float32(2.0 / size)
    x = grid[None, None, :] - 0.03 * zc[:, 3]
    y = grid[None, :, None] - 0.03 * zc[:, 4]
    cos, sin = np.cos(theta), np.sin(theta)
    p = (x * cos + y * sin) / a  # head-normalised coordinates: the head is the unit disk
    q = (-x * sin + y * cos) / b
    px = np.minimum(a, b) * (size / 2.0)  # pixels per head-normalised unit (on the short axis)
    r = np.sqrt(p**2 + q**2)

    def disk(radius):  # concentric disks share r; the edge is a one-pixel linear ramp
        return np.clip(0.5 + (radius - r) * px, 0.0, 1.0)

    def ellipse(rows, pc, qc, ra, rb):
        d = np.sqrt(((p[rows] - pc) / ra) ** 2 + ((q[rows] - qc) / rb) ** 2)
        return np.clip(0.5 + (1.0 - d) * np.minimum(ra, rb) * px[rows], 0.0, 1.0)

    head, brain, cortex, white = (disk(radius) for radius in (1.0, _BRAIN, _CORTEX, _WHITE))
    everyone = slice(None)
    vs = 0.15 + 0.03 * zc[:, 5]
    vent = np.maximum(ellipse(everyone, -(0.05 + 0.6 * vs), -0.05, 0.55 * vs, 1.6 * vs),
                      ellipse(everyone, 0.05 + 0.6 * vs, -0.05, 0.55 * vs, 1.6 * vs))
    white_matter = white * (1.0 - vent)
    blobs = np.zeros_like(head)
    for k in range(int(n_lesions.max(initial=0))):
        rows = np.flatnonzero(n_lesions > k)  # only subjects with a k-th lesion are drawn
        shape = (len(rows), 1, 1)
        radius = np.sqrt(rng.uniform(0.25**2, 0.6**2, shape)).astype(np.float32)
        angle = rng.uniform(0.0, 2 * np.pi, shape).astype(np.float32)
        width = rng.uniform(0.03, 0.08, shape).astype(np.float32)
        blob = ellipse(rows, radius * np.cos(angle), radius * np.sin(angle), width, width)
        blobs[rows] = np.maximum(blobs[rows], blob)
    lesion = blobs * white_matter
    return {"scalp": head - brain, "csf": brain - cortex + white * vent, "gm": cortex - white,
            "wm": white_matter - lesion, "lesion": lesion, "brain": brain}


def _image(tissues: dict[str, np.ndarray], contrast: dict[str, float], size: int,
           rng: np.random.Generator) -> np.ndarray:
    """Noise-free image ``(n, size, size)`` of one sequence, smoothed and clipped to [0, 1]."""
    n = tissues["brain"].shape[0]
    img = sum(tissues[t] * v for t, v in contrast.items())
    grid = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    gain = 1.0 + 0.03 * rng.standard_normal((n, 1, 1), dtype=np.float32)
    slope = 0.05 * rng.standard_normal((n, 2, 1, 1), dtype=np.float32)
    field = gain + slope[:, 0] * grid[None, None, :] + slope[:, 1] * grid[None, :, None]
    smooth = gaussian_filter(img * field, sigma=(0.0, 0.5 * size / 64, 0.5 * size / 64))
    return np.clip(smooth, 0.0, 1.0)


def _survival(load: np.ndarray, atrophy: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Weibull event times with risk rising in log lesion load and atrophy; uniform censoring."""
    n = len(load)
    risk = 0.8 * (np.log(load + 0.005) + 4.3) + 0.4 * np.clip(atrophy, -2.5, 2.5)
    t_event = 10.0 * (-np.log(rng.random(n)) / np.exp(risk)) ** (1.0 / 1.5)
    t_censor = rng.uniform(0.0, np.quantile(t_event, 0.9), n)
    return np.minimum(t_event, t_censor), (t_event <= t_censor).astype(np.int64)

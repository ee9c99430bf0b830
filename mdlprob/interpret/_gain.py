"""Expected value of measuring a view an observation lacks, and its check against the realised value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mudata as md
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ..base._base_model import DRAW_BUDGET
from ..base._validate import check_int
from ..data import hide_modality, subset
from ._augment import augmented, presence
from ._targets import Summary, check_model, check_target, summarise

#: Per-observation quantities, each a reduction (before minus after) except the decision change.
QUANTITIES = ("latent_entropy_gain", "interval_width_gain", "decision_change")


def _check(model: Any, mdata: md.MuData, modality: str, target: Any, n_samples: int) -> Any:
    if not isinstance(mdata, md.MuData):
        msg = f"Expected mdata to be a mudata.MuData, got {type(mdata).__name__}."
        raise TypeError(msg)
    check_model(model)
    if modality not in model.modalities:
        msg = f"Expected modality to be one of the model's modalities {model.modalities}, got {modality!r}."
        raise ValueError(msg)
    check_int("n_samples", n_samples, minimum=2)
    return check_target(model, target)


def _positions(mdata: md.MuData, eligible: np.ndarray, obs: Sequence[str] | None, what: str) -> np.ndarray:
    """Positions of the eligible observations, or of ``obs`` (which must all be eligible)."""
    if obs is None:
        return np.flatnonzero(eligible)
    names = pd.Index([str(o) for o in obs])
    pos = mdata.obs_names.get_indexer(names)
    if (pos < 0).any():
        msg = f"obs names {list(names[pos < 0][:5])} are not observations of mdata."
        raise KeyError(msg)
    if not eligible[pos].all():
        msg = f"obs must name observations that {what}; {list(names[~eligible[pos]][:5])} do not."
        raise ValueError(msg)
    return np.sort(pos)


def _threshold(before: Summary, risk_threshold: float | None) -> float | None:
    """The risk above which an observation is in the high-risk group: given, else the cohort's median."""
    if before.score is None or before.score.ndim == 2:
        return None
    return float(np.median(before.score)) if risk_threshold is None else float(risk_threshold)


def _after_draws(model: Any, mdata: md.MuData, modality: str, positions: np.ndarray, target: Any,
                 n_samples: int) -> list[Summary]:
    """Summaries ``(n_samples, len(positions))`` with ``modality`` drawn from the predictive, chunk by chunk."""
    width = sum(len(v) for v in model.var_names_.values())
    chunk = max(1, DRAW_BUDGET // (n_samples * width))
    parts = []
    for start in range(0, len(positions), chunk):
        part = subset(mdata, positions[start : start + chunk])
        draws = model.sample_predictive(part, modality, n_samples=n_samples)
        after = summarise(model, augmented(model, part, modality, draws), target, n_samples=n_samples)
        parts.append(after)
    return parts


def _expected(model: Any, mdata: md.MuData, modality: str, positions: np.ndarray, target: Any, n_samples: int,
              before: Summary, threshold: float | None) -> pd.DataFrame:
    columns: dict[str, np.ndarray] = {"latent_entropy": before.entropy[positions]}
    gains, widths, changes = [], [], []
    start = 0
    for after in _after_draws(model, mdata, modality, positions, target, n_samples):
        n = len(after.entropy) // n_samples
        rows = positions[start : start + n]
        start += n
        gains.append(before.entropy[rows] - after.entropy.reshape(n_samples, n).mean(0))
        if after.width is not None:
            widths.append(before.width[rows] - after.width.reshape(n_samples, n).mean(0))
            decided = after.decision(threshold).reshape(n_samples, n)
            changes.append((decided != before.decision(threshold)[rows]).mean(0))
    columns["latent_entropy_gain"] = np.concatenate(gains) if gains else np.zeros(0)
    if before.width is not None:
        columns["interval_width"] = before.width[positions]
        columns["interval_width_gain"] = np.concatenate(widths) if widths else np.zeros(0)
        columns["decision_change"] = np.concatenate(changes) if changes else np.zeros(0)
    return pd.DataFrame(columns, index=mdata.obs_names[positions].copy())


def expected_information_gain(model: Any, mdata: md.MuData, modality: str, *, target: Any = "latent",
                              n_samples: int = 20, obs: Sequence[str] | None = None,
                              risk_threshold: float | None = None) -> pd.DataFrame:
    r"""Expected value of measuring ``modality`` for each observation that lacks it.

    For observation :math:`i` with views :math:`x_{iS}` and missing view :math:`m`, draws
    :math:`x_m^{(s)} \sim p(x_m \mid x_{iS})` from the model's posterior predictive
    (``model.sample_predictive``), adds each as if measured, recomputes the latent posterior
    (and the head's prediction) and reports

    .. math::
        \Delta H_i = H[q(z \mid x_{iS})] - \frac1S \sum_s H[q(z \mid x_{iS}, x_m^{(s)})],

    the expected reduction of the latent posterior's entropy (nats; the Gaussian
    :math:`\tfrac12\log\det 2\pi e\Sigma`), and with a head the expected reduction of the
    width of its predictive interval (the risk's, or the class probabilities' averaged over
    classes) and the probability :math:`\frac1S\sum_s \mathbb{1}[d(x_{iS}, x_m^{(s)}) \ne
    d(x_{iS})]` that the decision :math:`d` changes: the predicted class, or the risk group
    (risk above ``risk_threshold``). The expected entropy reduction is the mutual
    information :math:`I(z; x_m \mid x_{iS})` when the posterior is exact and Gaussian.
    Which observations lack ``modality`` is read from the registered presence masks.

    Parameters
    ----------
    model
        A trained mdlprob model.
    mdata
        Observations registered like the model's data.
    modality
        The view whose acquisition is valued.
    target
        ``"latent"``: the latent posterior only. A fitted :class:`~mdlprob.heads.LatentHead`
        on ``model``, or a head fitted on ``model``'s latent draws: also its prediction.
    n_samples
        Predictive draws of the view per observation (each costs one posterior and one
        prediction); a bare head also gets that many latent draws.
    obs
        Names of the observations to value (all must lack ``modality``); default all that do.
    risk_threshold
        Survival heads: the risk above which an observation is high risk; default the
        median predicted risk over ``mdata``.

    Returns
    -------
    DataFrame indexed by the names of the observations lacking ``modality``: ``latent_entropy``
    (now) and ``latent_entropy_gain``; with a head also ``interval_width`` (now),
    ``interval_width_gain`` and ``decision_change`` (a probability). ``attrs`` records the
    modality, ``n_samples`` and the risk threshold.
    """
    target = _check(model, mdata, modality, target, n_samples)
    j = model.modalities.index(modality)
    positions = _positions(mdata, ~presence(model, mdata)[:, j], obs, f"lack {modality!r}")
    before = summarise(model, mdata, target, n_samples=n_samples)
    threshold = _threshold(before, risk_threshold)
    out = _expected(model, mdata, modality, positions, target, n_samples, before, threshold)
    out.attrs.update({"modality": modality, "n_samples": n_samples, "risk_threshold": threshold})
    return out


def realised_information_gain(model: Any, mdata: md.MuData, modality: str, *, target: Any = "latent",
                              n_samples: int = 20, obs: Sequence[str] | None = None,
                              risk_threshold: float | None = None) -> pd.DataFrame:
    r"""Expected against realised value of ``modality`` on observations that have it.

    ``modality`` is hidden (:func:`mdlprob.data.hide_modality`) for the observations that
    have it and another view (or for ``obs``), its expected value computed as in
    :func:`expected_information_gain`, then it is revealed: the realised gain is the
    entropy (interval width) with the view hidden minus that with the measured view, and
    the realised decision change whether the decision with the measured view differs from
    the one without it. Use held-out observations, not the training ones.

    Returns
    -------
    DataFrame indexed by the valued observations with ``expected_<q>`` and ``realised_<q>``
    for each quantity ``q`` of :func:`expected_information_gain` (``latent_entropy_gain``
    and, with a head, ``interval_width_gain`` and ``decision_change``). Summarise it with
    :func:`gain_agreement`.
    """
    target = _check(model, mdata, modality, target, n_samples)
    have = presence(model, mdata)
    j = model.modalities.index(modality)
    eligible = have[:, j] & (have.sum(1) > 1)
    positions = _positions(mdata, eligible, obs, f"have {modality!r} and another view")
    if not len(positions):
        msg = f"No observation of mdata has {modality!r} and another view to hide it from."
        raise ValueError(msg)
    hide = np.zeros(mdata.n_obs, dtype=bool)
    hide[positions] = True
    hidden = hide_modality(mdata, modality, hide)
    before = summarise(model, hidden, target, n_samples=n_samples)
    threshold = _threshold(before, risk_threshold)
    expected = _expected(model, hidden, modality, positions, target, n_samples, before, threshold)
    revealed = summarise(model, subset(mdata, positions), target, n_samples=n_samples)
    out = pd.DataFrame(index=expected.index)
    out["expected_latent_entropy_gain"] = expected["latent_entropy_gain"]
    out["realised_latent_entropy_gain"] = before.entropy[positions] - revealed.entropy
    if before.width is not None:
        out["expected_interval_width_gain"] = expected["interval_width_gain"]
        out["realised_interval_width_gain"] = before.width[positions] - revealed.width
        out["expected_decision_change"] = expected["decision_change"]
        out["realised_decision_change"] = (revealed.decision(threshold)
                                           != before.decision(threshold)[positions]).astype(np.float64)
    out.attrs.update({"modality": modality, "n_samples": n_samples, "risk_threshold": threshold})
    return out


def gain_agreement(frame: pd.DataFrame) -> pd.DataFrame:
    """Spearman ρ and means of expected against realised gains (the output of :func:`realised_information_gain`).

    Returns
    -------
    DataFrame indexed by quantity with ``spearman_rho`` (NaN when either side is constant),
    ``mean_expected``, ``mean_realised`` and ``n_obs``.
    """
    rows = {}
    for q in QUANTITIES:
        e, r = f"expected_{q}", f"realised_{q}"
        if e not in frame or r not in frame:
            continue
        x, y = frame[e].to_numpy(dtype=float), frame[r].to_numpy(dtype=float)
        constant = len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0
        rho = np.nan if constant else float(spearmanr(x, y).statistic)
        rows[q] = {"spearman_rho": rho, "mean_expected": float(x.mean()) if len(x) else np.nan,
                   "mean_realised": float(y.mean()) if len(y) else np.nan, "n_obs": len(x)}
    if not rows:
        msg = "Expected the output of realised_information_gain (expected_<q> and realised_<q> columns)."
        raise ValueError(msg)
    return pd.DataFrame.from_dict(rows, orient="index")

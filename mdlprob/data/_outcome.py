"""An outcome (label or survival) read from ``mdata.obs`` for joint, semi-supervised training.

An observation whose outcome is missing (NaN / None in ``obs``) is unlabelled: it still
trains the representation through its modalities, and it is exactly what the trained
model predicts the outcome for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

OUTCOME_TYPES = ("categorical", "coxph", "logistic_hazard")
_DEFAULT_BINS = 10


def check_outcome(mdata, outcome: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``setup_mudata(..., outcome=...)`` and return its registry entry."""
    if not isinstance(outcome, Mapping) or "type" not in outcome:
        msg = ("Expected outcome to be a dict with a 'type': {'key': 'subtype', 'type': 'categorical'} or "
               f"{{'time_key': 'time', 'event_key': 'event', 'type': 'coxph' | 'logistic_hazard'}}, got {outcome!r}.")
        raise ValueError(msg)
    kind = outcome["type"]
    if kind not in OUTCOME_TYPES:
        msg = f"Unknown outcome type {kind!r}; expected one of {OUTCOME_TYPES}."
        raise ValueError(msg)
    allowed = {"type", "weight"} | ({"key"} if kind == "categorical" else {"time_key", "event_key"})
    if kind == "logistic_hazard":
        allowed.add("n_bins")
    required = allowed - {"weight", "n_bins"}
    unknown, absent = set(outcome) - allowed, required - set(outcome)
    if unknown or absent:
        msg = f"outcome of type {kind!r} takes keys {sorted(allowed)} (required {sorted(required)}), got {sorted(outcome)}."
        raise ValueError(msg)
    for k in required - {"type"}:
        if outcome[k] not in mdata.obs.columns:
            msg = f"outcome[{k!r}] = {outcome[k]!r} is not a column of mdata.obs; available: {list(mdata.obs.columns)[:20]}."
            raise KeyError(msg)
    weight = float(outcome.get("weight", 1.0))
    if not weight > 0:
        msg = f"Expected outcome['weight'] > 0 (the outcome's log-likelihood multiplier), got {outcome.get('weight')!r}."
        raise ValueError(msg)
    entry: dict[str, Any] = {k: outcome[k] for k in required}
    entry["weight"] = weight
    if kind == "categorical":
        values = mdata.obs[outcome["key"]]
        labelled = values[values.notna()]
        classes = sorted(pd.unique(labelled), key=str)
        if len(classes) < 2:
            msg = f"outcome column {outcome['key']!r} has {len(classes)} distinct label(s) among labelled observations; need at least 2."
            raise ValueError(msg)
        entry["classes"] = [_builtin(c) for c in classes]
        return entry
    time, event, present = _survival_columns(mdata, entry)
    if not event[present].any():
        msg = f"outcome column {entry['event_key']!r} has no events among labelled observations; a survival outcome needs some."
        raise ValueError(msg)
    if kind == "logistic_hazard":
        n_bins = outcome.get("n_bins", _DEFAULT_BINS)
        if not (isinstance(n_bins, int | np.integer) and n_bins >= 2):
            msg = f"Expected outcome['n_bins'] to be an int >= 2, got {n_bins!r}."
            raise ValueError(msg)
        entry["cuts"] = time_cuts(time[present & event], int(n_bins))
    return entry


def _survival_columns(mdata, entry: Mapping[str, Any], *,
                      require_labels: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    time = pd.to_numeric(mdata.obs[entry["time_key"]], errors="coerce").to_numpy(dtype=np.float64)
    raw_event = mdata.obs[entry["event_key"]]
    event_num = pd.to_numeric(raw_event.astype("object").where(raw_event.notna(), np.nan), errors="coerce")
    event_num = event_num.to_numpy(dtype=np.float64)
    present = np.isfinite(time) & np.isfinite(event_num)
    if require_labels and present.sum() == 0:
        msg = f"outcome columns {entry['time_key']!r}/{entry['event_key']!r} have no observation with both values."
        raise ValueError(msg)
    if (time[present] <= 0).any():
        msg = f"outcome column {entry['time_key']!r} has times <= 0 (min {time[present].min()}); survival times must be positive."
        raise ValueError(msg)
    if not np.isin(event_num[present], (0.0, 1.0)).all():
        msg = f"outcome column {entry['event_key']!r} must hold 0/1 or booleans (1 = event observed)."
        raise ValueError(msg)
    return time, event_num == 1.0, present


def time_cuts(event_times: np.ndarray, n_bins: int) -> list[float]:
    """Inner cut points between ``n_bins`` intervals at quantiles of the event times."""
    qs = np.quantile(event_times, np.linspace(0, 1, n_bins + 1)[1:-1])
    return [float(c) for c in np.unique(qs)]


def outcome_arrays(mdata, entry: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Per-observation arrays of the outcome: ``present`` plus ``label`` or ``time``/``event`` (/``bin``).

    Labels outside the registered classes raise a ``ValueError`` rather than being dropped.
    Data without the outcome's columns (new observations to predict) are all unlabelled.
    """
    keys = [entry["key"]] if entry["type"] == "categorical" else [entry["time_key"], entry["event_key"]]
    if not all(k in mdata.obs for k in keys):
        absent = np.zeros(mdata.n_obs, dtype=bool)
        if entry["type"] == "categorical":
            return {"present": absent, "label": np.full(mdata.n_obs, -1, dtype=np.int64)}
        out = {"present": absent, "time": np.ones(mdata.n_obs), "event": absent.copy()}
        if entry["type"] == "logistic_hazard":
            out["bin"] = np.zeros(mdata.n_obs, dtype=np.int64)
        return out
    if entry["type"] == "categorical":
        values = mdata.obs[entry["key"]]
        present = values.notna().to_numpy()
        lookup = {str(c): i for i, c in enumerate(entry["classes"])}
        seen = values[present].astype(str)
        unknown = sorted(set(seen) - set(lookup))
        if unknown:
            msg = f"outcome column {entry['key']!r} has labels {unknown[:5]} that the model was not set up with ({entry['classes']})."
            raise ValueError(msg)
        label = np.full(mdata.n_obs, -1, dtype=np.int64)
        label[present] = seen.map(lookup).to_numpy()
        return {"present": present, "label": label}
    time, event, present = _survival_columns(mdata, entry, require_labels=False)
    out = {"present": present, "time": np.where(present, time, 1.0), "event": present & event}
    if entry["type"] == "logistic_hazard":
        out["bin"] = np.searchsorted(np.asarray(entry["cuts"]), out["time"], side="left").astype(np.int64)
    return out


def _builtin(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v

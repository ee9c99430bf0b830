"""Array conversion and input validation helpers shared by the metric functions."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np


def to_numpy(x: Any, name: str, *, dtype: type | None = np.float64) -> np.ndarray:
    """Convert ``x`` (numpy array, torch tensor on any device, or sequence) to numpy.

    Parameters
    ----------
    x
        Input array-like.
    name
        Argument name, used in error messages.
    dtype
        Target dtype; ``None`` keeps the input dtype.

    Returns
    -------
    numpy.ndarray
        A numpy array (a copy for torch inputs).

    Raises
    ------
    ValueError
        If ``x`` is ``None`` or cannot be converted to a numeric array.
    """
    if x is None:
        msg = f"`{name}` must be an array or tensor, got None."
        raise ValueError(msg)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        if t.is_floating_point() and t.dtype not in (torch.float32, torch.float64):
            t = t.to(torch.float64)  # bfloat16/float16 have no (or lossy) numpy counterpart
        x = t.numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        msg = f"`{name}` must be numeric (bool, int or float), got dtype {arr.dtype}."
        raise ValueError(msg)
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    return arr


def to_bool_mask(mask: Any, shape: tuple[int, ...], name: str = "mask") -> np.ndarray:
    """Convert ``mask`` to a boolean numpy array and check that it has ``shape``.

    Raises
    ------
    ValueError
        If ``mask`` is not boolean or does not have shape ``shape``.
    """
    arr = to_numpy(mask, name, dtype=None)
    if arr.dtype != np.bool_:
        msg = f"`{name}` must be a boolean array, got dtype {arr.dtype}."
        raise ValueError(msg)
    if arr.shape != shape:
        msg = f"`{name}` must have the shape of `truth` {shape}, got {arr.shape}."
        raise ValueError(msg)
    return arr


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same shape."""
    if a.shape != b.shape:
        msg = f"`{name_b}` must have the shape of `{name_a}` {a.shape}, got {b.shape}."
        raise ValueError(msg)


def check_1d(a: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` unless ``a`` is one-dimensional and non-empty."""
    if a.ndim != 1:
        msg = f"`{name}` must be 1-dimensional, got shape {a.shape}."
        raise ValueError(msg)
    if a.shape[0] == 0:
        msg = f"`{name}` must not be empty."
        raise ValueError(msg)


def check_finite(a: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` if ``a`` contains NaN or infinite values."""
    bad = ~np.isfinite(a)
    if bad.any():
        msg = f"`{name}` must be finite, got {int(bad.sum())} NaN/inf value(s)."
        raise ValueError(msg)


def check_same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same first dimension."""
    if a.shape[0] != b.shape[0]:
        msg = (f"`{name_a}` and `{name_b}` must have the same length, "
               f"got {a.shape[0]} and {b.shape[0]}.")
        raise ValueError(msg)


# --- survival inputs ---------------------------------------------------------


def event_time(event: Any, time: Any, ev_name: str, t_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate a survival outcome; return (bool event indicator, float times)."""
    e = to_numpy(event, ev_name)
    t = to_numpy(time, t_name)
    check_1d(e, ev_name)
    check_1d(t, t_name)
    check_same_length(e, t, ev_name, t_name)
    check_finite(e, ev_name)
    check_finite(t, t_name)
    if not np.isin(e, (0.0, 1.0)).all():
        msg = f"`{ev_name}` must be boolean or 0/1, got values {np.unique(e)[:5]}."
        raise ValueError(msg)
    return e.astype(bool), t


def structured_survival(y: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Split a two-field structured array (event, time) into two numpy arrays."""
    if not isinstance(y, np.ndarray) or y.dtype.names is None or len(y.dtype.names) != 2:
        got = getattr(y, "dtype", type(y).__name__)
        msg = (f"`{name}` must be a structured array with two fields (event indicator, time), "
               f"as made by sksurv.util.Surv.from_arrays; got {got}.")
        raise ValueError(msg)
    ev_field, t_field = y.dtype.names
    return event_time(y[ev_field], y[t_field], f"{name}['{ev_field}']", f"{name}['{t_field}']")


def risk_vector(risk: Any, n: int, name: str = "risk", *, allow_2d: bool = False) -> np.ndarray:
    """Validate risk scores of shape (n,) (or (n, n_times) when ``allow_2d``)."""
    r = to_numpy(risk, name)
    if not (r.ndim == 1 or (allow_2d and r.ndim == 2)):
        want = "(n_samples,) or (n_samples, n_times)" if allow_2d else "(n_samples,)"
        msg = f"`{name}` must have shape {want}, got {r.shape}."
        raise ValueError(msg)
    if r.shape[0] != n:
        msg = f"`{name}` must have one row per test sample ({n}), got {r.shape[0]}."
        raise ValueError(msg)
    check_finite(r, name)
    return r


def check_times(times: Any, t_test: np.ndarray) -> np.ndarray:
    """Validate evaluation times: strictly increasing, inside ``[min(t_test), max(t_test))``."""
    ts = to_numpy(times, "times").reshape(-1)
    if ts.size == 0:
        msg = "`times` must contain at least one time point, got none."
        raise ValueError(msg)
    check_finite(ts, "times")
    if ts.size > 1 and not (np.diff(ts) > 0).all():
        msg = f"`times` must be strictly increasing, got {ts}."
        raise ValueError(msg)
    if ts[0] < t_test.min() or ts[-1] >= t_test.max():
        msg = (f"`times` must lie within the test follow-up [{t_test.min()}, {t_test.max()}), "
               f"got [{ts[0]}, {ts[-1]}].")
        raise ValueError(msg)
    return ts

"""Argument checks shared by the public model methods."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch


def check_int(name: str, value, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        msg = f"Expected {name} to be an int >= {minimum}, got {value!r}."
        raise ValueError(msg)
    return value


def check_float(name: str, value, *, low: float, high: float, low_open: bool = False, high_open: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        msg = f"Expected {name} in {lo}{low}, {high}{hi}, got {value!r}."
        raise ValueError(msg)
    return float(value)


def resolve_device(accelerator: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``gpu``/``cuda``, ``cuda:N`` (``gpu:N``), ``mps`` and ``cpu`` as named."""
    options = ("auto", "cpu", "gpu", "cuda", "cuda:N", "gpu:N", "mps")
    kind, sep, index = str(accelerator).partition(":")
    if kind not in ("auto", "cpu", "gpu", "cuda", "mps") or (sep and (kind not in ("gpu", "cuda") or not index.isdigit())):
        msg = f"Expected accelerator in {options}, got {accelerator!r}."
        raise ValueError(msg)
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            msg = (f"accelerator={accelerator!r} was requested but torch sees no CUDA device; use accelerator='cpu' "
                   "or install a CUDA build of torch.")
            raise ValueError(msg)
        if sep and int(index) >= torch.cuda.device_count():
            msg = f"accelerator={accelerator!r}: torch sees {torch.cuda.device_count()} CUDA device(s), numbered from 0."
            raise ValueError(msg)
        return torch.device("cuda", int(index)) if sep else torch.device("cuda")
    return torch.device(kind)


def check_subset(name: str, value: Sequence[str] | None, allowed: Sequence[str]) -> list[str]:
    """``None`` → all of ``allowed``; otherwise a non-empty list of known names."""
    if value is None:
        return list(allowed)
    if isinstance(value, str):
        value = [value]
    unknown = [v for v in value if v not in allowed]
    if unknown or not value:
        msg = f"Expected {name} to be a non-empty list of registered modalities {list(allowed)}, got {list(value)!r}."
        raise ValueError(msg)
    return list(value)


def renamed(new: str, value, old: str, old_value, *, owner: str):
    """``value``, or ``old_value`` passed under the deprecated keyword ``old`` (a FutureWarning).

    Passing both is a TypeError. ``owner`` names the function in the warning (``"impute"``).
    """
    if old_value is None:
        return value
    if value is not None:
        msg = f"{owner}() got both {new}= and its deprecated name {old}=; pass {new}= only."
        raise TypeError(msg)
    warnings.warn(f"{owner}({old}=...) is deprecated; pass {new}=... (the same value).", FutureWarning, stacklevel=3)
    return old_value

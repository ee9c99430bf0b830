"""Small shared helpers: progress bars (atomic writes live in :mod:`mdlprob._io`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from ._io import atomic_path

__all__ = ["atomic_path", "track"]

T = TypeVar("T")


def track(iterable: Iterable[T], *, description: str = "", total: int | None = None,
          progress_bar: bool = True, **kwargs) -> Iterable[T]:
    """Wrap ``iterable`` in a tqdm progress bar when ``progress_bar`` is true."""
    from ._settings import settings

    if not (progress_bar and settings.progress_bar):
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=description, total=total, dynamic_ncols=True, **kwargs)

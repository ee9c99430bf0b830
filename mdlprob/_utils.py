"""Small shared helpers: progress bars (atomic writes live in :mod:`mdlprob._io`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from ._io import atomic_path

__all__ = ["atomic_path", "progress", "track"]

T = TypeVar("T")


def track(iterable: Iterable[T], *, description: str = "", total: int | None = None,
          progress_bar: bool = True, **kwargs) -> Iterable[T]:
    """Wrap ``iterable`` in a tqdm progress bar when ``progress_bar`` is true."""
    from ._settings import settings

    if not (progress_bar and settings.show_progress):
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=description, total=total, dynamic_ncols=True, **kwargs)


class _NoBar:
    def update(self, n: int = 1) -> None:
        """Nothing to show."""

    def close(self) -> None:
        """Nothing to close."""


def progress(total: int, description: str, *, progress_bar: bool = True):
    """A manual progress bar (``update``/``close``) of ``total`` steps, or a silent stand-in."""
    from ._settings import settings

    if not (progress_bar and settings.show_progress):
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, dynamic_ncols=True, leave=False)

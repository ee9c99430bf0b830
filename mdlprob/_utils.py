"""Small shared helpers: progress bars and atomic file writes."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def track(iterable: Iterable[T], *, description: str = "", total: int | None = None,
          progress_bar: bool = True, **kwargs) -> Iterable[T]:
    """Wrap ``iterable`` in a tqdm progress bar when ``progress_bar`` is true."""
    from ._settings import settings

    if not (progress_bar and settings.progress_bar):
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=description, total=total, dynamic_ncols=True, **kwargs)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` only on success.

    A crash while writing leaves any existing file at ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

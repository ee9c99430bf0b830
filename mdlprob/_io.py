"""Crash-safe writes of files and folders.

Every file or folder mdlprob writes goes through :func:`atomic_path` or :func:`atomic_dir`:
the content is written to a hidden temporary sibling of the target (named after the
target and the writing process), flushed to disk (``fsync``), and renamed onto the target
only when complete. A crash leaves the target as it was. Leftovers of a crashed writer (a
process that no longer runs) are cleaned the next time the same target is written; when a
crash fell between the two renames that replace an existing folder, the previous version
is put back first. Files and folders get the usual modes under the process's umask.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: errno values that mean "the disk or the place cannot take this write", reported as such.
_STORAGE_ERRORS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG}
_TMP, _OLD = "mdlprob-tmp", "mdlprob-old"


class WriteError(OSError):
    """A file or folder could not be written; the target was left as it was."""

    def __str__(self) -> str:
        return str(self.strerror)


def umask() -> int:
    """The process's umask (read without changing it for longer than a call)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary file path next to ``path``; move it onto ``path`` only on success.

    A crash or an error while writing leaves any existing file at ``path`` untouched;
    a full disk or a read-only place raises :class:`WriteError` naming ``path``.
    """
    path = Path(path)
    _prepare(path)
    fd, tmp = tempfile.mkstemp(prefix=_prefix(path, _TMP), suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        with _storage_errors(path):
            yield tmp_path
            os.chmod(tmp_path, 0o666 & ~umask())  # mkstemp makes 0600; give the file the usual mode
            _fsync(tmp_path)
            os.replace(tmp_path, path)
            _fsync(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``path``; it replaces ``path`` only when the block succeeds.

    ``path`` may exist only with ``overwrite`` (a folder or a file, replaced as a whole).
    """
    path = Path(path)
    _prepare(path)
    if path.exists() and not overwrite:
        msg = f"{path} already exists; pass overwrite=True to replace it."
        raise FileExistsError(msg)
    with _storage_errors(path):
        tmp = Path(tempfile.mkdtemp(prefix=_prefix(path, _TMP), dir=path.parent))
    try:
        with _storage_errors(path):
            yield tmp
            os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes 0700: a shared lab folder could not read it
            for item in tmp.rglob("*"):
                _fsync(item)
            _fsync(tmp)
            if path.exists() or path.is_symlink():
                old = Path(tempfile.mkdtemp(prefix=_prefix(path, _OLD), dir=path.parent))
                os.replace(path, old / "content")
                os.replace(tmp, path)
                _remove(old)
            else:
                os.replace(tmp, path)
            _fsync(path.parent)
    finally:
        if tmp.exists():
            _remove(tmp)


def _prefix(path: Path, kind: str) -> str:
    return f".{path.name}.{kind}-{os.getpid()}-"


def _prepare(path: Path) -> None:
    """Create the parent folder and clean what crashed writers of ``path`` left there."""
    with _storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.({_TMP}|{_OLD})-(\d+)-")
    leftovers = []
    for item in path.parent.iterdir():
        match = pattern.match(item.name)
        if match and not _alive(int(match.group(2))):
            leftovers.append((match.group(1), item))
    for kind, item in sorted(leftovers, key=lambda x: x[0] != _OLD):  # restore an old version first
        content = item / "content"
        if kind == _OLD and not (path.exists() or path.is_symlink()) and (content.exists() or content.is_symlink()):
            os.replace(content, path)  # the crash fell between the two renames: put the previous version back
        _remove(item)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(item: Path) -> None:
    if item.is_dir() and not item.is_symlink():
        shutil.rmtree(item, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            item.unlink()


def _fsync(item: Path) -> None:
    """Flush a file's or folder's content to disk (folders: their entries)."""
    if item.is_symlink():
        return
    fd = os.open(item, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as err:  # some file systems cannot fsync a folder
        if err.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def _storage_errors(path: Path) -> Iterator[None]:
    """Report a full disk, a read-only place or missing permissions as one clear :class:`WriteError`."""
    try:
        yield
    except WriteError:
        raise
    except OSError as err:
        if err.errno not in _STORAGE_ERRORS:
            raise
        reason = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                  errno.EROFS: "the file system is read-only", errno.EFBIG: "the file is too large for the file system",
                  }.get(err.errno, "permission denied")
        msg = (f"Could not write {path}: {reason} ({os.strerror(err.errno)}). Nothing was written there; "
               "free space or choose another place.")
        raise WriteError(err.errno, msg) from err

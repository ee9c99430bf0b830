"""Where a result came from: the code's git commit, package versions, the machine and the exact command.

Every results file of ``mdlprob bench`` and of the scripts in ``benchmarks/`` records
:func:`provenance`, so a number can be traced to the code and set-up that produced it, and
:func:`provenance_lines` gives the same as Markdown for the reports.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

#: Distributions whose versions every record lists (absent ones are recorded as ``None``).
PACKAGES = ("mdlprob", "torch", "pyro-ppl", "numpy", "scipy", "pandas", "scikit-learn", "scikit-survival", "anndata",
            "mudata", "torch-geometric", "optuna")
#: Environment variables that change results or speed, recorded when set.
ENVIRONMENT = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "MDLPROB_DATA", "PYTHONHASHSEED")


def _version(name: str) -> str | None:
    if name == "mdlprob":  # the imported code, which an editable or PYTHONPATH checkout may not have installed
        from .. import __version__

        return __version__
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_state(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """``commit`` (full hash) and ``dirty`` (uncommitted changes to tracked files) of the checkout
    holding ``path`` (default: this package), or ``None`` for both outside a git checkout."""
    folder = Path(path) if path is not None else Path(__file__).resolve().parents[2]

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10,
                                  check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def machine() -> dict[str, Any]:
    """Operating system, CPU, core count, Python, and the GPU when torch sees one."""
    info: dict[str, Any] = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                            "cpu_count": os.cpu_count(), "python": platform.python_version()}
    torch = sys.modules.get("torch")  # only when already imported: recording must not load torch
    if torch is not None and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def provenance(command: str | Sequence[str] | None = None, *, packages: Sequence[str] = ()) -> dict[str, Any]:
    """A JSON-able record of the code, packages, machine and command behind a result.

    Parameters
    ----------
    command
        The exact command, as a string or an argv list (quoted with :func:`shlex.join`).
        Default: this process's ``python`` and ``sys.argv``.
    packages
        Distributions to list besides :data:`PACKAGES`.

    Examples
    --------
    >>> from mdlprob.benchmark import provenance
    >>> record = provenance(["python", "benchmarks/models.py", "--quick"])
    >>> record["command"], sorted(record)
    ('python benchmarks/models.py --quick', ['command', 'date', 'environment', 'git', 'machine', 'packages'])
    """
    if command is None:
        command = [Path(sys.executable).name, *sys.argv]
    if not isinstance(command, str):
        command = shlex.join([str(c) for c in command])
    return {
        "command": command,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git": git_state(),
        "packages": {name: _version(name) for name in dict.fromkeys([*PACKAGES, *packages])},
        "machine": machine(),
        "environment": {k: os.environ[k] for k in ENVIRONMENT if k in os.environ},
    }


def provenance_lines(record: dict[str, Any]) -> list[str]:
    """The record as Markdown bullet lines, for the provenance section of a report."""
    git = record.get("git") or {}
    commit = git.get("commit")
    code = "not a git checkout" if commit is None else f"{commit[:12]}{' + uncommitted changes' if git.get('dirty') else ''}"
    packages = ", ".join(f"{k} {v}" for k, v in record.get("packages", {}).items() if v is not None)
    host = record.get("machine", {})
    where = f"{host.get('platform')}, {host.get('processor')}, {host.get('cpu_count')} CPUs, Python {host.get('python')}"
    if host.get("gpu"):
        where += f", {host['gpu']}"
    env = ", ".join(f"{k}={v}" for k, v in record.get("environment", {}).items())
    return [f"- command: `{record.get('command')}`", f"- date: {record.get('date')}", f"- code: {code}",
            f"- packages: {packages}", f"- machine: {where}" + (f"; {env}" if env else "")]

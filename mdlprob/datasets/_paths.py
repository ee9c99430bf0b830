"""Where shared datasets live on disk."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MDLPROB_DATA"


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    """Folder that holds the shared datasets.

    ``data_dir`` when given, else the environment variable ``MDLPROB_DATA``, else
    ``../shared/data`` relative to the current working directory.
    """
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return Path("..") / "shared" / "data"


def dataset_file(name: str, relative: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Path of ``relative`` inside dataset ``name``; a clear error when it is absent.

    Raises
    ------
    FileNotFoundError
        Naming the folder searched, the file expected and how to point mdlprob elsewhere.
    """
    root = data_root(data_dir)
    path = root / name / relative
    if not path.exists():
        how = "the data_dir argument" if data_dir is not None else f"the environment variable {ENV_VAR} or data_dir="
        msg = (
            f"Dataset {name!r} not found: expected the file {path.resolve()} "
            f"(looked in {root.resolve()}). Put the dataset folder there or set {how} "
            f"to the folder that contains {name}/."
        )
        raise FileNotFoundError(msg)
    return path

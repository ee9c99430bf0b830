"""Save and load fitted heads without pickle: a JSON description plus an ``.npz`` of arrays.

A head folder holds ``head.json`` (format version, the estimator's class and parameters,
its fitted scalars, lists and dicts, and the caller's ``metadata``) and ``arrays.npz``
(every fitted array, read back with ``allow_pickle=False``). Only the heads of
:mod:`mdlprob.heads` can be loaded; a :class:`LatentHead` is saved without its model, which
:func:`load_head` takes as an argument. The folder is written crash-safely
(:func:`mdlprob._io.atomic_dir`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from .._io import atomic_dir
from ..exceptions import ModelFileError, NotTrainedError
from ._classifier import ClassifierHead
from ._coxph import CoxPHHead
from ._latent import LatentHead
from ._logistic_hazard import LogisticHazardHead
from ._weibull_aft import WeibullAFTHead

#: Version of the folder layout written by :func:`save_head`.
FORMAT_VERSION = 1
_CONFIG, _ARRAYS = "head.json", "arrays.npz"
_CLASSES = {cls.__name__: cls for cls in (ClassifierHead, CoxPHHead, LatentHead, LogisticHazardHead, WeibullAFTHead)}


def save_head(head: BaseEstimator, path: str | os.PathLike, *, overwrite: bool = False,
              metadata: dict[str, Any] | None = None) -> None:
    """Write a fitted head to the folder ``path``.

    Parameters
    ----------
    head
        A fitted head of :mod:`mdlprob.heads` (a :class:`LatentHead` is saved without its model).
    path
        Folder to write; it replaces an existing one only with ``overwrite``.
    metadata
        JSON-serialisable facts to keep with the head (e.g. the target columns), returned by
        :func:`read_head_metadata`.

    Raises
    ------
    TypeError
        ``head`` is not one of the package's heads, or ``metadata`` is not JSON-serialisable.
    NotTrainedError
        ``head`` is not fitted.
    """
    if type(head).__name__ not in _CLASSES or not isinstance(head, _CLASSES[type(head).__name__]):
        msg = f"Expected `head` to be one of {sorted(_CLASSES)}, got {type(head).__name__}."
        raise TypeError(msg)
    fitted = "head_" if isinstance(head, LatentHead) else "n_features_in_"
    if not hasattr(head, fitted):
        msg = f"This {type(head).__name__} is not fitted; call fit() before save_head()."
        raise NotTrainedError(msg)
    arrays: dict[str, np.ndarray] = {}
    config = {"format_version": FORMAT_VERSION, "estimator": _encode_estimator(head, "h", arrays),
              "metadata": metadata or {}}
    try:
        text = json.dumps(config, indent=1)
    except TypeError as err:
        msg = f"Expected `metadata` to be JSON-serialisable, got {metadata!r} ({err})."
        raise TypeError(msg) from None
    with atomic_dir(path, overwrite=overwrite) as tmp:
        (tmp / _CONFIG).write_text(text)
        with open(tmp / _ARRAYS, "wb") as fh:
            np.savez(fh, **arrays)


def load_head(path: str | os.PathLike, model: Any = None) -> BaseEstimator:
    """Load a head written by :func:`save_head`.

    Parameters
    ----------
    path
        The head's folder.
    model
        The trained model a :class:`LatentHead` predicts from (the one it was fitted on).

    Raises
    ------
    ModelFileError
        The folder is not a saved head, or it is incomplete or of an unknown version.
    ValueError
        A :class:`LatentHead` is loaded without ``model``.
    """
    config = _read_config(Path(path))
    try:
        with np.load(Path(path) / _ARRAYS, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as err:
        msg = f"{Path(path) / _ARRAYS} could not be read ({err}); save the head again."
        raise ModelFileError(msg) from None
    head = _decode_estimator(config["estimator"], arrays)
    if isinstance(head, LatentHead):
        if model is None:
            msg = f"{path} holds a LatentHead: pass the trained model it was fitted on, load_head(path, model)."
            raise ValueError(msg)
        head.model = model
    return head


def read_head_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``metadata`` saved with a head, and its ``"class"`` (without loading arrays)."""
    config = _read_config(Path(path))
    return {**config["metadata"], "class": config["estimator"]["class"]}


def _read_config(path: Path) -> dict[str, Any]:
    file = path / _CONFIG
    if not file.is_file():
        msg = f"{path} holds no saved head (no {_CONFIG}); write one with `mdlprob head fit` or save_head()."
        raise ModelFileError(msg)
    try:
        config = json.loads(file.read_text())
    except (OSError, ValueError) as err:
        msg = f"{file} could not be read as JSON ({err}); save the head again."
        raise ModelFileError(msg) from None
    version = config.get("format_version")
    if version != FORMAT_VERSION or config.get("estimator", {}).get("class") not in _CLASSES:
        msg = (f"{file} is a head file of format {version!r} with class {config.get('estimator', {}).get('class')!r}; "
               f"this mdlprob reads format {FORMAT_VERSION} of {sorted(_CLASSES)}.")
        raise ModelFileError(msg)
    return config


def _encode_estimator(est: BaseEstimator, name: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    params = est.get_params(deep=False)
    params.pop("model", None)  # a LatentHead's model is saved on its own
    head = params.pop("head", None)
    state = {k: _encode(v, f"{name}.{k}", arrays) for k, v in vars(est).items()
             if k not in params and k not in ("model", "head")}
    out = {"class": type(est).__name__, "params": _encode(params, f"{name}.params", arrays), "state": state}
    if head is not None:
        out["head"] = _encode_estimator(head, f"{name}.head", arrays)
    return out


def _decode_estimator(spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> BaseEstimator:
    cls = _CLASSES[spec["class"]]
    params = _decode(spec["params"], arrays)
    if "head" in spec:
        params["head"] = _decode_estimator(spec["head"], arrays)
    if cls is LatentHead:
        params["model"] = None
    est = cls(**params)
    for k, v in spec["state"].items():
        setattr(est, k, _decode(v, arrays))
    return est


def _encode(value: Any, name: str, arrays: dict[str, np.ndarray]) -> Any:
    """A JSON value tagged with its kind; arrays go to ``arrays`` under ``name``."""
    if isinstance(value, BaseEstimator):
        return {"t": "estimator", "v": _encode_estimator(value, name, arrays)}
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return {"t": "scalar", "v": value}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            if not all(isinstance(v, str) for v in value.ravel()):
                msg = f"Cannot save {name}: an object array of {type(value.ravel()[0]).__name__}."
                raise TypeError(msg)
            value = value.astype(str)
        arrays[name] = value
        return {"t": "array", "v": name}
    if isinstance(value, dict):
        return {"t": "dict", "v": [[_encode(k, f"{name}.k{i}", arrays), _encode(v, f"{name}.{i}", arrays)]
                                   for i, (k, v) in enumerate(value.items())]}
    if isinstance(value, list | tuple):
        return {"t": type(value).__name__, "v": [_encode(v, f"{name}.{i}", arrays) for i, v in enumerate(value)]}
    msg = f"Cannot save {name} of type {type(value).__name__}."
    raise TypeError(msg)


def _decode(spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    kind, value = spec["t"], spec["v"]
    if kind == "scalar":
        return value
    if kind == "array":
        return arrays[value]
    if kind == "estimator":
        return _decode_estimator(value, arrays)
    if kind == "dict":
        return {_decode(k, arrays): _decode(v, arrays) for k, v in value}
    items = [_decode(v, arrays) for v in value]
    return tuple(items) if kind == "tuple" else items

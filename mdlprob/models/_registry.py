"""The model registry: every model is registered once, and every list of models is read from here.

The CLI's ``--model`` choices, the benchmark methods, the contract and calibration tests and
the docs' model list all iterate over :func:`all_models`, so a new model is one file with a
:func:`register_model` decorator (plus its test).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from ..base import BaseModel

_M = TypeVar("_M", bound=type)


@dataclass(frozen=True)
class ModelInfo:
    """What generic code needs to know about a registered model.

    Attributes
    ----------
    name
        The class name (``PoEVAE``): what saved models, benchmark methods and suites use.
    cls
        The model class (a :class:`~mdlprob.base.BaseModel` subclass).
    alias
        Short name for the command line (``mdlprob fit --model poe``).
    image_experts
        Whether image modalities (``uns["image_shape"]``) get convolutional encoders *and*
        decoders, so that the model is meant for them.
    sample_graph
        Whether the model reads a graph over the observations (``mdata.obsp[graph_key]``);
        it builds a kNN graph when the key is absent.
    summary
        The first line of the class docstring.
    """

    name: str
    cls: type[BaseModel]
    alias: str
    image_experts: bool = False
    sample_graph: bool = False
    summary: str = ""


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(*, alias: str, image_experts: bool = False, sample_graph: bool = False) -> Callable[[_M], _M]:
    """Class decorator registering a model under its class name and a command-line ``alias``.

    Examples
    --------
    >>> from mdlprob.models import all_models
    >>> all_models()["PoEVAE"].alias
    'poe'
    """

    def decorate(cls: _M) -> _M:
        from ..base import BaseModel

        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            msg = f"register_model decorates BaseModel subclasses, got {cls!r}."
            raise TypeError(msg)
        taken = {info.alias: info.name for info in _REGISTRY.values() if info.name != cls.__name__}
        if alias in taken:
            msg = f"Model alias {alias!r} is already registered for {taken[alias]}; choose another alias for {cls.__name__}."
            raise ValueError(msg)
        summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        _REGISTRY[cls.__name__] = ModelInfo(cls.__name__, cls, alias, image_experts, sample_graph, summary)
        return cls

    return decorate


def all_models() -> dict[str, ModelInfo]:
    """Every registered model, by class name, in a stable order (the order of :data:`ORDER`, then by name)."""
    rank = {name: i for i, name in enumerate(ORDER)}
    names = sorted(_REGISTRY, key=lambda n: (rank.get(n, len(rank)), n))
    return {n: _REGISTRY[n] for n in names}


def get_model(name: str) -> ModelInfo:
    """The registered model with class name or alias ``name`` (``"PoEVAE"`` or ``"poe"``).

    Raises
    ------
    ValueError
        No model has that name or alias; the message lists them.
    """
    for info in _REGISTRY.values():
        if name in (info.name, info.alias):
            return info
    choices = ", ".join(f"{i.alias} ({i.name})" for i in all_models().values())
    msg = f"Expected a registered model name or alias ({choices}), got {name!r}."
    raise ValueError(msg)


#: Display order of the built-in models (the package's flagship first); others follow by name.
ORDER = ("PoEVAE", "MoPoEVAE", "MoEVAE", "FactorModel", "GraphPoEVAE")

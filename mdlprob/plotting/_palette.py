"""One colour per method, the same in every figure (benchmark reports, studies, tutorials).

A method's colour depends on its name only, never on which other methods a figure shows:
the package's methods have fixed colours (:data:`METHOD_COLORS`), and any other name gets
one of the remaining colours by a stable hash of its name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

#: Fixed colours (from matplotlib's tab20) of the benchmarked methods.
METHOD_COLORS = {
    "PoEVAE": "#1f77b4", "MoPoEVAE": "#ff7f0e", "MoEVAE": "#2ca02c", "FactorModel": "#d62728",
    "GraphPoEVAE": "#9467bd", "Ensemble": "#aec7e8",
    "feature_mean": "#7f7f7f", "knn_imputer": "#bcbd22", "iterative_imputer": "#17becf", "coxnet": "#8c564b",
    "early_fusion": "#e377c2", "late_fusion": "#f7b6d2", "intermediate_fusion": "#c49c94",
    "mofa": "#98df8a", "totalvi": "#ff9896", "multivae_mopoe": "#ffbb78", "multivae_mmvae": "#c5b0d5",
}
#: Colours for names outside :data:`METHOD_COLORS`.
_SPARE = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1",
          "#636363")
#: Short names used by the CLI and the studies.
_ALIASES = {"poe": "PoEVAE", "mopoe": "MoPoEVAE", "moe": "MoEVAE", "factor": "FactorModel", "graphpoe": "GraphPoEVAE",
            "mean": "feature_mean", "knn": "knn_imputer", "iterative": "iterative_imputer"}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_BY_KEY = {**{_key(m): m for m in METHOD_COLORS}, **{_key(a): m for a, m in _ALIASES.items()}}


def method_color(method: str) -> str:
    """The colour of ``method`` in every figure.

    Names of :data:`METHOD_COLORS` match regardless of case and punctuation (``poe_vae``,
    ``PoE-VAE``), as do the short names ``poe``, ``mopoe``, ``moe``, ``factor``. Any other
    name gets a spare colour chosen by a hash of the name (stable across runs and figures).

    Examples
    --------
    >>> from mdlprob.plotting import method_color
    >>> method_color("PoEVAE") == method_color("poe") == method_color("PoE-VAE")
    True
    """
    if not isinstance(method, str):
        msg = f"Expected `method` to be a method name (str), got {type(method).__name__}."
        raise TypeError(msg)
    name = _BY_KEY.get(_key(method))
    return METHOD_COLORS[name] if name is not None else _SPARE[_spare_index(method)]


def _spare_index(method: str) -> int:
    return hashlib.sha256(method.encode()).digest()[0] % len(_SPARE)


def method_colors(methods: Iterable[str]) -> dict[str, str]:
    """``{method: colour}`` for one figure, each from :func:`method_color`.

    Two names outside :data:`METHOD_COLORS` whose hashes pick the same spare colour would
    look alike: the second takes the next spare colour the figure does not use yet.
    """
    names = list(dict.fromkeys(methods))
    out = {m: method_color(m) for m in names if _BY_KEY.get(_key(m)) is not None}
    for m in names:
        if m in out:
            continue
        start = _spare_index(m)
        free = [_SPARE[(start + k) % len(_SPARE)] for k in range(len(_SPARE))]
        out[m] = next((c for c in free if c not in out.values()), _SPARE[start])
    return {m: out[m] for m in names}

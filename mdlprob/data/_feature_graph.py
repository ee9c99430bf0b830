"""Feature guidance graphs: links between features of different modalities (gene ↔ protein, ...)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

Edge = tuple[str, str, str, str, float, float]


def check_feature_graph(mdata, graph: Any, modalities: Sequence[str]) -> dict[str, Any]:
    """Validate ``setup_mudata(..., feature_graph=graph)`` and return its registry entry.

    ``graph`` is a networkx graph or an edge list (a DataFrame with columns ``source``,
    ``target`` and optionally ``sign``/``weight``, or an iterable of ``(source, target)``,
    ``(source, target, sign)`` or ``(source, target, sign, weight)`` tuples). A node is a
    ``(modality, feature)`` pair or a feature name that is unique among ``modalities``.
    """
    names = {m: pd.Index(mdata.mod[m].var_names.astype(str)) for m in modalities}
    owner: dict[str, list[str]] = {}
    for m, idx in names.items():
        for v in idx:
            owner.setdefault(v, []).append(m)
    edges = []
    for src, dst, sign, weight in _edge_rows(graph):
        a, b = _node(src, owner, names), _node(dst, owner, names)
        if a == b:
            continue
        if sign not in (-1, 1):
            msg = f"Edge {src!r} - {dst!r} has sign {sign!r}; expected +1 (same direction) or -1 (opposite)."
            raise ValueError(msg)
        if not (np.isfinite(weight) and weight > 0):
            msg = f"Edge {src!r} - {dst!r} has weight {weight!r}; expected a finite number > 0."
            raise ValueError(msg)
        edges.append([a[0], a[1], b[0], b[1], int(sign), float(weight)])
    if not edges:
        msg = "feature_graph has no edge between registered features; check the node names (e.g. ('rna', 'CD3E'))."
        raise ValueError(msg)
    return {"edges": edges, "n_obs": int(mdata.n_obs)}


def _edge_rows(graph: Any) -> Iterable[tuple[Any, Any, float, float]]:
    if hasattr(graph, "edges") and hasattr(graph, "nodes") and callable(graph.edges):  # networkx
        for u, v, data in graph.edges(data=True):
            yield u, v, data.get("sign", 1), float(data.get("weight", 1.0))
        return
    if isinstance(graph, pd.DataFrame):
        missing = {"source", "target"} - set(graph.columns)
        if missing:
            msg = f"feature_graph DataFrame needs columns 'source' and 'target' (optional 'sign', 'weight'); missing {sorted(missing)}."
            raise KeyError(msg)
        sign = graph["sign"] if "sign" in graph else pd.Series(1, index=graph.index)
        weight = graph["weight"] if "weight" in graph else pd.Series(1.0, index=graph.index)
        yield from zip(graph["source"], graph["target"], sign, weight.astype(float), strict=True)
        return
    if isinstance(graph, Iterable) and not isinstance(graph, (str, bytes, Mapping)):
        for row in graph:
            row = tuple(row)
            if len(row) not in (2, 3, 4):
                msg = f"feature_graph edges are (source, target[, sign[, weight]]) tuples, got {row!r}."
                raise ValueError(msg)
            yield row[0], row[1], row[2] if len(row) > 2 else 1, float(row[3]) if len(row) > 3 else 1.0
        return
    msg = f"Expected feature_graph to be a networkx graph, a DataFrame or a list of edges, got {type(graph).__name__}."
    raise TypeError(msg)


def _node(node: Any, owner: Mapping[str, list[str]], names: Mapping[str, pd.Index]) -> tuple[str, str]:
    if isinstance(node, tuple) and len(node) == 2:
        mod, var = str(node[0]), str(node[1])
        if mod not in names:
            msg = f"feature_graph node {node!r} names modality {mod!r}, which is not registered ({list(names)})."
            raise KeyError(msg)
        if var not in names[mod]:
            msg = f"feature_graph node {node!r}: modality {mod!r} has no feature {var!r}."
            raise KeyError(msg)
        return mod, var
    mods = owner.get(str(node), [])
    if len(mods) != 1:
        what = "no registered modality has it" if not mods else f"it is in several modalities {mods}"
        msg = f"feature_graph node {node!r} is ambiguous or unknown ({what}); name it as a (modality, feature) pair."
        raise KeyError(msg)
    return mods[0], str(node)


def link_features_by_name(mdata, source: str, target: str, *, normalize: bool = True,
                          mapping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Edges between features of two modalities that name the same gene or protein.

    For CITE-seq (gene ↔ protein, e.g. ADT ``CD4`` ↔ gene ``CD4``) and for gene-level
    tables of TCGA (an RNA gene ↔ the same gene's copy number or mutation). Names are
    compared after ``normalize`` (upper case; suffixes such as ``_rnaseq``, ``_cnv``,
    ``_mut``, ``-TotalSeqB``/``_ADT`` and non-alphanumerics removed); ``mapping`` adds
    explicit ``{target_feature: source_feature}`` pairs (e.g. ``{"CD3": "CD3E"}``).

    Returns
    -------
    DataFrame with columns ``source``, ``target`` (``(modality, feature)`` pairs), ``sign``
    (+1) and ``weight`` (1), ready for ``setup_mudata(..., feature_graph=...)``.
    """
    for mod in (source, target):
        if mod not in mdata.mod:
            msg = f"Modality {mod!r} is not in the MuData; it has {list(mdata.mod)}."
            raise KeyError(msg)
    key = _normalise if normalize else str
    by_name: dict[str, list[str]] = {}
    for v in mdata.mod[source].var_names.astype(str):
        by_name.setdefault(key(v), []).append(v)
    src_names = set(mdata.mod[source].var_names.astype(str))
    rows = []
    for t in mdata.mod[target].var_names.astype(str):
        linked = list(by_name.get(key(t), []))
        if mapping and t in mapping:
            if mapping[t] not in src_names:
                msg = f"mapping[{t!r}] = {mapping[t]!r} is not a feature of modality {source!r}."
                raise KeyError(msg)
            linked.append(mapping[t])
        rows += [((source, s), (target, t)) for s in dict.fromkeys(linked)]
    return pd.DataFrame({"source": [r[0] for r in rows], "target": [r[1] for r in rows],
                         "sign": 1, "weight": 1.0})


_SUFFIX = re.compile(r"([_\-.](rnaseq|rna|cnv|cn|mut|mutation|adt|totalseq[a-c]?|protein|prot))+$", re.IGNORECASE)


def _normalise(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", _SUFFIX.sub("", name).upper())


def feature_graph_indices(entry: Mapping[str, Any], var_names: Mapping[str, Sequence[str]],
                          modalities: Sequence[str]) -> dict[str, Any]:
    """The registry's feature graph as integer edges over the linked modalities' features.

    Nodes are numbered by concatenating the features of the linked modalities in registry
    order. Returns ``{"modalities", "edges" (pairs), "sign", "weight", "n_obs", "strength"}``.
    """
    used = {e[0] for e in entry["edges"]} | {e[2] for e in entry["edges"]}
    linked = [m for m in modalities if m in used]
    offset, position = 0, {}
    for m in linked:
        for k, v in enumerate(var_names[m]):
            position[(m, str(v))] = offset + k
        offset += len(var_names[m])
    pairs = [[position[(a, va)], position[(b, vb)]] for a, va, b, vb, _, _ in entry["edges"]]
    return {"modalities": linked, "edges": pairs, "sign": [e[4] for e in entry["edges"]],
            "weight": [e[5] for e in entry["edges"]], "n_obs": int(entry["n_obs"]),
            "strength": float(entry.get("strength", 1.0))}

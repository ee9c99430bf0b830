"""Benchmark suites: YAML files describing the grid datasets x scenarios x methods x seeds.

Schema (every key but ``datasets``, ``scenarios`` and ``methods`` is optional)::

    name: quick
    description: free text
    seeds: [0, 1]
    cells_per_process: 25   # isolation: 1 = a fresh process per cell, 0 = in-process
    timeout_s: 600          # per cell, isolated runs only
    threads: 1              # torch threads inside a cell
    train: {max_epochs: 30, batch_size: 128, lr: 0.002, n_latent: 8, n_hidden: 64,
            n_samples: 100, head_epochs: 150, latent_samples: 20}
    datasets:
      - synthetic                                    # a name of DATASETS ...
      - {name: citeseq_pbmc, params: {n_top_genes: 300}, label: citeseq}   # ... or a mapping
    scenarios:
      - {name: mcar, rates: [0.25, 0.5]}             # hides each dataset's target modality
      - {name: mnar, rates: [0.3], params: {by: label}, datasets: [synthetic]}
      - {name: entry_mcar, rates: [0.2], modality: clinical}
    methods:
      - mdlprob_models                               # every registered model (mdlprob.models.all_models())
      - PoEVAE                                       # a name of METHODS ...
      - {name: coxnet, datasets: [synthetic, breast_cancer]}   # ... or restricted to datasets
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._data import DATASETS
from ._methods import METHODS
from .missingness import SCENARIOS

DEFAULT_TRAIN = {"max_epochs": 30, "batch_size": 128, "lr": 2e-3, "n_latent": 8, "n_hidden": 64,
                 "n_samples": 100, "head_epochs": 150, "latent_samples": 20}
_TOP_KEYS = {"name", "description", "seeds", "cells_per_process", "timeout_s", "threads", "train", "datasets",
             "scenarios", "methods"}
#: Method entry standing for every model of the model registry, one method each.
ALL_MODELS = "mdlprob_models"
SUITES_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "suites"


@dataclass(frozen=True)
class Cell:
    """One run: a dataset, a scenario at one rate, a method and a seed."""

    dataset: str
    dataset_name: str
    dataset_params: str
    scenario: str
    modality: str | None
    rate: float
    scenario_params: str
    method: str
    seed: int
    train: str = "{}"

    @property
    def key(self) -> str:
        """Stable identifier of the cell (a hash of all its fields, training options included), used to resume runs."""
        text = json.dumps(self.__dict__, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]  # noqa: S324 - an identifier, not security


@dataclass
class Suite:
    """A parsed suite; :meth:`cells` expands its grid."""

    name: str
    datasets: list[dict[str, Any]]
    scenarios: list[dict[str, Any]]
    methods: list[dict[str, Any]]
    seeds: list[int] = field(default_factory=lambda: [0])
    train: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_TRAIN))
    cells_per_process: int = 1
    timeout_s: float = 1800.0
    threads: int = 1
    description: str = ""

    def cells(self) -> list[Cell]:
        """The grid in run order: dataset, seed, scenario, rate, method (data loads are reused)."""
        out = []
        train = json.dumps(self.train, sort_keys=True)
        for ds in self.datasets:
            for seed in self.seeds:
                for sc in self.scenarios:
                    if sc["datasets"] and ds["label"] not in sc["datasets"]:
                        continue
                    for rate in sc["rates"]:
                        for me in self.methods:
                            if me["datasets"] and ds["label"] not in me["datasets"]:
                                continue
                            out.append(Cell(ds["label"], ds["name"], json.dumps(ds["params"], sort_keys=True),
                                            sc["name"], sc["modality"], float(rate),
                                            json.dumps(sc["params"], sort_keys=True), me["name"], int(seed), train))
        return out


def _entry(item: Any, what: str, known: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    entry = {"name": item} if isinstance(item, str) else item
    if not isinstance(entry, dict) or "name" not in entry:
        msg = f"Expected each of {what} to be a name or a mapping with 'name', got {item!r}."
        raise ValueError(msg)
    extra = set(entry) - allowed
    if extra:
        msg = f"Unknown key(s) {sorted(extra)} in {what} entry {entry['name']!r}; allowed: {sorted(allowed)}."
        raise ValueError(msg)
    if entry["name"] not in known:
        msg = f"Unknown {what[:-1]} {entry['name']!r}; expected one of {sorted(known)}."
        raise ValueError(msg)
    return dict(entry)


def _expand_models(methods: list[Any]) -> list[Any]:
    """``mdlprob_models`` entries replaced by one entry per registered model (same ``datasets``)."""
    from ..models import all_models

    out: list[Any] = []
    for item in methods:
        entry = {"name": item} if isinstance(item, str) else item
        if isinstance(entry, dict) and entry.get("name") == ALL_MODELS:
            out += [{**entry, "name": name} for name in all_models()]
        else:
            out.append(item)
    return out


def parse_suite(config: dict[str, Any], *, name: str = "suite") -> Suite:
    """Validate a suite mapping (the parsed YAML) and return the :class:`Suite`."""
    if not isinstance(config, dict):
        msg = f"Expected the suite to be a mapping, got {type(config).__name__}."
        raise ValueError(msg)
    extra = set(config) - _TOP_KEYS
    if extra:
        msg = f"Unknown suite key(s) {sorted(extra)}; allowed: {sorted(_TOP_KEYS)}."
        raise ValueError(msg)
    for key in ("datasets", "scenarios", "methods"):
        if not config.get(key):
            msg = f"The suite needs a non-empty '{key}' list, got {config.get(key)!r}."
            raise ValueError(msg)
    datasets = [_entry(d, "datasets", DATASETS, {"name", "params", "label"}) for d in config["datasets"]]
    for d in datasets:
        d.setdefault("params", {})
        d.setdefault("label", d["name"])
    scenarios = [_entry(s, "scenarios", SCENARIOS, {"name", "rates", "params", "modality", "datasets"})
                 for s in config["scenarios"]]
    for s in scenarios:
        rates = s.get("rates", [0.3])
        if not isinstance(rates, list) or not all(isinstance(r, (int, float)) and 0 <= r < 1 for r in rates):
            msg = f"Expected 'rates' of scenario {s['name']!r} to be a list of numbers in [0, 1), got {rates!r}."
            raise ValueError(msg)
        s.update(rates=rates, params=s.get("params") or {}, modality=s.get("modality"), datasets=s.get("datasets") or [])
    methods = [_entry(m, "methods", {**METHODS, ALL_MODELS: None}, {"name", "datasets"})
               for m in _expand_models(config["methods"])]
    for m in methods:
        m["datasets"] = m.get("datasets") or []
    train = {**DEFAULT_TRAIN, **(config.get("train") or {})}
    unknown = set(train) - set(DEFAULT_TRAIN)
    if unknown:
        msg = f"Unknown train option(s) {sorted(unknown)}; allowed: {sorted(DEFAULT_TRAIN)}."
        raise ValueError(msg)
    bad = {k: v for k, v in train.items() if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0}
    if bad:
        msg = f"Expected train options to be positive numbers, got {bad}."
        raise ValueError(msg)
    seeds = config.get("seeds", [0])
    if not isinstance(seeds, list) or not all(isinstance(s, int) and s >= 0 for s in seeds):
        msg = f"Expected 'seeds' to be a list of non-negative ints, got {seeds!r}."
        raise ValueError(msg)
    return Suite(name=str(config.get("name", name)), datasets=datasets, scenarios=scenarios, methods=methods,
                 seeds=seeds, train=train, cells_per_process=int(config.get("cells_per_process", 1)),
                 timeout_s=float(config.get("timeout_s", 1800.0)), threads=int(config.get("threads", 1)),
                 description=str(config.get("description", "")))


def load_suite(suite: str | os.PathLike) -> Suite:
    """Read a suite: ``quick``/``full`` (``benchmarks/suites/<name>.yaml``) or a path to a YAML file."""
    try:
        import yaml
    except ImportError as err:
        msg = "Reading benchmark suites needs PyYAML: pip install mdlprob[bench]."
        raise ImportError(msg) from err
    path = Path(suite)
    if path.suffix not in (".yaml", ".yml"):
        candidates = [SUITES_DIR / f"{suite}.yaml", Path("benchmarks") / "suites" / f"{suite}.yaml"]
        found = [p for p in candidates if p.exists()]
        if not found:
            msg = (f"No suite named {str(suite)!r}: looked for {[str(p) for p in candidates]}. "
                   "Pass quick, full or the path of a YAML file.")
            raise FileNotFoundError(msg)
        path = found[0]
    if not path.exists():
        msg = f"Suite file {path} does not exist."
        raise FileNotFoundError(msg)
    return parse_suite(yaml.safe_load(path.read_text()), name=path.stem)
